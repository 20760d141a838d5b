"""Prometheus through the whole data-source path: settings → QueryData / CallResource / CheckHealth
→ frames, against the real test Prometheus (three weeks of backfilled history, prom_synthetic).

In-process tests run ForecastDataSource with a fixed clock a little past the end of the backfill,
so "now" falls between grid steps and every timestamp can be checked exactly; one test goes
through the plugin process over gRPC as Grafana calls it. Most queries use the seasonal-naive
baseline; the random-weight Toto checkpoint runs the model path for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from conftest import check_health, data_query, plugin_context, resource, run_queries
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.settings import DataSourceSettings, ModelSettings, RawSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.frames import decode_frame
from toto_datasource.frames.model import Field, Frame
from toto_datasource.plugin.host import PluginProcess
from toto_datasource.service import (
    DataQueryInput,
    ForecastDataSource,
    QueryResult,
    ResourceResponse,
    parse_data_source_settings,
)
from toto_datasource.service.instances import MIN_CLOSE_GRACE_S, InstanceManager
from toto_datasource.sources.base import CLOSE_MARGIN_S
from toto_datasource.sources.registry import builtin_sources

from .prom_server import free_port
from .prom_synthetic import expected_on_grid
from .prom_testkit import BASIC_PASSWORD, BASIC_USER, AuthEnv, PromEnv, grid, request, settings

MINUTE_MS, HOUR_MS = 60_000, 3_600_000
NOW_AFTER_END_MS = 130_250  # the fixed clock: 2 min 10.25 s after the last backfilled sample
LOAD = 'toto_test_load{job="app"}'  # instances a, b, c
TOKEN = "tok-SECRET-4242-do-not-print"


# -- fixtures and helpers ------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> ModelSettings:
    return ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="module")
def registry(model: ModelSettings) -> Iterator[ModelRegistry]:
    registry = ModelRegistry(warmup=False)
    slot = registry.ensure(model)
    assert slot.ready.wait(120) and slot.state == "ready", slot.error
    yield registry
    registry.close()


def now_ms(prom: PromEnv) -> int:
    return prom.data.end_s * 1000 + NOW_AFTER_END_MS


@pytest.fixture(scope="module")
def ds(registry: ModelRegistry, prom: PromEnv) -> ForecastDataSource:
    now_s = now_ms(prom) / 1000
    return ForecastDataSource(registry, clock=lambda: now_s)


@pytest.fixture(scope="module")
def ds_settings(prom: PromEnv, model: ModelSettings) -> DataSourceSettings:
    return DataSourceSettings(uid="e2e", model=model, parts=(("prometheus", settings(prom.url)),))


def run(
    ds: ForecastDataSource, s: DataSourceSettings, body: dict, from_ms: int, to_ms: int,
    interval_ms: int = MINUTE_MS,
) -> QueryResult:
    query = DataQueryInput("A", "", json.dumps(body).encode(), from_ms, to_ms, interval_ms, 1000)
    (result,) = run_queries(ds, s, [query]).values()
    return result


def times_ms(frame: Frame) -> np.ndarray:
    return frame.fields[0].values.cast(pa.int64()).to_numpy() // 1_000_000


def floats(field: Field) -> np.ndarray:
    return field.values.to_numpy(zero_copy_only=False)  # nulls (gaps) become NaN


def pairs(frames: list[Frame]) -> list[tuple[Frame, Frame]]:
    """(history, forecast) per series, in the order the response lists them."""
    assert len(frames) % 2 == 0 and all(f.name.endswith(" forecast") for f in frames[1::2])
    return list(zip(frames[::2], frames[1::2], strict=True))


def check_forecast(
    history: Frame, forecast: Frame, step_ms: int, labels: dict[str, str], display: str
) -> None:
    """The forecast continues the history's grid, carries its labels and has ordered quantiles."""
    hist_ts, fc_ts = times_ms(history), times_ms(forecast)
    assert np.all(np.diff(hist_ts) == step_ms) and np.all(hist_ts % step_ms == 0)
    assert fc_ts[0] == hist_ts[-1] + step_ms and np.all(np.diff(fc_ts) == step_ms)
    assert history.fields[1].labels == labels
    assert history.fields[1].config["displayNameFromDS"] == display
    by_q = {float(f.labels["quantile"]): f for f in forecast.fields[1:]}
    for q, f in by_q.items():
        assert f.labels == {**labels, "quantile": f"{q:.1f}"}
        assert f.config["displayNameFromDS"] == f"{display} p{round(q * 100)}"
        assert f.config["color"] == history.fields[1].config["color"]  # one colour per series
    bands = np.stack([floats(by_q[q]) for q in sorted(by_q)])
    assert np.isfinite(bands).all() and np.all(np.diff(bands, axis=0) >= 0)  # p10 <= ... <= p90


