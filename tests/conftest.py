"""Shared fixtures: the random-weight test checkpoint and a plugin started as Grafana starts it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# The adaptive intra-op thread count (engine/threads.py) follows the machine's load, and float32
# sums in another order differ in the last bit: every model the suite starts (in this process, in
# plugins, in serving engines) runs on the same fixed count, so results compare exactly.
os.environ.setdefault("TOTO_TORCH_THREADS", "2")

from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.core.errors import BackendError
from toto_datasource.core.identity import Caller
from toto_datasource.core.request import RequestContext
from toto_datasource.core.settings import DataSourceSettings
from toto_datasource.core.types import DataQueryInput, HealthResult, QueryResult, ResourceResponse
from toto_datasource.plugin.host import PluginProcess
from toto_datasource.service import ForecastDataSource, call_resource

ROOT = Path(__file__).resolve().parents[1]
TINY_CHECKPOINT = ROOT / "var" / "checkpoints" / "toto-2.0-4m-random"
VECTORS = ROOT / "tests" / "vectors" / "grafana-plugin-sdk-go"


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Path:
    if not (TINY_CHECKPOINT / "model.safetensors").exists():
        from toto_datasource.engine.toto import write_random_checkpoint

        write_random_checkpoint(TINY_CHECKPOINT, "4m")
    return TINY_CHECKPOINT


def plugin_context(json_data: dict | None = None, uid: str = "test") -> pb.PluginContext:
    settings = pb.DataSourceInstanceSettings(
        uid=uid, name="Toto test", jsonData=json.dumps(json_data or {}).encode()
    )
    return pb.PluginContext(pluginId="toto-forecast-datasource", dataSourceInstanceSettings=settings)


def data_query(
    ref_id: str, body: dict | bytes, from_ms: int, to_ms: int, interval_ms: int = 60_000
) -> pb.DataQuery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return pb.DataQuery(
        refId=ref_id,
        json=raw,
        intervalMS=interval_ms,
        maxDataPoints=1000,
        timeRange=pb.TimeRange(fromEpochMS=from_ms, toEpochMS=to_ms),
    )


@pytest.fixture(scope="session")
def plugin(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginProcess]:
    log_path = tmp_path_factory.mktemp("plugin") / "stderr.log"
    with (
        open(log_path, "w") as log,
        PluginProcess(env={"GF_PLUGIN_MODEL": str(tiny_checkpoint)}, stderr=log) as p,
    ):
        p.log_path = log_path  # type: ignore[attr-defined]
        health = p.wait_until_loaded(plugin_context())
        assert health.status == pb.CheckHealthResponse.OK, health.message
        yield p


# -- the service in process, as the gRPC edge calls it ---------------------------------------
def request_context(*, alert: bool = False, deadline: float | None = None) -> RequestContext:
    """A request context like the edge makes (no CPU slot; `deadline` is time.monotonic())."""
    return RequestContext(deadline=deadline, caller=Caller(from_alert=alert))


def run_queries(ds: ForecastDataSource, settings: DataSourceSettings, queries: list[DataQueryInput], *,
                alert: bool = False, deadline: float | None = None) -> dict[str, QueryResult]:
    return ds.query_data(ds.instance(settings), queries, request_context(alert=alert, deadline=deadline))


def check_health(ds: ForecastDataSource, settings: DataSourceSettings, *,
                 deadline: float | None = None) -> HealthResult:
    return ds.check_health(ds.instance(settings), request_context(deadline=deadline))


def resource(ds: ForecastDataSource, settings: DataSourceSettings | BackendError, method: str, path: str,
             params: dict[str, list[str]], body: bytes) -> ResourceResponse:
    return call_resource(ds, ds.instance(settings), method, path, params, body, request_context())


@pytest.fixture()
def now_ms() -> int:
    return int(time.time() * 1000)


os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def engines():  # type: ignore[no-untyped-def]
    """Make BatchingForecasters over a runner (engine tests); every one is closed afterwards."""
    from toto_datasource.engine.scheduler import BatchingForecaster, BatchLimits

    made: list[BatchingForecaster] = []

    def make(runner, **limits) -> BatchingForecaster:  # type: ignore[no-untyped-def]
        f = BatchingForecaster("fake", runner, limits=BatchLimits(**limits))
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()
