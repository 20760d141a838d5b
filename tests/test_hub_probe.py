"""The hub probe answers within its timeout and says "hub unreachable" (a first run offline)."""

from __future__ import annotations

import socket

import pytest
from toto_datasource.engine import hub


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connecting is refused


def test_unreachable_hub_raises_a_clear_checkpoint_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    reason = hub.hub_unreachable("Datadog/Toto-2.0-22m", timeout_s=1.0)
    assert reason is not None and reason.startswith("hub unreachable: cannot connect to 127.0.0.1")


def test_reachable_endpoint_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        assert hub.hub_unreachable("Datadog/Toto-2.0-22m", timeout_s=1.0) is None


def test_offline_mode_skips_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    assert hub.hub_unreachable("Datadog/Toto-2.0-22m", timeout_s=1.0) is None  # the cache serves


def test_endpoint_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert hub.hub_address() == ("huggingface.co", 443)
    assert hub.hub_address("http://mirror.local:8080") == ("mirror.local", 8080)