# -- QueryData -----------------------------------------------------------------------------
def test_every_series_gets_a_history_and_a_forecast_frame(
    ds: ForecastDataSource, ds_settings: DataSourceSettings, prom: PromEnv
) -> None:
    now = now_ms(prom)
    body = {"source": "prometheus", "expr": LOAD, "legendFormat": "{{instance}}", "model": "seasonal-naive",
            "step": "1m", "contextLength": 512, "quantiles": [0.1, 0.2, 0.8, 0.9]}
    result = run(ds, ds_settings, body, now - 6 * HOUR_MS, now + HOUR_MS)
    assert result.error is None, result.error
    assert [h.name for h, _ in pairs(result.frames)] == ["a", "b", "c"]
    for history, forecast in pairs(result.frames):
        truth = prom.data.series[f"load_{history.name}"]
        check_forecast(history, forecast, MINUTE_MS, truth.all_labels, history.name)  # __name__ included
        hist_ts, fc_ts = times_ms(history), times_ms(forecast)
        assert now - MINUTE_MS < hist_ts[-1] <= now  # the last whole step before now
        assert hist_ts[0] >= now - 6 * HOUR_MS  # drawn from the panel's start
        expected = expected_on_grid(truth, int(hist_ts[0]) // 1000, 60, hist_ts.size)
        np.testing.assert_array_equal(floats(history.fields[1]), expected)  # what Prometheus holds
        assert fc_ts[-2] < now + HOUR_MS <= fc_ts[-1]  # the forecast reaches the panel's end
        assert [float(f.labels["quantile"]) for f in forecast.fields[1:]] == [0.5, 0.1, 0.2, 0.8, 0.9]
        assert forecast.meta is not None and forecast.meta.custom["stepMs"] == MINUTE_MS
        assert "query_range toto_test_load" in forecast.meta.executed_query_string


@pytest.mark.parametrize(
    ("extra", "interval_ms", "step_ms"),
    [
        ({"step": "5m"}, MINUTE_MS, 300_000),  # the user's step, kept as given
        ({}, 30_000, 30_000),  # the panel's interval
        ({"horizon": "1d"}, MINUTE_MS, 900_000),  # coarsened: 512 steps must cover 4 × 1 day
    ],
    ids=["step-set", "panel-interval", "long-horizon"],
)
def test_step_is_the_one_preview_reports(
    ds: ForecastDataSource, ds_settings: DataSourceSettings, prom: PromEnv,
    extra: dict, interval_ms: int, step_ms: int,
) -> None:
    """Without a legend or __name__ the display name is the label set; the grid is the chosen step's."""
    now = now_ms(prom)
    body = {"source": "prometheus", "expr": "sum by (instance) (toto_test_load)", "model": "seasonal-naive",
            "contextLength": 512, **extra}
    result = run(ds, ds_settings, body, now - 6 * HOUR_MS, now + HOUR_MS, interval_ms)
    assert result.error is None, result.error
    preview = resource(ds, ds_settings, "POST", "preview", {}, json.dumps(
        {**body, "intervalMs": interval_ms, "range": {"from": now - 6 * HOUR_MS, "to": now + HOUR_MS}}
    ).encode())
    assert preview.status == 200 and preview.body["stepMs"] == step_ms and preview.body["series"] == 3
    for (history, forecast), instance in zip(pairs(result.frames), "abc", strict=True):
        check_forecast(history, forecast, step_ms, {"instance": instance}, f'{{instance="{instance}"}}')
        assert times_ms(history)[-1] == preview.body["historyEnd"] == now // step_ms * step_ms


def test_toto_checkpoint_forecasts_prometheus_history(
    ds: ForecastDataSource, ds_settings: DataSourceSettings, prom: PromEnv
) -> None:
    now = now_ms(prom)
    body = {"source": "prometheus", "expr": LOAD, "legendFormat": "{{instance}}", "step": "1m",
            "contextLength": 512, "horizon": "30m"}
    result = run(ds, ds_settings, body, now - HOUR_MS, now)
    assert result.error is None, result.error
    assert [h.name for h, _ in pairs(result.frames)] == ["a", "b", "c"]
    for history, forecast in pairs(result.frames):
        check_forecast(history, forecast, MINUTE_MS, prom.data.series[f"load_{history.name}"].all_labels,
                       history.name)
        assert forecast.rows == 30
        assert forecast.meta is not None and forecast.meta.custom["model"].startswith("toto:")
        assert any("random weights" in n.text for n in forecast.meta.notices)


def test_query_data_through_the_plugin_process(plugin: PluginProcess, prom: PromEnv) -> None:
    """Grafana's view: settings JSON with the Prometheus URL, the plugin's own clock, Toto (4m, random)."""
    end_ms = prom.data.end_s * 1000  # a past range: history ends at its end, on the grid
    ctx = plugin_context({"prometheusUrl": prom.url}, uid="prometheus-e2e")
    body = {"source": "prometheus", "expr": LOAD, "legendFormat": "{{instance}}", "step": "1m",
            "contextLength": 256, "horizon": "30m"}
    response = plugin.data.QueryData(
        pb.QueryDataRequest(pluginContext=ctx, queries=[data_query("A", body, end_ms - 3 * HOUR_MS, end_ms)])
    )
    answer = response.responses["A"]
    assert answer.status == 200, answer.error
    frames = [decode_frame(b) for b in answer.frames]
    assert [h.name for h, _ in pairs(frames)] == ["a", "b", "c"]
    for history, forecast in pairs(frames):
        truth = prom.data.series[f"load_{history.name}"]
        check_forecast(history, forecast, MINUTE_MS, truth.all_labels, history.name)
        assert times_ms(history)[-1] == end_ms and forecast.rows == 30
        np.testing.assert_array_equal(floats(history.fields[1])[-3:], truth.values[-3:])

    health = plugin.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=60)
    assert health.status == pb.CheckHealthResponse.OK
    assert f"Prometheus at {prom.url} reachable, version 2." in health.message
    url = "prometheus/label-values?label=instance&match=toto_test_load"
    (resp,) = plugin.resource.CallResource(
        pb.CallResourceRequest(pluginContext=ctx, path="prometheus/label-values", method="GET", url=url)
    )
    assert resp.code == 200 and json.loads(resp.body) == {"values": ["a", "b", "c"]}


