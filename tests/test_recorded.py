"""queryType recorded: the value answered at evaluation time t is the forecast for t + leadTime,
one number per series, lead time and forecast (yhat, yhat_lower, yhat_upper), labelled so the
label sets alone are unique (Grafana's recording-rule writer drops field names), the same for
dashboards and alert/recording evaluations; bad input is a 400 naming the field.

Runs in-process through ForecastDataSource with a fixed clock. A ramp forecaster defined here
(quantile q at forecast step i is 1000·q + i + 100·row) makes every expected value a formula of
the forecast position, so interpolation between steps is checked exactly; the seasonal-naive
baseline checks that a recorded value equals the forecast panel's at the same moment.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest
from conftest import run_queries
from toto_datasource.core.settings import DataSourceSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.engine.types import QUANTILE_LEVELS, Forecaster, ForecastJob, ForecastOutput
from toto_datasource.frames import decode_frame, encode_frame
from toto_datasource.frames.model import Frame
from toto_datasource.frames.recorded import lead_label
from toto_datasource.service import DataQueryInput, ForecastDataSource, QueryResult

MIN = 60_000
NOW = 29_916_667 * MIN + 20_000  # 20 s past a minute (2026-11-18)
END = NOW - 20_000  # the last whole minute at or before NOW
LEVELS = np.array(QUANTILE_LEVELS)


class RampForecaster:
    """Quantile q of row r at forecast step i (1-based): 1000·q + i + 100·r; rows listed in
    `missing` are NaN (a model with nothing to say)."""

    name = "ramp-test"

    def __init__(self, missing: tuple[int, ...] = ()) -> None:
        self.missing = missing

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        rows, horizon = job.context.shape[0], job.horizon
        steps = np.arange(1, horizon + 1, dtype=np.float64)
        out = 1000 * LEVELS[:, None, None] + steps[None, None, :] + 100 * np.arange(rows)[None, :, None]
        out[:, list(self.missing), :] = np.nan
        future: Future[ForecastOutput] = Future()
        future.set_result(ForecastOutput(out, self.name))
        return future

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class WithForecaster(ForecastDataSource):
    def __init__(self, forecaster: Forecaster) -> None:
        super().__init__(ModelRegistry(warmup=False), clock=lambda: NOW / 1000)
        self.test_forecaster = forecaster

    def forecaster_for(self, query_model: str, settings: DataSourceSettings) -> Forecaster:
        return self.test_forecaster


def inline(name: str, labels: dict[str, str], end_ms: int = END, n: int = 128) -> dict[str, Any]:
    ts = [end_ms - (n - 1 - i) * MIN for i in range(n)]
    return {"name": name, "labels": labels, "timestamps": ts, "values": [100.0 + i % 7 for i in range(n)]}


def run(ds: ForecastDataSource, bodies: dict[str, dict], *, to_ms: int = NOW, alert: bool = False,
        settings: DataSourceSettings | None = None) -> dict[str, QueryResult]:
    queries = [DataQueryInput(ref, "", json.dumps(b).encode(), to_ms - 3_600_000, to_ms, MIN, 1000)
               for ref, b in bodies.items()]
    return run_queries(ds, settings or DataSourceSettings(), queries, alert=alert)


def recorded(result: QueryResult) -> Frame:
    """The one numeric-wide frame, checked the way Grafana's writer reads it: numbers only, one
    value each, no nulls, and label sets unique without the field names."""
    assert result.error is None, result.error
    (frame,) = result.frames
    assert frame.meta is not None and (frame.meta.type, frame.meta.type_version) == ("numeric-wide", (0, 1))
    label_sets = [tuple(sorted((f.labels or {}).items())) for f in frame.fields]
    assert len(set(label_sets)) == len(label_sets)
    for f in frame.fields:
        assert f.tstype == "number" and len(f) == 1 and not f.nullable and "__name__" not in (f.labels or {})
    again = decode_frame(encode_frame(frame, "A"))
    assert [f.labels for f in again.fields] == [f.labels for f in frame.fields]
    return frame


def by_labels(frame: Frame, key: str) -> dict[tuple[str, str, str], float]:
    """{(series label `key`, ml_forecast, ml_lead_time): value}."""
    return {(f.labels[key], f.labels["ml_forecast"], f.labels["ml_lead_time"]): f.values.to_pylist()[0]
            for f in frame.fields if f.labels}


@pytest.fixture()
def ramp() -> ForecastDataSource:
    return WithForecaster(RampForecaster())


def test_the_value_at_t_is_the_forecast_for_t_plus_lead_time(ramp: ForecastDataSource) -> None:
    body = {"queryType": "recorded", "source": "inline", "leadTime": ["1h", "15m"],
            "series": [inline("a", {"host": "a"}), inline("b", {"host": "b"})]}
    dashboard = recorded(run(ramp, {"A": body})["A"])
    alert = recorded(run(ramp, {"A": body}, alert=True)["A"])
    got = by_labels(alert, "host")
    assert by_labels(dashboard, "host") == got  # panels, alert and recording rules: the same numbers
    assert len(got) == 2 * 2 * 3
    for row, host in enumerate("ab"):
        for lead_ms, lead in ((15 * MIN, "15m"), (60 * MIN, "1h")):
            position = (NOW + lead_ms - END) / MIN  # forecast steps after the last history point
            for kind, q in (("yhat", 0.5), ("yhat_lower", 0.1), ("yhat_upper", 0.9)):
                assert got[(host, kind, lead)] == pytest.approx(1000 * q + position + 100 * row, abs=1e-9)
    assert alert.meta.custom["evaluatedAtMs"] == NOW
    assert alert.meta.custom["forecasts"] == {"yhat": 0.5, "yhat_lower": 0.1, "yhat_upper": 0.9}


@pytest.mark.parametrize(("to_ms", "at_ms"), [(NOW - 7_200_000 + 30_000, NOW - 7_200_000 + 30_000),
                                               (NOW + 3_600_000, NOW)])
def test_t_is_the_range_end_or_now_when_the_range_ends_later(ramp: ForecastDataSource, to_ms: int,
                                                             at_ms: int) -> None:
    """A rule's range ends at its evaluation time; a panel reaching into the future is evaluated now."""
    body = {"queryType": "recorded", "source": "demo", "scenario": "postgres-load", "leadTime": "1h",
            "step": "1m", "quantiles": [0.5]}
    frame = recorded(run(ramp, {"A": body}, to_ms=to_ms, alert=True)["A"])
    (field,) = frame.fields
    end = at_ms // MIN * MIN
    assert frame.meta.custom["evaluatedAtMs"] == at_ms
    assert field.values.to_pylist()[0] == pytest.approx(500 + (at_ms + 3_600_000 - end) / MIN)
    assert field.labels == {"db": "orders", "instance": "pg-primary", "ml_forecast": "yhat",
                            "ml_lead_time": "1h"}


