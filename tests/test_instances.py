"""One instance per data source and settings version; models let go when no data source needs them.

Driven as the gRPC edge drives it (`plugin.servicers.Edge.instance`, what every RPC calls with
the PluginContext Grafana sent), with the real model registry and the random-weight checkpoint.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.errors import BackendError
from toto_datasource.core.redact import KNOWN_SECRETS, MAX_REMEMBERED
from toto_datasource.core.settings import RawSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.engine.types import ForecastJob
from toto_datasource.plugin.servicers import Edge
from toto_datasource.service import ForecastDataSource

WAIT = 120


class CountingDataSource(ForecastDataSource):
    def __init__(self, registry: ModelRegistry | None = None) -> None:
        super().__init__(registry or ModelRegistry(ProcessConfig(), warmup=False))
        self.parses = 0

    def parse_settings(self, raw: RawSettings):  # type: ignore[no-untyped-def]
        self.parses += 1
        return super().parse_settings(raw)


def context(json_data: dict, updated_ms: int = 1, secure: dict | None = None, uid: str = "ds1",
            org_id: int = 1) -> pb.PluginContext:
    settings = pb.DataSourceInstanceSettings(
        uid=uid, name="ds", jsonData=json.dumps(json_data).encode(), lastUpdatedMS=updated_ms,
        decryptedSecureJsonData=secure or {},
    )
    return pb.PluginContext(orgId=org_id, pluginId="toto-forecast-datasource",
                            dataSourceInstanceSettings=settings)


def test_same_settings_are_parsed_once_and_a_save_takes_effect_on_the_next_query() -> None:
    ds = CountingDataSource()
    edge = Edge(ds)
    first = edge.instance(context({"maxSeries": 40}))
    again = edge.instance(context({"maxSeries": 40}))
    assert again is first and first.valid_settings().max_series == 40 and ds.parses == 1
    saved = edge.instance(context({"maxSeries": 80}, updated_ms=2))  # the admin saved the data source
    assert saved.valid_settings().max_series == 80 and ds.parses == 2


def test_the_same_uid_in_two_orgs_is_two_data_sources() -> None:
    ds = CountingDataSource()
    edge = Edge(ds)
    one = edge.instance(context({"maxSeries": 40}, org_id=1))
    two = edge.instance(context({"maxSeries": 80}, org_id=2))
    assert one.valid_settings().max_series == 40 and two.valid_settings().max_series == 80
    assert edge.instance(context({"maxSeries": 40}, org_id=1)) is one and ds.parses == 2


def test_an_invalid_version_answers_its_400_every_time() -> None:
    ds = CountingDataSource()
    edge = Edge(ds)
    for _ in range(2):
        with pytest.raises(BackendError) as err:
            edge.instance(context({"defaultHorizon": "forever"})).valid_settings()
        assert err.value.status == 400 and "defaultHorizon" in err.value.message
    assert ds.parses == 1


def test_an_instance_keeps_its_secrets_in_the_redactor() -> None:
    """The process redactor forgets its oldest secrets; one still being sent must not be among them."""
    edge = Edge(CountingDataSource())
    secret = "StillInUseTok3n"
    ctx = context({"prometheusUrl": "http://prom:9090", "authType": "bearer"}, secure={"bearerToken": secret})
    edge.instance(ctx)
    KNOWN_SECRETS.remember(f"filler-secret-{i}" for i in range(MAX_REMEMBERED + 1))  # all it keeps, and one
    assert secret in KNOWN_SECRETS(f"token {secret}")  # forgotten by the bounded registry
    edge.instance(ctx)  # the next query with those settings reuses the instance
    assert secret not in KNOWN_SECRETS(f"token {secret}")


def test_instances_are_bounded() -> None:
    ds = CountingDataSource()
    ds.instances.max_instances = 4
    edge = Edge(ds)
    for i in range(10):
        edge.instance(context({"maxSeries": 10 + i}, uid=f"ds{i}"))
    edge.instance(context({"maxSeries": 10}, uid="ds0"))  # the least recently used was dropped: parsed again
    assert ds.parses == 11


def inference_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("inference-")}


def ready(registry: ModelRegistry, checkpoint: str):  # type: ignore[no-untyped-def]
    """The model's forecaster once its background load finished."""
    (handle,) = [h for h in registry.handles() if h.settings.checkpoint == checkpoint]
    assert handle.ready.wait(WAIT) and handle.state == "ready", handle.error
    return handle.loaded.forecaster