# -- CallResource --------------------------------------------------------------------------
def test_preview_reports_series_step_and_history_span(
    ds: ForecastDataSource, ds_settings: DataSourceSettings, prom: PromEnv
) -> None:
    now = now_ms(prom)
    last_step = now // MINUTE_MS * MINUTE_MS

    def preview(expr: str, from_ms: int, to_ms: int) -> dict:
        body = {"source": "prometheus", "expr": expr, "step": "1m", "contextLength": 512,
                "range": {"from": from_ms, "to": to_ms}}
        resp = resource(ds, ds_settings, "POST", "preview", {}, json.dumps(body).encode())
        assert resp.status == 200, resp.body
        return resp.body

    body = preview(LOAD, now - 6 * HOUR_MS, now + HOUR_MS)
    assert body["series"] == 3 and (body["step"], body["stepMs"]) == ("1m", MINUTE_MS)
    assert body["historySpan"] == "8h 31m"  # 512 points, 511 steps
    assert (body["historyStart"], body["historyEnd"]) == (last_step - 511 * MINUTE_MS, last_step)
    assert (body["horizonSteps"], body["horizon"]) == (61, "1h 1m")  # to the panel's end
    assert preview("toto_test_many", now - 6 * HOUR_MS, now)["series"] == prom.data.many
    before = prom.data.late_s * 1000 - HOUR_MS  # the late series has not started yet
    assert preview("toto_test_late", before - HOUR_MS, before)["series"] == 0


def lookup(ds: ForecastDataSource, s: DataSourceSettings, what: str, **params: str) -> ResourceResponse:
    return resource(ds, s, "GET", f"prometheus/{what}", {k: [v] for k, v in params.items()}, b"")


def test_metric_name_and_label_value_lookups(ds: ForecastDataSource, ds_settings: DataSourceSettings) -> None:
    names = lookup(ds, ds_settings, "metric-names", match="toto_test")
    assert names.status == 200 and names.body == {"names": [
        "toto_test_late", "toto_test_load", "toto_test_many", "toto_test_requests_total", "toto_test_sparse"
    ]}
    fleet = lookup(ds, ds_settings, "metric-names", match='{job="fleet"}')
    assert fleet.body == {"names": ["toto_test_many"]}
    values = lookup(ds, ds_settings, "label-values", label="instance", match="toto_test_load")
    assert values.status == 200 and values.body == {"values": ["a", "b", "c"]}
    assert len(lookup(ds, ds_settings, "label-values", label="idx").body["values"]) == 300

    missing = lookup(ds, ds_settings, "label-values")
    assert missing.status == 400 and missing.body == {"error": "label-values needs a label parameter"}
    bad = lookup(ds, ds_settings, "label-values", label="instance", match="sum(")
    assert bad.status == 400 and bad.body["error"].startswith("Prometheus rejected the query: ")
    assert lookup(ds, ds_settings, "nope").status == 404
    unset = lookup(ds, DataSourceSettings(), "metric-names")
    assert unset.status == 400 and "no Prometheus URL" in unset.body["error"]