def test_source_labels_are_kept_clashes_renamed_and_label_sets_unique(ramp: ForecastDataSource) -> None:
    series = [inline("qps", {"__name__": "db_qps", "host": "a"}),
              inline("qps2", {"__name__": "db_qps2", "host": "a"}),  # the same labels once __name__ goes
              inline("c", {"host": "c", "ml_forecast": "old", "ml_lead_time": "2h"})]
    body = {"queryType": "recorded", "source": "inline", "series": series, "leadTime": "15m",
            "quantiles": [0.5]}
    frame = recorded(run(ramp, {"A": body}, alert=True)["A"])
    assert [f.labels for f in frame.fields] == [
        {"host": "a", "series": "qps", "ml_forecast": "yhat", "ml_lead_time": "15m"},
        {"host": "a", "series": "qps2", "ml_forecast": "yhat", "ml_lead_time": "15m"},
        {"host": "c", "exported_ml_forecast": "old", "exported_ml_lead_time": "2h", "ml_forecast": "yhat",
         "ml_lead_time": "15m"},
    ]


def test_a_value_without_a_forecast_is_left_out_and_named() -> None:
    """The writer refuses a whole evaluation for one null: such values are left out, with a
    warning; nothing left is the data plane's no-data frame (the rule writes nothing)."""
    body = {"queryType": "recorded", "source": "inline", "leadTime": "15m",
            "series": [inline("a", {"host": "a"}), inline("b", {"host": "b"})]}
    frame = recorded(run(WithForecaster(RampForecaster(missing=(1,))), {"A": body}, alert=True)["A"])
    assert {f.labels["host"] for f in frame.fields} == {"a"} and len(frame.fields) == 3
    (notice,) = [n for n in frame.meta.notices if "not recorded" in n.text]
    assert notice.severity == "warning"
    assert "3 values were not recorded" in notice.text and "b yhat +15m" in notice.text
    empty = recorded(run(WithForecaster(RampForecaster(missing=(0, 1))), {"A": body}, alert=True)["A"])
    assert empty.fields == [] and empty.meta.type == "numeric-wide"


