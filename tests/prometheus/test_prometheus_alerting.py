"""Threshold and anomaly queries over the backfilled history of the real test Prometheus.

load{instance="c"} carries one +500 spike three days before the end of the history
(prom_synthetic.generate); the anomaly query must rank exactly that point first. The model is
the seasonal-naive baseline: its band is meaningful without trained weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import run_queries
from toto_datasource.core.settings import DataSourceSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.engine.types import QUANTILE_LEVELS
from toto_datasource.frames.model import Frame
from toto_datasource.querytypes.crossing import breach_probability, first_crossing, sentinel_seconds
from toto_datasource.service import DataQueryInput, ForecastDataSource, QueryResult

from .prom_testkit import PromEnv, settings

MINUTE_MS = 60_000
EXPR = 'toto_test_load{job="app"}'


@pytest.fixture(scope="module")
def ds() -> Iterator[ForecastDataSource]:
    registry = ModelRegistry(warmup=False)  # seasonal-naive needs no checkpoint
    yield ForecastDataSource(registry, clock=time.time)
    registry.close()


@pytest.fixture(scope="module")
def ds_settings(prom: PromEnv) -> DataSourceSettings:
    return DataSourceSettings(parts=(("prometheus", settings(prom.url)),))


def run(ds: ForecastDataSource, s: DataSourceSettings, body: dict, from_ms: int, to_ms: int,
        alert: bool = False) -> QueryResult:
    query = DataQueryInput("A", "", json.dumps(body).encode(), from_ms, to_ms, MINUTE_MS, 1000)
    (result,) = run_queries(ds, s, [query], alert=alert).values()
    assert result.error is None, result.error
    return result


def number(frame: Frame, name: str, instance: str) -> float:
    (field,) = [f for f in frame.fields if f.name == name and (f.labels or {}).get("instance") == instance]
    return float(field.values.to_pylist()[0])


def test_the_injected_spike_scores_highest(ds: ForecastDataSource, ds_settings: DataSourceSettings,
                                           prom: PromEnv) -> None:
    spike_ms = prom.data.spike_s * 1000
    body = {"queryType": "anomaly", "source": "prometheus", "expr": EXPR, "legendFormat": "{{instance}}",
            "model": "seasonal-naive", "step": "1m", "contextLength": 512}
    result = run(ds, ds_settings, body, spike_ms - 6 * 3_600_000, spike_ms + 6 * 3_600_000)
    *per_series, summary = result.frames
    assert [f.fields[1].labels["instance"] for f in per_series] == ["a", "b", "c"]
    for frame in per_series:
        times = np.array(frame.fields[0].values.to_pylist(), dtype="datetime64[ms]").astype(np.int64)
        assert np.all(np.diff(times) == MINUTE_MS)
        (score,) = [f for f in frame.fields if f.name == "anomaly_score"]
        scores = np.array([np.nan if v is None else v for v in score.values.to_pylist()])
        top = int(np.nanargmax(scores))
        if frame.fields[1].labels["instance"] == "c":
            assert times[top] == spike_ms and scores[top] > 20  # 500 above a band a few units wide
            assert np.sort(scores[np.isfinite(scores)])[-2] < scores[top] / 10
        else:
            assert np.nanmax(scores) < 5  # no spike in a or b: nothing stands out like it
    assert number(summary, "max_anomaly_score", "c") > 20
    assert number(summary, "max_anomaly_score", "a") < 5


def test_threshold_over_backfilled_history(ds: ForecastDataSource, ds_settings: DataSourceSettings,
                                           prom: PromEnv) -> None:
    """One row per series, labels carried; the numbers are what the forecast's quantiles imply."""
    end_ms = prom.data.end_s * 1000
    forecast = {"queryType": "forecast", "source": "prometheus", "expr": 'toto_test_load{instance="c"}',
                "model": "seasonal-naive", "step": "1m", "horizon": "2h", "includeHistory": False,
                "quantiles": list(QUANTILE_LEVELS)}
    (fc,) = run(ds, ds_settings, forecast, end_ms - 3_600_000, end_ms).frames
    quantiles = np.stack([np.array(f.values.to_pylist()) for f in sorted(
        fc.fields[1:], key=lambda f: float(f.labels["quantile"]))])
    p90 = quantiles[-1]
    threshold = float(np.sort(p90)[len(p90) // 2])  # crossed by the p90 somewhere in the 2 h

    body = {**forecast, "queryType": "threshold", "expr": EXPR, "threshold": threshold, "direction": "above"}
    (frame,) = run(ds, ds_settings, body, end_ms - 3_600_000, end_ms).frames
    assert frame.meta is not None and frame.meta.type == "numeric-wide" and frame.rows == 1
    seconds = number(frame, "time_to_breach", "c")
    assert seconds == (first_crossing(p90, threshold, "above") + 1) * 60
    probability = float(breach_probability(quantiles, threshold, "above"))
    assert number(frame, "breach_probability", "c") == pytest.approx(probability)
    assert number(frame, "forecast_peak", "c") == pytest.approx(float(p90.max()))
    assert {(f.labels or {}).get("instance") for f in frame.fields} == {"a", "b", "c"}

    never = run(ds, ds_settings, {**body, "threshold": 1e6}, end_ms - 3_600_000, end_ms).frames[0]
    for instance in ("a", "b", "c"):
        assert number(never, "time_to_breach", instance) == sentinel_seconds(MINUTE_MS, 120)
        assert number(never, "will_breach", instance) == 0

    alert = run(ds, ds_settings, body, end_ms - 3_600_000, end_ms, alert=True)
    (alert_frame,) = alert.frames
    assert [f.name for f in alert_frame.fields] == ["time_to_breach"] * 3
    assert len({tuple(sorted(f.labels.items())) for f in alert_frame.fields}) == 3
