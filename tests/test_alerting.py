"""queryType threshold and anomaly end to end: the alerting frames (numeric-wide, FromAlert),
capacity horizons, joint forecasts and bad input (the arithmetic is tests/test_crossing.py).

Runs in-process through ForecastDataSource (no plugin subprocess) with a fixed clock, the
seasonal-naive baseline, a drift forecaster defined here (a model whose quantiles are known) and
the random-weight 4m Toto checkpoint. Random weights give meaningless numbers, so Toto checks are
on the arithmetic: what the frames report must follow from the quantiles the model returned.
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import run_queries
from toto_datasource.core.settings import DataSourceSettings, ModelSettings
from toto_datasource.engine.decoding import LONG_HORIZON_BLOCK, decode_block_for
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.engine.types import QUANTILE_LEVELS, Forecaster, ForecastJob, ForecastOutput
from toto_datasource.frames import decode_frame, encode_frame
from toto_datasource.frames.model import Frame
from toto_datasource.querytypes.crossing import (
    breach_probability,
    first_crossing,
)
from toto_datasource.querytypes.scoring import anomaly_scores
from toto_datasource.service import DataQueryInput, ForecastDataSource, QueryResult
from toto_datasource.sources.base import HistoryRequest
from toto_datasource.sources.demo import DISK_CAPACITY, DISK_FILL_PER_DAY, DISK_FREE_AT_END, DemoSource

NOW = 498_611 * 3_600_000  # fixed clock on a whole hour (2026-11-18)
HOUR, DAY = 3_600_000, 86_400_000
Z = np.array([-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816])  # N(0,1) quantiles


# -- fixtures ------------------------------------------------------------------------------
class DriftForecaster:
    """A known model: last value + least-squares slope of the last `fit` points × steps ahead,
    with a Gaussian band of fixed width. Stands in for a model that extrapolates trends."""

    name = "drift-test"

    def __init__(self, sigma: float, fit: int = 24 * 7) -> None:
        self.sigma, self.fit = sigma, fit
        self.jobs: list[ForecastJob] = []

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        self.jobs.append(job)
        rows = []
        for row in job.context:
            y = row[-self.fit :]
            slope = np.polyfit(np.arange(y.size), y, 1)[0]
            median = y[-1] + slope * np.arange(1, job.horizon + 1)
            rows.append(median[None, :] + (Z * self.sigma)[:, None])
        future: Future[ForecastOutput] = Future()
        future.set_result(ForecastOutput(np.stack(rows, axis=1), self.name))
        return future

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class WithForecaster(ForecastDataSource):
    """The data source with a test forecaster in place of the model (query `model` ignored)."""

    def __init__(self, registry: ModelRegistry, forecaster: Forecaster) -> None:
        super().__init__(registry, clock=lambda: NOW / 1000)
        self.test_forecaster = forecaster

    def forecaster_for(self, query_model: str, settings: DataSourceSettings) -> Forecaster:
        return self.test_forecaster


@pytest.fixture(scope="module")
def settings(tiny_checkpoint: Path) -> DataSourceSettings:
    return DataSourceSettings(model=ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu"))


@pytest.fixture(scope="module")
def registry(settings: DataSourceSettings):  # type: ignore[no-untyped-def]
    registry = ModelRegistry(warmup=False)
    slot = registry.ensure(settings.model)
    assert slot.ready.wait(120) and slot.state == "ready", slot.error
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def ds(registry: ModelRegistry) -> ForecastDataSource:
    return ForecastDataSource(registry, clock=lambda: NOW / 1000)


def run(ds: ForecastDataSource, settings: DataSourceSettings, bodies: dict[str, dict], *,
        from_ms: int = NOW - HOUR, to_ms: int = NOW, alert: bool = False) -> dict[str, QueryResult]:
    queries = [DataQueryInput(ref, "", json.dumps(body).encode(), from_ms, to_ms, 60_000, 1000)
               for ref, body in bodies.items()]
    return run_queries(ds, settings, queries, alert=alert)


def ok(result: QueryResult) -> list[Frame]:
    assert result.error is None, result.error
    return result.frames


def values(frame: Frame, name: str) -> list[float]:
    return [f.values.to_pylist()[0] for f in frame.fields if f.name == name]


def check_numeric_wide(frames: list[Frame]) -> Frame:
    """The data-plane numeric-wide contract, and what ngalert needs on top of it."""
    assert len(frames) == 1
    frame = frames[0]
    assert frame.meta is not None and frame.meta.type == "numeric-wide" and frame.meta.type_version == (0, 1)
    assert frame.rows == 1
    keys = set()
    for f in frame.fields:
        assert f.tstype == "number" and f.labels is not None  # numbers only, no time field
        key = (f.name, tuple(sorted(f.labels.items())))
        assert key not in keys
        keys.add(key)
    assert decode_frame(encode_frame(frame, "A")).fields[0].labels == frame.fields[0].labels
    return frame


def band_fields(frame: Frame) -> dict[str, np.ndarray]:
    """Forecast/anomaly frame value fields keyed by quantile label ('0.1' ...) or field name."""
    out = {}
    for f in frame.fields[1:]:
        key = (f.labels or {}).get("quantile") or f.name
        out[key] = np.array([np.nan if v is None else v for v in f.values.to_pylist()])
    return out


# -- threshold: capacity -------------------------------------------------------------------
def disk_query(**extra: Any) -> dict:
    return {"queryType": "threshold", "source": "demo", "scenario": "disk-fill", "threshold": 0,
            "direction": "below", "horizon": "14d", **extra}


def test_disk_fill_is_full_within_the_right_day(ds: ForecastDataSource, settings: DataSourceSettings) -> None:
    """46 GB free at the grid end, 5 GB/day: the baseline's drift puts the p10 at 0 on day 9."""
    frame = check_numeric_wide(ok(run(ds, settings, {"A": disk_query(model="seasonal-naive")})["A"]))
    (seconds,) = values(frame, "time_to_breach")
    assert 9 * DAY / 1000 <= seconds < 10 * DAY / 1000
    assert values(frame, "will_breach") == [1.0]
    assert frame.meta.custom["stepMs"] == HOUR  # a 14d horizon picks 1 h steps: 85 days of history
    assert frame.meta.custom["series"][0]["human"].startswith("below 0 in 9d ")
    # The arithmetic, exactly: the first p10 step at or below 0, plus one, in seconds.
    forecast = {"queryType": "forecast", "source": "demo", "scenario": "disk-fill", "horizon": "14d",
                "model": "seasonal-naive", "quantiles": list(QUANTILE_LEVELS), "includeHistory": False}
    (fc,) = ok(run(ds, settings, {"F": forecast})["F"])
    bands = band_fields(fc)
    quantiles = np.stack([bands[f"{q:.1f}"] for q in QUANTILE_LEVELS])
    assert seconds == (first_crossing(quantiles[0], 0.0, "below") + 1) * 3600
    probability = float(breach_probability(quantiles, 0.0, "below"))
    assert values(frame, "breach_probability") == pytest.approx([probability]) and probability > 0.9
    assert values(frame, "forecast_peak") == pytest.approx([quantiles[0].min()])

    # The same volume as usage %, alerting "above" 100 %.
    steps = 2048
    t = NOW - HOUR * np.arange(steps)[::-1]
    free = DISK_FREE_AT_END + DISK_FILL_PER_DAY * (NOW - t) / DAY
    used = 100 * (1 - free / DISK_CAPACITY)
    inline = {"queryType": "threshold", "source": "inline", "threshold": 100, "direction": "above",
              "horizon": "14d", "model": "seasonal-naive",
              "series": [{"name": "used_pct", "labels": {"mountpoint": "/var/lib/kafka"},
                          "timestamps": t.tolist(), "values": used.tolist()}]}
    frame = check_numeric_wide(ok(run(ds, settings, {"B": inline})["B"]))
    (seconds,) = values(frame, "time_to_breach")
    assert 9 * DAY / 1000 <= seconds < 10 * DAY / 1000
    assert frame.meta.custom["series"][0]["human"].startswith("above 100 in 9d ")