def test_a_replaced_checkpoint_is_let_go(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Saving the data source with another checkpoint loads the new model and, once the old
    instance's grace is over, closes the old one: its inference thread stops, it answers no more."""
    other = tmp_path / "other-checkpoint"
    shutil.copytree(tiny_checkpoint, other)
    registry = ModelRegistry(ProcessConfig(), warmup=False)
    ds = ForecastDataSource(registry)
    now = [1000.0]
    ds.instances.clock = lambda: now[0]
    edge = Edge(ds)
    before = inference_threads()
    first = edge.instance(context({"model": str(tiny_checkpoint)}, updated_ms=1))
    registry.ensure(first.valid_settings().model)
    old = ready(registry, str(tiny_checkpoint))
    new = edge.instance(context({"model": str(other)}, updated_ms=2))  # saved with another checkpoint
    registry.ensure(new.valid_settings().model)
    ready(registry, str(other))
    assert old.submit(ForecastJob([[1.0] * 64], 8)).result(timeout=WAIT)  # a query that took it still runs
    now[0] += 61  # past the grace a query in flight on the old instance may have needed
    edge.instance(context({"model": str(other)}, updated_ms=2))  # the next query disposes the old instance
    assert [h.settings.checkpoint for h in registry.handles()] == [str(other)]
    assert inference_threads() - before == {f"inference-toto:{other}"}
    with pytest.raises(BackendError) as err:
        old.submit(ForecastJob([[1.0] * 64], 8)).result(timeout=WAIT)
    assert err.value.status == 503
    ds.close()
    assert inference_threads() - before == set()


def test_a_model_still_named_by_another_data_source_is_kept(tiny_checkpoint: Path) -> None:
    registry = ModelRegistry(ProcessConfig(), warmup=False)
    ds = ForecastDataSource(registry)
    now = [1000.0]
    ds.instances.clock = lambda: now[0]
    edge = Edge(ds)
    settings = {"model": str(tiny_checkpoint)}
    registry.ensure(edge.instance(context(settings, uid="a")).valid_settings().model)
    edge.instance(context(settings, uid="b"))
    ready(registry, str(tiny_checkpoint))
    edge.instance(context({**settings, "maxSeries": 7}, uid="a", updated_ms=2))  # a is saved
    now[0] += 61
    edge.instance(context({**settings, "maxSeries": 7}, uid="a", updated_ms=2))
    assert [h.settings.checkpoint for h in registry.handles()] == [str(tiny_checkpoint)]
    assert ready(registry, str(tiny_checkpoint)) is not None
    registry.close()


def test_an_idle_model_is_closed_and_loads_again_on_its_next_query(tiny_checkpoint: Path) -> None:
    now = [1000.0]
    registry = ModelRegistry(ProcessConfig(model_idle_s=600), warmup=False, clock=lambda: now[0])
    edge = Edge(ForecastDataSource(registry))
    instance = edge.instance(context({"model": str(tiny_checkpoint)}))
    model = instance.valid_settings().model
    registry.ensure(model)
    ready(registry, str(tiny_checkpoint))
    now[0] += 601  # ten minutes without a query
    with pytest.raises(BackendError) as err:
        registry.forecaster(model)  # this query finds it closed and starts a new load
    assert err.value.status == 503 and "loading" in err.value.message
    assert ready(registry, str(tiny_checkpoint)) is not None
    registry.close()