# -- CheckHealth ---------------------------------------------------------------------------
def test_health_includes_the_upstream_version(
    ds: ForecastDataSource, ds_settings: DataSourceSettings, prom: PromEnv
) -> None:
    version = httpx.get(f"{prom.url}/api/v1/status/buildinfo", timeout=10).json()["data"]["version"]
    health = check_health(ds, ds_settings)
    upstream = f"Prometheus at {prom.url} reachable, version {version}"
    assert health.ok and health.message.startswith("Toto 2.0 ready") and health.message.endswith(upstream)
    assert health.details["prometheus"] == {"ok": True, "message": upstream, "version": version}


def test_unreachable_upstream_fails_health_and_queries_without_leaking_url_credentials(
    ds: ForecastDataSource, model: ModelSettings, prom: PromEnv
) -> None:
    port = free_port()  # nothing listens here
    bad = settings(f"http://someone:{TOKEN}@127.0.0.1:{port}/")
    s = DataSourceSettings(model=model, parts=(("prometheus", bad),))
    message = f"cannot reach Prometheus at http://***@127.0.0.1:{port}: connection refused"
    health = check_health(ds, s)
    assert (health.ok, health.message) == (False, message)
    assert health.details["model"]["state"] == "ready"  # the model is fine: the upstream is the problem
    body = {"source": "prometheus", "expr": "up", "model": "seasonal-naive", "step": "1m"}
    result = run(ds, s, body, now_ms(prom) - HOUR_MS, now_ms(prom))
    assert result.error is not None
    assert (result.error.message, result.error.status, result.error.source) == (message, 502, "downstream")
    assert TOKEN not in repr(s) and f"url='http://***@127.0.0.1:{port}/'" in repr(s)


def test_health_over_tls_and_basic_auth(
    ds: ForecastDataSource, auth_prom: AuthEnv, model: ModelSettings
) -> None:
    """Settings as Grafana sends them: jsonData plus decrypted secure fields."""

    def health(password: str):  # type: ignore[no-untyped-def]
        s = parse_data_source_settings(RawSettings(
            json_data={"prometheusUrl": auth_prom.url, "authType": "basic", "basicAuthUser": BASIC_USER,
                       "model": model.checkpoint, "device": "cpu"},
            secure={"basicAuthPassword": password, "tlsCACert": auth_prom.ca_pem},
        ), ProcessConfig())
        return check_health(ds, s)

    good = health(BASIC_PASSWORD)
    assert good.ok and f"Prometheus at {auth_prom.url} reachable, version 2." in good.message
    bad = health("wrong-password")
    assert not bad.ok and bad.message == (
        f"Prometheus at {auth_prom.url} rejected the credentials (HTTP 401); "
        "check the data source's authentication settings"
    )
    assert bad.details["prometheus"]["ok"] is False and "wrong-password" not in json.dumps(bad.details)


def test_health_names_a_ca_certificate_that_does_not_parse(
    ds: ForecastDataSource, auth_prom: AuthEnv, model: ModelSettings
) -> None:
    s = parse_data_source_settings(RawSettings(
        json_data={"prometheusUrl": auth_prom.url, "model": model.checkpoint, "device": "cpu"},
        secure={"tlsCACert": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"},
    ), ProcessConfig())
    health = check_health(ds, s)
    assert not health.ok and health.message.startswith("Prometheus settings: data source setting tlsCACert")


# -- the per-configuration source cache ----------------------------------------------------
def test_an_evicted_source_still_serves_the_request_that_took_it(prom: PromEnv) -> None:
    clock = [0.0]
    registry = ModelRegistry(ProcessConfig(), warmup=False)
    manager = InstanceManager(builtin_sources(), registry, parse_data_source_settings, max_instances=1,
                              clock=lambda: clock[0])

    def get(settings: DataSourceSettings):  # type: ignore[no-untyped-def]
        return manager.for_settings(settings).source("prometheus")

    first = DataSourceSettings(uid="one", parts=(("prometheus", settings(prom.url)),))
    g = grid(prom.data.end_s, 60, 64)
    taken = get(first)  # a request takes the source ...
    assert get(first) is taken
    get(DataSourceSettings(uid="two", parts=(("prometheus", settings(prom.url)),)))  # ... evicts it
    assert len(taken.fetch(request(LOAD, g)).series) == 3  # ... and the request still gets its history
    fresh = get(first)
    assert fresh is not taken
    clock[0] += max(taken.settings.timeout_s + CLOSE_MARGIN_S, MIN_CLOSE_GRACE_S)  # no call can still run
    assert get(first) is fresh
    with pytest.raises(RuntimeError, match="client has been closed"):
        taken.fetch(request(LOAD, g))
    assert len(fresh.fetch(request(LOAD, g)).series) == 3
