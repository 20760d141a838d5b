"""Limits a production SRE relies on: one answer per refId, a query's model work bounded before it
runs (a 400 naming the limit), the queue wait reported in frame meta."""

from __future__ import annotations

import json

import pytest
from conftest import run_queries
from toto_datasource.core.settings import DataSourceSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.service import DataQueryInput, ForecastDataSource

NOW = 1_795_000_000_000
HOUR = 3_600_000


@pytest.fixture(scope="module")
def ds() -> ForecastDataSource:
    return ForecastDataSource(ModelRegistry(warmup=False), clock=lambda: NOW / 1000)


def query(ref: str, body: dict, from_ms: int = NOW - HOUR) -> DataQueryInput:
    return DataQueryInput(ref, "", json.dumps(body).encode(), from_ms, NOW, 60_000, 1000)


NAIVE = {"source": "demo", "model": "seasonal-naive", "step": "1m", "horizon": 10}


def test_duplicate_ref_ids_are_refused_clearly_and_the_others_answered(ds: ForecastDataSource) -> None:
    results = run_queries(ds, DataSourceSettings(), [query("A", NAIVE), query("A", NAIVE), query("B", NAIVE)])
    assert results["A"].error is not None and results["A"].error.status == 400
    assert "refId 'A' is used by 2 queries" in results["A"].error.message
    assert results["B"].error is None and results["B"].frames


def test_a_query_over_the_cost_limit_is_a_400_naming_the_limit(ds: ForecastDataSource) -> None:
    """The issue's heavy query: anomaly windows of 1 step over 8 h with an 8192-point context."""
    heavy = {"source": "demo", "queryType": "anomaly", "anomalyWindow": 1, "contextLength": 8192,
             "model": "seasonal-naive", "step": "1m"}
    results = run_queries(ds, DataSourceSettings(), [query("H", heavy, NOW - 8 * HOUR), query("B", NAIVE)])
    error = results["H"].error
    assert error is not None and error.status == 400
    assert "maxQueryPatches" in error.message and "anomalyWindow" in error.message
    assert "480 windows × 1 series × 257 patches" in error.message
    assert results["B"].error is None
    roomy = DataSourceSettings(max_query_patches=200_000)  # the admin may allow it
    assert run_queries(ds, roomy, [query("H", heavy, NOW - 8 * HOUR)])["H"].error is None


def test_frames_report_how_long_the_query_waited_for_the_model(ds: ForecastDataSource) -> None:
    result = run_queries(ds, DataSourceSettings(), [query("A", {**NAIVE, "includeHistory": False})])["A"]
    (frame, *_) = result.frames
    assert frame.meta.custom["queueWaitMs"] >= 0


def field_keys(frames) -> list[tuple[str, tuple[tuple[str, str], ...]]]:  # type: ignore[no-untyped-def]
    return [(f.name, tuple(sorted((f.labels or {}).items()))) for frame in frames for f in frame.fields
            if f.tstype != "time"]


@pytest.mark.parametrize("body", [
    {"queryType": "anomaly", "source": "demo", "scenario": "all", "model": "seasonal-naive", "step": "1m"},
    {"queryType": "forecast", "source": "demo", "scenario": "all", "model": "seasonal-naive", "step": "1m"},
    {"queryType": "threshold", "source": "demo", "scenario": "all", "model": "seasonal-naive", "step": "1m",
     "threshold": 500},
])
def test_every_name_and_label_set_is_unique_across_a_responses_frames(ds: ForecastDataSource,
                                                                       body: dict) -> None:
    for alert in (False, True):
        queries = [query("A", body, NOW - 6 * HOUR)]
        (result,) = run_queries(ds, DataSourceSettings(), queries, alert=alert).values()
        assert result.error is None, result.error
        keys = field_keys(result.frames)
        assert len(keys) == len(set(keys)), (body["queryType"], alert)


def test_a_threshold_query_as_annotations_marks_the_breach_window_and_the_forecast_start(
        ds: ForecastDataSource) -> None:
    """The demo disk fills at a known rate: the breach window starts where the forecast first
    crosses, its text names the series, quantile, threshold, time and probability."""
    body = {"source": "demo", "scenario": "disk-fill", "queryType": "threshold", "model": "seasonal-naive",
            "threshold": 0, "direction": "below", "horizon": "14d", "annotation": True}
    (result,) = run_queries(ds, DataSourceSettings(), [query("A", body, NOW - 6 * HOUR)]).values()
    assert result.error is None, result.error
    (frame,) = result.frames
    assert [f.name for f in frame.fields] == ["time", "timeEnd", "text", "tags"]
    texts, tags = frame.fields[2].values.to_pylist(), frame.fields[3].values.to_pylist()
    assert texts[0].startswith("Forecast starts (seasonal-naive, 14d ahead)") and "forecast-start" in tags[0]
    (breach,) = [t for t in texts[1:] if "falls below 0" in t]
    assert " p10 falls below 0 at " in breach and ", in 9d" in breach and "P = " in breach
    start, end = (f.values.to_pylist()[1] for f in frame.fields[:2])
    assert end >= start
    numbers = {**body, "annotation": False}
    (plain,) = run_queries(ds, DataSourceSettings(), [query("A", numbers, NOW - 6 * HOUR)])["A"].frames
    breach_at = plain.meta.custom["series"][0]["breachAtMs"]
    assert int(start.timestamp() * 1000) == breach_at  # the same first crossing as the alert frame
