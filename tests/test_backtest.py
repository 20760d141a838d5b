"""queryType backtest on signals with known answers: through QueryData in process, the
preview route, and the plugin started as Grafana starts it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import data_query, plugin_context, resource, run_queries
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.core.settings import DataSourceSettings, ModelSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.frames import decode_frame
from toto_datasource.plugin.host import PluginProcess
from toto_datasource.service import DataQueryInput, ForecastDataSource

NOW = 1_795_000_000_000
MINUTE = 60_000
# Toto's checkpoint is a missing local directory: it fails at once, and the backtest goes on without it.
NO_TOTO = DataSourceSettings(model=ModelSettings(checkpoint="/nonexistent/toto"))


@pytest.fixture(scope="module")
def ds() -> ForecastDataSource:
    return ForecastDataSource(ModelRegistry(warmup=False), clock=lambda: NOW / 1000)


def inline(values: np.ndarray, step_ms: int, **query: object) -> dict:
    ts = NOW - step_ms * np.arange(values.size)[::-1]
    series = [{"name": "signal", "labels": {"job": "test"}, "timestamps": ts.tolist(),
               "values": values.tolist()}]
    return {"queryType": "backtest", "source": "inline", "model": "statistical", "series": series, **query}


def run(ds: ForecastDataSource, body: dict, settings: DataSourceSettings = NO_TOTO):  # type: ignore[no-untyped-def]
    q = DataQueryInput("A", "", json.dumps(body).encode(), NOW - 3_600_000, NOW, MINUTE, 1000)
    return run_queries(ds, settings, [q])["A"]


def table(frame) -> dict[tuple[str, str], dict[str, float]]:  # type: ignore[no-untyped-def]
    cols = {f.name: f.values.to_pylist() for f in frame.fields}
    return {(s, m): {k: cols[k][i] for k in cols if k not in ("series", "model")}
            for i, (s, m) in enumerate(zip(cols["series"], cols["model"], strict=True))}


def test_pure_sine_seasonal_naive_is_exact_and_the_summary_says_so(ds: ForecastDataSource) -> None:
    """A 60-minute sine at 1-minute steps: seasonal-naive repeats the hour exactly (MASE 0), the
    statistical fallback picks it on its holdout (a tie), Toto is skipped with a notice."""
    context, horizon, windows = 256, 30, 8
    values = np.sin(2 * np.pi * np.arange(context + windows * horizon) / 60)
    result = run(ds, inline(values, MINUTE, contextLength=context, horizon=horizon, backtestWindows=windows))
    assert result.error is None, result.error
    scores_frame, panel = result.frames
    scores = table(scores_frame)
    assert set(scores) == {("signal", "statistical"), ("signal", "seasonal-naive")}
    naive = scores["signal", "seasonal-naive"]
    assert naive["MASE"] < 1e-9 and naive["CRPS"] < 1e-9 and naive["coverage 10-90 %"] == 1.0
    assert naive["windows"] == windows
    assert scores["signal", "statistical"]["MASE"] < 1e-6
    custom = scores_frame.meta.custom
    assert custom["summary"] == ("The statistical fallback ties with seasonal-naive on this metric: "
                                 "MASE 0.00 vs 0.00 over 8 windows")
    assert custom["backtest"]["contextSteps"] == context and custom["backtest"]["horizonSteps"] == horizon
    assert any("Toto is not in this backtest" in n.text for n in scores_frame.meta.notices)
    # The panel: the last K horizons of actuals and each model's backtest medians on the same times.
    names = [f.name for f in panel.fields]
    assert names == ["time", "actual", "backtest statistical p50", "backtest seasonal-naive p50"]
    assert panel.rows == windows * horizon
    actual = np.array(panel.fields[1].values.to_pylist())
    np.testing.assert_allclose(actual, values[-windows * horizon :])
    np.testing.assert_allclose(np.array(panel.fields[3].values.to_pylist()), actual, atol=1e-9)
    assert panel.meta.custom["summary"] == custom["summary"]


def test_a_period_off_the_calendar_the_statistical_fallback_beats_seasonal_naive(
        ds: ForecastDataSource) -> None:
    """A 60-minute sine sampled every 7 minutes: no hour/day/week season fits the step, so
    seasonal-naive extends a slope; the fallback finds the period in the data."""
    step = 7 * MINUTE
    values = np.sin(2 * np.pi * np.arange(1024 + 4 * 60) * 7 / 60)
    result = run(ds, inline(values, step, contextLength=1024, horizon=60, backtestWindows=4))
    assert result.error is None, result.error
    scores = table(result.frames[0])
    fallback, naive = scores["signal", "statistical"], scores["signal", "seasonal-naive"]
    assert fallback["MASE"] < 0.5 * naive["MASE"]
    assert fallback["relative to seasonal-naive"] > 0.5 and naive["relative to seasonal-naive"] == 0.0
    summary = result.frames[0].meta.custom["summary"]
    assert summary.startswith("The statistical fallback beats seasonal-naive by ")
    assert summary.endswith(f"MASE {fallback['MASE']:.2f} vs {naive['MASE']:.2f} over 4 windows")


def test_every_models_work_is_counted_against_max_query_patches(ds: ForecastDataSource) -> None:
    values = np.sin(np.arange(512 + 8 * 32) / 5)
    body = inline(values, MINUTE, contextLength=512, horizon=32, backtestWindows=8)
    # 3 models × 1 series × 8 windows × (512 + 32) / 32 = 17 patches = 408.
    tight = DataSourceSettings(model=NO_TOTO.model, max_query_patches=400)
    error = run(ds, body, tight).error
    assert error is not None and error.status == 400
    assert "408 model patches" in error.message
    assert "3 models × 1 series × 8 windows × 17 patches" in error.message
    assert "maxQueryPatches" in error.message and "backtestWindows" in error.message
    assert run(ds, body, DataSourceSettings(model=NO_TOTO.model, max_query_patches=408)).error is None


def test_too_little_history_and_too_many_windows_are_400s(ds: ForecastDataSource) -> None:
    short = run(ds, inline(np.arange(40.0), MINUTE, contextLength=32, horizon=10, backtestWindows=4))
    assert short.error is not None and short.error.status == 400
    assert "leave 0 observed points of context" in short.error.message
    many = run(ds, inline(np.arange(40.0), MINUTE, backtestWindows=33))
    assert many.error is not None and many.error.status == 400 and "backtestWindows" in many.error.message


def test_every_name_and_label_set_is_unique_across_the_frames(ds: ForecastDataSource) -> None:
    body = {"queryType": "backtest", "source": "demo", "scenario": "all", "model": "seasonal-naive",
            "step": "1m", "horizon": 20, "contextLength": 256, "backtestWindows": 3}
    result = run(ds, body)
    assert result.error is None, result.error
    keys = [(f.name, tuple(sorted((f.labels or {}).items()))) for fr in result.frames for f in fr.fields
            if f.tstype != "time" and fr.name != "backtest scores"]
    assert len(keys) == len(set(keys))
    assert result.frames[0].meta.custom["summary"].endswith("over 3 windows")
    assert "these 5 series (mean)" in result.frames[0].meta.custom["summary"]


def test_preview_returns_the_summary_for_a_backtest_only(ds: ForecastDataSource) -> None:
    values = np.sin(2 * np.pi * np.arange(256 + 8 * 30) / 60)
    body = inline(values, MINUTE, contextLength=256, horizon=30)
    answer = resource(ds, NO_TOTO, "POST", "preview", {}, json.dumps(body).encode())
    assert answer.status == 200, answer.body
    assert answer.body["summary"].startswith("The statistical fallback ties with seasonal-naive")
    assert answer.body["horizonSteps"] == 30
    forecast = resource(ds, NO_TOTO, "POST", "preview", {},
                             json.dumps({**body, "queryType": "forecast"}).encode())
    assert forecast.status == 200 and "summary" not in forecast.body


def test_backtest_through_the_plugin_as_grafana_starts_it(plugin: PluginProcess, now_ms: int) -> None:
    """With the random-weight test checkpoint loaded, Toto is backtested too (and flagged as random);
    the line judges the statistical fallback, never random weights."""
    body = {"queryType": "backtest", "source": "demo", "scenario": "cpu", "model": "statistical",
            "step": "1m", "horizon": 16, "contextLength": 128, "backtestWindows": 2}
    response = plugin.data.QueryData(pb.QueryDataRequest(
        pluginContext=plugin_context(), queries=[data_query("B", body, now_ms - 3_600_000, now_ms)]),
        timeout=120).responses["B"]
    assert response.status == 200, response.error
    scores, panel = (decode_frame(b) for b in response.frames)
    models = scores.fields[1].values.to_pylist()
    assert models == ["toto", "statistical", "seasonal-naive"]
    assert scores.fields[-1].values.to_pylist() == [2.0, 2.0, 2.0]  # windows
    assert scores.meta.custom["summary"].startswith("The statistical fallback ")
    assert scores.meta.custom["summary"].endswith("over 2 windows")
    assert any("random weights" in n.text for n in scores.meta.notices)
    assert panel.rows == 32 and [f.name for f in panel.fields][2:] == [
        "backtest toto p50", "backtest statistical p50", "backtest seasonal-naive p50"]
    preview = {**body, "range": {"from": now_ms - 3_600_000, "to": now_ms}}
    req = pb.CallResourceRequest(pluginContext=plugin_context(), path="preview", method="POST",
                                 url="preview", body=json.dumps(preview).encode())
    (resp,) = list(plugin.resource.CallResource(req, timeout=120))
    answer = json.loads(resp.body)
    assert resp.code == 200 and answer["summary"] == scores.meta.custom["summary"]