def test_the_recorded_median_is_the_forecast_panels_median_at_that_moment() -> None:
    """Planned as a forecast with horizon = leadTime: the same step and the same numbers."""
    t = END // (5 * MIN) * 5 * MIN  # on the 5-minute step a day ahead gets
    ds = ForecastDataSource(ModelRegistry(warmup=False), clock=lambda: t / 1000)
    common = {"source": "demo", "scenario": "postgres-load", "model": "seasonal-naive"}
    results = run(ds, {"R": {**common, "queryType": "recorded", "leadTime": "1d", "quantiles": [0.1, 0.9]},
                       "F": {**common, "queryType": "forecast", "horizon": "1d", "includeHistory": False}},
                  to_ms=t)
    frame = recorded(results["R"])
    (forecast,) = results["F"].frames
    assert frame.meta.custom["stepMs"] == forecast.meta.custom["stepMs"] == 5 * MIN  # a day ahead
    target = t + 86_400_000
    times = forecast.fields[0].values.cast("int64").to_numpy() // 1_000_000
    at = int(np.flatnonzero(times == target)[0])
    panel = {f.labels["quantile"]: f.values.to_pylist()[at] for f in forecast.fields[1:]}
    got = {f.labels["ml_forecast"]: f.values.to_pylist()[0] for f in frame.fields}
    assert got == {"yhat": panel["0.5"], "yhat_lower": panel["0.1"], "yhat_upper": panel["0.9"]}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({}, "leadTime", "needs a leadtime"),
    ({"leadTime": "1m", "step": "5m"}, "leadTime", "shorter than the step"),
    ({"leadTime": "7d", "step": "1m"}, "leadTime", "8192 steps"),
    ({"leadTime": ["60m", "1h"]}, "leadTime", "the same lead time"),
    ({"leadTime": "0m"}, "leadTime", "not a lead time"),
    ({"leadTime": [f"{i}h" for i in range(1, 10)]}, "leadTime", "at most 8"),
    ({"leadTime": "1h", "quantiles": [0.1, 0.2, 0.9]}, "quantiles", "one band"),
])
def test_bad_input_is_that_querys_400_naming_the_field(ramp: ForecastDataSource, body: dict, field: str,
                                                       words: str) -> None:
    good = {"queryType": "recorded", "source": "demo", "leadTime": "15m"}
    results = run(ramp, {"bad": {"queryType": "recorded", "source": "demo", **body}, "good": good})
    error = results["bad"].error
    assert error is not None and error.status == 400
    assert error.message.startswith(f"{field}:") and words in error.message.lower()
    recorded(results["good"])


def test_stale_history_cannot_reach_far_past_it(ramp: ForecastDataSource) -> None:
    """Inline points ending 30 days before t: t + 1h is 43,000+ steps away, past the horizon limit."""
    body = {"queryType": "recorded", "source": "inline", "leadTime": "1h",
            "series": [inline("a", {"host": "a"}, end_ms=END - 30 * 86_400_000)]}
    error = run(ramp, {"A": body})["A"].error
    assert error is not None and error.status == 400
    assert error.message.startswith("leadTime: 1h after the evaluation time is 43261 steps of 1m")


def test_a_query_over_the_model_work_limit_is_told_to_shorten_its_lead_time(ramp: ForecastDataSource) -> None:
    body = {"queryType": "recorded", "source": "demo", "scenario": "all", "leadTime": "1d"}
    error = run(ramp, {"A": body}, settings=DataSourceSettings(max_query_patches=100))["A"].error
    assert error is not None and error.status == 400
    assert "maxQueryPatches" in error.message and "a shorter leadTime" in error.message


@pytest.mark.parametrize(("ms", "label"), [(15 * MIN, "15m"), (60 * MIN, "1h"), (90 * MIN, "1h30m"),
                                           (8 * 86_400_000, "1w1d"), (1500, "1s500ms")])
def test_lead_time_labels_are_prometheus_durations(ms: int, label: str) -> None:
    assert lead_label(ms) == label
