"""Is the Hugging Face hub reachable? Answered in ≤ 2 s, before any download is tried.

Why: on a machine without internet, `from_pretrained("Datadog/Toto-2.0-22m")` waited ~35 s
(DNS, then the etag request's timeout and retries) before `make demo` fell back to the baseline.
A TCP connect to the hub's port 443 says the same thing in milliseconds when there is no route,
and in at most PROBE_TIMEOUT_S when packets are dropped. `HF_HUB_OFFLINE=1` is honoured first:
then only a copy already in the local cache can load, and huggingface_hub itself says so.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

PROBE_TIMEOUT_S = 2.0
DEFAULT_ENDPOINT = "https://huggingface.co"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or the older TRANSFORMERS_OFFLINE) asks for no network at all."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def hub_address(endpoint: str | None = None) -> tuple[str, int]:
    """(host, port) of the hub: HF_ENDPOINT when set (a mirror), else huggingface.co:443."""
    parts = urlsplit(endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    port = parts.port or (80 if parts.scheme == "http" else 443)
    return parts.hostname or "huggingface.co", port


def hub_unreachable(repo_id: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a download of `repo_id` may be tried, else why not (engine/toto.py raises it as
    its CheckpointError; this module imports nothing of the engine, so no import cycle).

    With HF_HUB_OFFLINE set it returns at once (huggingface_hub then serves only its cache).
    Otherwise it opens and closes one TCP connection to the hub (DNS included) within
    `timeout_s`; any failure becomes one message naming the host and the way out.
    """
    if hub_offline():
        return None
    host, port = hub_address()
    failure: list[BaseException] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except OSError as exc:
            failure.append(exc)

    # In a thread so that DNS (getaddrinfo has no timeout of its own) is bounded too.
    probe = threading.Thread(target=connect, name="hub-probe", daemon=True)
    probe.start()
    probe.join(timeout_s)
    if not probe.is_alive() and not failure:
        return None
    detail = (f"{type(failure[0]).__name__}: {failure[0] or 'no detail'}" if failure
              else "no answer, DNS included")
    return (
        f"hub unreachable: cannot connect to {host}:{port} within {timeout_s:g} s ({detail}), "
        f"so {repo_id!r} cannot be downloaded. Download it where there is internet access and "
        "point the Model setting at the directory, or set HF_HUB_OFFLINE=1 to use a copy "
        "already in the Hugging Face cache."
    )
