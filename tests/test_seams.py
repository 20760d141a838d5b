"""The three registries are open seams: a source, a query type and a model runtime defined in this
file alone (no edit inside the package) are driven through QueryData, CheckHealth and CallResource
over gRPC, exactly as Grafana calls them. Also: the committed query schema is the generated one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import resources
from typing import Any

import grpc
import numpy as np
import pytest
from conftest import data_query, plugin_context
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource._proto.pluginv2 import backend_pb2_grpc as pb_grpc
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.request import RequestContext
from toto_datasource.core.settings import DataSourceSettings, ModelSettings, RawSettings
from toto_datasource.engine.registry import ModelRegistry, builtin_runtimes
from toto_datasource.engine.runtimes import LoadedModel, NoSettings, Probe
from toto_datasource.engine.types import QUANTILE_LEVELS, ForecastJob, ForecastOutput
from toto_datasource.frames import Field, Frame, FrameMeta, decode_frame
from toto_datasource.plugin.server import build_server
from toto_datasource.querytypes.base import ForecastPlanOnly, SubmitRequest
from toto_datasource.querytypes.registry import builtin_query_types
from toto_datasource.service import ForecastDataSource
from toto_datasource.sources.base import (
    History,
    HistoryRequest,
    Series,
    SimpleProvider,
    SourceHealth,
    StaticSource,
    TimeGrid,
    spec_of,
)
from toto_datasource.sources.registry import builtin_sources

NOW = 1_795_000_000_000


# -- a toy source: sawtooth history, its own settings part, health and lookup route ----------
@dataclass(frozen=True)
class SawSpec:
    teeth: int


class SawSource(StaticSource):
    def __init__(self, label: str) -> None:
        self.label = label

    def fetch(self, request: HistoryRequest) -> History:
        spec = spec_of(request, SawSpec)
        grid = request.grid
        values = np.tile(np.arange(10, dtype=np.float64), grid.count // 10 + 1)[: grid.count]
        series = [Series(f"saw{i}", {"saw": str(i), "site": self.label}, values + 100 * i)
                  for i in range(spec.teeth)]
        return History(grid, series, executed_query=f"sawtooth x{spec.teeth}")

    def series_count(self, spec: Any, grid: TimeGrid, ctx: RequestContext) -> int:
        return spec.teeth

    def check(self, ctx: RequestContext) -> SourceHealth:
        return SourceHealth(True, f"sawtooth at {self.label} sharp", "1.0")

    def routes(self) -> Mapping[str, Any]:
        return {"shapes": lambda params, body, ctx: {"shapes": ["saw", *params.get("extra", [])]}}


class SawProvider(SimpleProvider):
    name = "sawtooth"
    title = "Sawtooth"
    description = "a toy source defined by a test"
    schema: Mapping[str, Any] = {"teeth": {"type": "integer", "minimum": 1, "maximum": 5}}

    def parse_query(self, obj: Mapping[str, Any]) -> SawSpec:
        return SawSpec(int(obj.get("teeth", 1)))

    def parse_settings(self, raw: RawSettings) -> str | None:
        return raw.json_data.get("sawSite")

    def open(self, settings: DataSourceSettings) -> SawSource:
        return SawSource(settings.part(self.name) or "nowhere")


# -- a toy query type: the last forecast median per series, as one numeric row -----------------
@dataclass
class PendingLast:
    request: SubmitRequest
    future: Future[ForecastOutput]

    def frames(self) -> list[Frame]:
        out = self.request.wait(self.future)
        fields = [Field.number("last", out.level(0.5)[i, -1:], labels=s.labels)
                  for i, s in enumerate(self.request.history.series)]
        return [Frame("last", fields, meta=FrameMeta(type="numeric-wide", type_version=(0, 1)))]


class LastQueryType(ForecastPlanOnly):
    name = "last"
    description = "the last forecast median (a toy query type)"

    def submit(self, request: SubmitRequest) -> PendingLast:
        return PendingLast(request, request.forecast(request.job()))


# -- a toy model runtime: every quantile k is the last observed value + k ---------------------
class LastPlusLevel:
    name = "last-plus-level"

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        last = np.array([row[np.isfinite(row)][-1] for row in job.context])
        q = last[None, :, None] + np.arange(len(QUANTILE_LEVELS))[:, None, None] + np.zeros(job.horizon)
        future: Future[ForecastOutput] = Future()
        future.set_result(ForecastOutput(q, self.name))
        return future

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "baseline": True}


class LastPlusLevelRuntime(NoSettings):
    name = "last-plus-level"
    instant = True
    query_model = "last-plus-level"

    def load(self, settings: ModelSettings, config: ProcessConfig, warmup: bool) -> LoadedModel:
        model = LastPlusLevel()
        return LoadedModel(model, model, {"name": model.name})

    def probe(self, loaded: LoadedModel, settings: ModelSettings, ctx: RequestContext) -> Probe:
        return Probe(True, "toy runtime ready")


@pytest.fixture(scope="module")
def stubs() -> Iterator[tuple[pb_grpc.DataStub, pb_grpc.DiagnosticsStub, pb_grpc.ResourceStub]]:
    registry = ModelRegistry(ProcessConfig(), warmup=False,
                             runtimes=builtin_runtimes().with_entries(LastPlusLevelRuntime()))
    ds = ForecastDataSource(
        registry,
        clock=lambda: NOW / 1000,
        sources=builtin_sources().with_entries(SawProvider()),
        query_types=builtin_query_types().with_entries(LastQueryType()),
    )
    server = build_server(ds, threading.Event(), honour_shutdown=False)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield pb_grpc.DataStub(channel), pb_grpc.DiagnosticsStub(channel), pb_grpc.ResourceStub(channel)
    channel.close()
    server.stop(grace=None)
    ds.close()


TOY_SETTINGS = {"sawSite": "lab", "model": "/nonexistent/toto"}  # the Toto model is never needed here


def test_toy_source_query_type_and_runtime_answer_query_data(stubs) -> None:  # type: ignore[no-untyped-def]
    data, _, _ = stubs
    body = {"source": "sawtooth", "teeth": 2, "queryType": "last", "model": "last-plus-level",
            "horizon": 5, "step": "1m"}
    request = pb.QueryDataRequest(
        pluginContext=plugin_context(TOY_SETTINGS),
        queries=[data_query("A", body, NOW - 3_600_000, NOW),
                 data_query("B", {**body, "teeth": 9}, NOW - 3_600_000, NOW)],  # the toy schema's maximum
    )
    response = data.QueryData(request, timeout=30)
    a = response.responses["A"]
    assert a.status == 200, a.error
    (frame,) = [decode_frame(raw) for raw in a.frames]
    grid_end_value = (2048 - 1) % 10  # the sawtooth's last history value on a 2048-point grid
    assert [f.values.to_pylist() for f in frame.fields] == [[grid_end_value + 4.0], [grid_end_value + 104.0]]
    assert [f.labels for f in frame.fields] == [{"saw": "0", "site": "lab"}, {"saw": "1", "site": "lab"}]
    b = response.responses["B"]
    assert b.status == 400 and b.error.startswith("teeth: 9 is more than the maximum of 5")


def test_unknown_names_are_per_query_errors_listing_what_is_registered(stubs) -> None:  # type: ignore[no-untyped-def]
    data, _, _ = stubs
    request = pb.QueryDataRequest(
        pluginContext=plugin_context(TOY_SETTINGS),
        queries=[data_query("A", {"source": "loki"}, NOW - 3_600_000, NOW),
                 data_query("B", {"source": "demo", "model": "seasonal-naive", "step": "1m"}, NOW - 3_600_000,
                            NOW)],
    )
    response = data.QueryData(request, timeout=60)
    a = response.responses["A"]
    assert a.status == 400 and "sawtooth" in a.error and "prometheus" in a.error
    assert response.responses["B"].status == 200  # the built-ins still work beside the toys


def test_toy_source_reports_health_and_serves_its_route(stubs) -> None:  # type: ignore[no-untyped-def]
    _, diagnostics, resource = stubs
    ctx = plugin_context({"sawSite": "lab", "model": "/nonexistent/toto"})
    health = diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=30)
    details = json.loads(health.jsonDetails)
    assert details["sawtooth"] == {"ok": True, "message": "sawtooth at lab sharp", "version": "1.0"}
    (answer,) = resource.CallResource(
        pb.CallResourceRequest(pluginContext=ctx, method="GET", path="sawtooth/shapes",
                               url="sawtooth/shapes?extra=tri"), timeout=30)
    assert answer.code == 200 and json.loads(answer.body) == {"shapes": ["saw", "tri"]}
    (schema,) = resource.CallResource(
        pb.CallResourceRequest(pluginContext=ctx, method="GET", path="schema"), timeout=30)
    properties = json.loads(schema.body)["properties"]
    assert "teeth" in properties and "sawtooth" in properties["source"]["enum"]
    assert "last" in properties["queryType"]["enum"] and "last-plus-level" in properties["model"]["enum"]


def test_committed_query_schema_is_the_generated_one() -> None:
    """query.schema.json (read by the frontend's tests) is `toto-datasource schema` of the built-ins:
    regenerate it with `make schema` after changing a source's or query type's fragment."""
    committed = json.loads(resources.files("toto_datasource").joinpath("query.schema.json").read_text())
    assert committed == ForecastDataSource(ModelRegistry(ProcessConfig(), warmup=False)).schema()