def test_toto_reports_what_its_quantiles_imply(ds: ForecastDataSource, settings: DataSourceSettings) -> None:
    """Random weights: pick a threshold the returned p10 does cross, then check the arithmetic."""
    forecast = {"queryType": "forecast", "source": "demo", "scenario": "disk-fill", "horizon": "14d",
                "quantiles": list(QUANTILE_LEVELS), "includeHistory": False}
    (fc,) = ok(run(ds, settings, {"F": forecast})["F"])
    bands = band_fields(fc)
    quantiles = np.stack([bands[f"{q:.1f}"] for q in QUANTILE_LEVELS])
    threshold = float(np.sort(quantiles[0])[len(quantiles[0]) // 3])  # crossed by the p10 somewhere
    frame = check_numeric_wide(ok(run(ds, settings, {"T": disk_query(threshold=threshold)})["T"]))
    (seconds,) = values(frame, "time_to_breach")
    assert seconds == (first_crossing(quantiles[0], threshold, "below") + 1) * 3600
    probability = float(breach_probability(quantiles, threshold, "below"))
    assert values(frame, "breach_probability") == pytest.approx([probability])
    assert values(frame, "forecast_peak") == pytest.approx([quantiles[0].min()])
    assert frame.meta.custom["model"].startswith("toto:")


def test_a_series_that_never_crosses_gets_the_sentinel(ds: ForecastDataSource,
                                                       settings: DataSourceSettings) -> None:
    body = {"queryType": "threshold", "source": "demo", "scenario": "cpu", "model": "seasonal-naive",
            "threshold": 1000, "horizon": "2h", "step": "1m"}  # cpu % never reaches 1000
    frame = check_numeric_wide(ok(run(ds, settings, {"A": body})["A"]))
    assert values(frame, "time_to_breach") == [(120 + 1) * 60.0]  # horizon + one step
    assert values(frame, "will_breach") == [0.0]
    assert values(frame, "breach_probability")[0] < 1e-6
    assert frame.meta.custom["sentinelSeconds"] == 121 * 60.0
    assert frame.meta.custom["series"][0]["human"] == "stays below 1000 for the next 2h"


def test_probability_is_monotone_in_the_threshold_end_to_end(ds: ForecastDataSource,
                                                               settings: DataSourceSettings) -> None:
    thresholds = [200, 300, 400, 450, 500, 600, 900]
    bodies = {f"T{t}": {"queryType": "threshold", "source": "demo", "scenario": "postgres-load",
                        "model": "seasonal-naive", "threshold": t, "horizon": "3h", "step": "1m"}
              for t in thresholds}
    results = run(ds, settings, bodies)
    p = [values(check_numeric_wide(ok(results[f"T{t}"])), "breach_probability")[0] for t in thresholds]
    ttb = [values(check_numeric_wide(ok(results[f"T{t}"])), "time_to_breach")[0] for t in thresholds]
    assert all(a >= b for a, b in itertools.pairwise(p)), p
    assert all(a <= b for a, b in itertools.pairwise(ttb)), ttb
    assert p[0] > 0.5 > p[-1]


def test_the_engine_decides_decoding_so_panel_and_alert_agree_at_every_horizon(
        ds: ForecastDataSource, settings: DataSourceSettings) -> None:
    """Block decoding beyond 1024 steps is the engine's rule for every query type: a forecast panel
    and a threshold alert on the same series give identical p90 peaks at 1024 (one pass), 1025 and
    1500 (blocks of 768). When the threshold type chose it alone they differed by up to 1.6 %."""
    assert decode_block_for(1024) is None and decode_block_for(1025) == LONG_HORIZON_BLOCK
    base = {"source": "demo", "scenario": "memory-leak", "step": "1h", "contextLength": 512}
    for horizon in (1024, 1025, 1500):
        panel_q = {**base, "horizon": horizon, "quantiles": [0.9], "includeHistory": False}
        alert_q = {**base, "horizon": horizon, "queryType": "threshold", "threshold": 5e12}
        results = run(ds, settings, {"P": panel_q, "T": alert_q})
        (panel,) = ok(results["P"])
        alert = check_numeric_wide(ok(results["T"]))
        p90 = next(f for f in panel.fields if f.labels and f.labels.get("quantile") == "0.9")
        assert values(alert, "forecast_peak")[0] == max(p90.values.to_pylist()), horizon
        block = LONG_HORIZON_BLOCK if horizon > 1024 else None
        assert panel.meta.custom.get("decodeBlockSize") == block == alert.meta.custom.get("decodeBlockSize")


# -- alert requests ------------------------------------------------------------------------
def test_alert_requests_get_one_time_to_breach_per_series(ds: ForecastDataSource,
                                                          settings: DataSourceSettings) -> None:
    body = {"queryType": "threshold", "source": "demo", "scenario": "all", "model": "seasonal-naive",
            "threshold": 500, "horizon": "30m", "step": "1m"}
    frame = check_numeric_wide(ok(run(ds, settings, {"A": body}, alert=True)["A"]))
    assert [f.name for f in frame.fields] == ["time_to_breach"] * 5  # one Number per series, nothing else
    assert len({tuple(sorted(f.labels.items())) for f in frame.fields}) == 5  # unique label sets
    dashboard = check_numeric_wide(ok(run(ds, settings, {"A": body})["A"]))
    assert [f.name for f in dashboard.fields[:4]] == ["time_to_breach", "will_breach", "breach_probability",
                                                      "forecast_peak"]
    assert len(dashboard.fields) == 20


def test_bad_input_names_the_field(ds: ForecastDataSource, settings: DataSourceSettings) -> None:
    stamps = [NOW - 60_000 * i for i in range(60)][::-1]
    inline = {"source": "inline",
              "series": [{"name": "short", "timestamps": stamps, "values": list(range(60))}]}
    threshold = {"queryType": "threshold", "source": "demo"}
    bad = {
        "threshold": threshold,
        "thresholdQuantile": {**threshold, "threshold": 1, "thresholdQuantile": 0.95},
        "horizon": {**threshold, "threshold": 1, "horizon": "400d", "step": "1m"},
        "timeRange": {"queryType": "anomaly", **inline},
    }
    results = run(ds, settings, bad)
    for field, result in results.items():
        assert result.error is not None and result.error.status == 400, (field, result)
        assert result.error.message.startswith(field), result.error.message
    future = run(ds, settings, {"A": {"queryType": "anomaly", "source": "demo"}}, from_ms=NOW + HOUR,
                 to_ms=NOW + 2 * HOUR)["A"]
    assert future.error is not None and future.error.message.startswith("timeRange")


# -- anomaly -------------------------------------------------------------------------------
def test_anomaly_flags_a_spike(ds: ForecastDataSource, settings: DataSourceSettings) -> None:
    n = 1200
    t = NOW - 60_000 * np.arange(n)[::-1]
    rng = np.random.default_rng(1)
    y = 100 + 10 * np.sin(2 * np.pi * np.arange(n) / 60) + rng.normal(0, 0.5, n)
    y[1100] += 40
    body = {"queryType": "anomaly", "source": "inline", "model": "seasonal-naive", "contextLength": 512,
            "series": [{"name": "svc", "labels": {"job": "svc"}, "timestamps": t.tolist(),
                        "values": y.tolist()}]}
    frames = ok(run(ds, settings, {"A": body}, from_ms=NOW - 300 * 60_000)["A"])
    series_frame, summary = frames
    assert series_frame.meta.type == "timeseries-multi" and series_frame.rows == 301
    names = [f.config["displayNameFromDS"] for f in series_frame.fields[1:]]
    assert names == ["svc actual", "svc p50", "svc p10", "svc p90", "svc anomaly score", "svc anomaly"]
    assert series_frame.fields[4].config["custom"]["fillBelowTo"] == "svc p10"
    f = band_fields(series_frame)
    spike = 1100 - (n - 301)
    assert f["anomaly_score"][spike] > 5 and f["anomaly"][spike] == 1
    assert np.nansum(f["anomaly"]) <= 3
    np.testing.assert_allclose(f["anomaly_score"], anomaly_scores(f["svc"], f["0.1"], f["0.5"], f["0.9"]))
    check_numeric_wide([summary])
    assert values(summary, "anomaly_score") == [pytest.approx(f["anomaly_score"][-1])]
    assert values(summary, "max_anomaly_score")[0] > 5 and values(summary, "anomalies")[0] >= 1
    assert summary.meta.custom["windows"] == 5  # 301 points, 64-step windows

    alert = ok(run(ds, settings, {"A": body}, from_ms=NOW - 300 * 60_000, alert=True)["A"])
    assert [f.name for f in check_numeric_wide(alert).fields] == ["anomaly_score"]


def test_anomaly_on_toto_batches_windows_and_never_peeks(registry: ModelRegistry, ds: ForecastDataSource,
                                                         settings: DataSourceSettings) -> None:
    """Each window's band is the forecast from the context ending right before the window."""
    body = {"queryType": "anomaly", "source": "demo", "scenario": "latency-p99", "contextLength": 256,
            "anomalyWindow": "1h"}
    plain = registry.ensure(settings.model).loaded.uncached
    calls = plain.calls
    frames = ok(run(ds, settings, {"A": body}, from_ms=NOW - 6 * HOUR + 60_000)["A"])
    windows = frames[-1].meta.custom["windows"]
    assert windows == 6 and plain.calls - calls < windows  # submitted together, batched
    f = band_fields(frames[0])
    assert f[frames[0].fields[1].name].size == 360  # the actual values, one per visible step
    # Recompute window 3 directly: context = the 256 points before it.
    raw = json.dumps(body).encode()
    query = ds.parse(DataQueryInput("A", "", raw, NOW - 6 * HOUR + 60_000, NOW, 60_000, 1000), settings)
    plan = ds.plan(query, DemoSource("latency-p99"))  # the anomaly history plan included
    history = DemoSource("latency-p99").fetch(HistoryRequest(plan.grid, query))
    first = plan.grid.count - 360
    start = first + 3 * 60
    job = ForecastJob(history.series[0].values[None, start - 256 : start], 60, step_ms=60_000)
    direct = plain.submit(job).result(timeout=60)
    np.testing.assert_allclose(f["0.5"][180:240], direct.level(0.5)[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(f["0.9"][180:240], direct.level(0.9)[0], rtol=1e-4, atol=1e-6)


class NeverForecaster:
    """Futures that never complete: what a request sees when the engine is busy past its deadline."""

    name = "never"

    def __init__(self) -> None:
        self.futures: list[Future[ForecastOutput]] = []

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        self.futures.append(Future())
        return self.futures[-1]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


def test_anomaly_past_its_deadline_cancels_every_window(registry: ModelRegistry,
                                                        settings: DataSourceSettings) -> None:
    never = NeverForecaster()
    ds = WithForecaster(registry, never)
    query = DataQueryInput("A", "", json.dumps({"queryType": "anomaly", "source": "demo"}).encode(),
                           NOW - 6 * HOUR, NOW, 60_000, 1000)
    result = run_queries(ds, settings, [query], deadline=0.0)["A"]  # already past
    assert result.error is not None and result.error.status == 504
    assert len(never.futures) == 6 and all(f.cancelled() for f in never.futures)


# -- joint ---------------------------------------------------------------------------------
def test_joint_differs_from_independent_which_equals_per_series(ds: ForecastDataSource,
                                                                 settings: DataSourceSettings) -> None:
    n = 256
    t = (NOW - 60_000 * np.arange(n)[::-1]).tolist()
    x = np.arange(n)
    a = 50 + 10 * np.sin(x / 9.0)
    b = 20 + 5 * np.sin(x / 9.0 + 1) + 0.05 * x
    series = [{"name": "a", "labels": {"s": "a"}, "timestamps": t, "values": a.tolist()},
              {"name": "b", "labels": {"s": "b"}, "timestamps": t, "values": b.tolist()}]
    base = {"source": "inline", "horizon": 48, "includeHistory": False}
    results = run(ds, settings, {
        "joint": {**base, "series": series, "joint": True},
        "independent": {**base, "series": series},
        "a": {**base, "series": series[:1]},
        "b": {**base, "series": series[1:]},
    })
    joint = [band_fields(f)["0.5"] for f in ok(results["joint"])]
    independent = [band_fields(f)["0.5"] for f in ok(results["independent"])]
    alone = [band_fields(ok(results[k])[0])["0.5"] for k in ("a", "b")]
    for i in range(2):
        np.testing.assert_allclose(independent[i], alone[i], rtol=1e-4, atol=1e-5)
    assert max(np.abs(joint[i] - independent[i]).max() for i in range(2)) > 1e-3


def test_provisioned_alert_rules_run_as_alert_queries(ds: ForecastDataSource,
                                                      settings: DataSourceSettings) -> None:
    """The example rules' queries (on demo data) give one time_to_breach per series, which the
    rule's Threshold (lt) compares; the never-crossing sentinel does not fire."""
    root = Path(__file__).resolve().parents[1]
    path = root / "grafana-plugin" / "provisioning" / "alerting" / "toto-forecast-alerts.yaml"
    rules = yaml.safe_load(path.read_text())["groups"][0]["rules"]
    for rule, scenario in zip(rules, ("postgres-load", "disk-fill"), strict=True):
        by_ref = {d["refId"]: d for d in rule["data"]}
        model = {k: v for k, v in by_ref["A"]["model"].items() if k not in ("expr", "legendFormat")}
        model.update(source="demo", scenario=scenario, model="seasonal-naive")
        (limit,) = by_ref[rule["condition"]]["model"]["conditions"][0]["evaluator"]["params"]
        frame = check_numeric_wide(ok(run(ds, settings, {"A": model}, alert=True)["A"]))
        assert [f.name for f in frame.fields] == ["time_to_breach"]
        never = {**model, "threshold": 1e15 if model["direction"] == "above" else -1e15}
        sentinel = check_numeric_wide(ok(run(ds, settings, {"A": never}, alert=True)["A"]))
        (value,) = values(sentinel, "time_to_breach")
        assert value > limit and value == sentinel.meta.custom["sentinelSeconds"]
