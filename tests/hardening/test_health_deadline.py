"""CheckHealth answers by its gRPC deadline, whatever an upstream does.

Grafana's "Save & test" may call CheckHealth with a deadline shorter than `timeoutSeconds`; an
upstream that never answers must give an ERROR naming it, not DEADLINE_EXCEEDED for the call.
No timing asserts: the deadline itself is the bound (a late answer is a gRPC error).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from conftest import check_health
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.core.settings import DataSourceSettings, RawSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.plugin.host import PluginProcess
from toto_datasource.service import ForecastDataSource
from toto_datasource.sources.base import SimpleProvider, SourceHealth, StaticSource
from toto_datasource.sources.registry import builtin_sources

from .fault_servers import blackhole
from .harness import context, leaked, planted_url


@pytest.fixture(scope="module")
def plugin(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginProcess]:
    log_path = tmp_path_factory.mktemp("health") / "stderr.log"
    with open(log_path, "w") as log, PluginProcess(env={"GF_PLUGIN_MODEL": str(tiny_checkpoint)},
                                                   stderr=log) as p:
        p.wait_until_loaded(context({}))
        yield p


def test_never_answering_prometheus_is_an_error_within_a_short_grpc_deadline(plugin: PluginProcess) -> None:
    with blackhole() as hole:
        ctx = context({"prometheusUrl": planted_url(hole.url), "timeoutSeconds": 20}, uid="health-hole")
        try:
            health = plugin.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=2)
        except grpc.RpcError as exc:
            pytest.fail(f"CheckHealth ended {exc.code()}; expected an ERROR answer naming Prometheus")
        assert hole.requests  # the probe reached the upstream, which never answered
    assert health.status == pb.CheckHealthResponse.ERROR
    host = hole.url.removeprefix("http://")
    assert "Prometheus" in health.message and host in health.message, health.message
    assert "did not answer" in health.message and "deadline" in health.message, health.message
    assert not leaked(health.message) and not leaked(health.jsonDetails), health.message


# ---- the cut-off: a probe that ignores the deadline (a DNS lookup the socket cannot bound) ----


class _StuckSource(StaticSource):
    url = "http://stuck.example:9090"

    def __init__(self, release: threading.Event, entered: threading.Event) -> None:
        self.release, self.entered = release, entered

    def check(self, deadline: float | None = None) -> SourceHealth:
        self.entered.set()
        self.release.wait(60)
        return SourceHealth(True, "finally")


class _StuckProvider(SimpleProvider):
    name = "stuck"
    title = "Stuck upstream"
    description = "a source whose health probe ignores its deadline"
    schema: Mapping[str, Any] = {}

    def __init__(self) -> None:
        self.release, self.entered = threading.Event(), threading.Event()

    def parse_query(self, obj: Any) -> None:
        return None

    def parse_settings(self, raw: RawSettings) -> str | None:
        return "on" if raw.json_data.get("stuck") else None

    def open(self, settings: DataSourceSettings) -> _StuckSource:
        return _StuckSource(self.release, self.entered)


def test_a_probe_that_ignores_the_deadline_is_cut_off_naming_its_upstream() -> None:
    provider = _StuckProvider()
    ds = ForecastDataSource(ModelRegistry(warmup=False), sources=builtin_sources().with_entries(provider))
    try:
        settings = ds.parse_settings(RawSettings(json_data={"stuck": True, "model": "/nonexistent/toto"}))
        result = check_health(ds, settings, deadline=time.monotonic() + 0.5)
        assert provider.entered.is_set()  # the answer came while the probe was still stuck
        assert not result.ok
        assert result.message.startswith("Stuck upstream at http://stuck.example:9090 did not answer within")
        assert "model" in result.details  # what was found before the cut-off is still reported
    finally:
        provider.release.set()
        ds.close()
