"""Statistical fallback, season detection, accuracy scores and the report lines (issue 14)."""

from __future__ import annotations

import numpy as np
from toto_datasource.engine.baseline import seasonal_naive
from toto_datasource.engine.seasons import detect_seasons
from toto_datasource.engine.statistical import StatisticalForecaster
from toto_datasource.engine.types import ForecastJob
from toto_datasource.outputs.accuracy import (
    Scores,
    backtest_line,
    crps,
    plural,
    rolling_origins,
    score_windows,
    stack_contexts,
)

STEP_7_MIN = 7 * 60_000


def sine_every_7_minutes(n: int) -> np.ndarray:
    return np.sin(2 * np.pi * (np.arange(n) * 7.0) / 60.0)  # a 60-minute cycle: 8.57 steps


def test_sine_without_calendar_season_is_followed() -> None:
    """No calendar season fits the 7-minute step: the fallback finds the period in the data."""
    history = sine_every_7_minutes(2048 + 60)
    out = StatisticalForecaster().submit(ForecastJob(history[None, :2048], 60, step_ms=STEP_7_MIN)).result()
    assert out.quantiles.shape == (9, 1, 60) and out.model == "statistical"
    assert np.all(np.diff(out.quantiles[:, 0], axis=0) >= 0)
    error = np.abs(out.level(0.5)[0] - history[2048:])
    # Seasons 17 and 43 steps (2 and 5 cycles of 8.57) are found; the drift of the rounded period
    # leaves ~0.3 (measured 0.32): two orders of magnitude better than seasonal-naive.
    assert np.median(error) < 0.5, np.median(error)
    baseline_error = np.abs(seasonal_naive(history[:2048], 60, STEP_7_MIN)[4] - history[2048:])
    # Seasonal-naive has no season here and holds the last value (0.91, was 27.6 with a 3-point slope).
    assert np.median(error) * 2 < np.median(baseline_error) < 1.5


def test_seasons_found_in_data() -> None:
    t = np.arange(2048)
    rng = np.random.default_rng(0)
    daily_5m = 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, t.size)
    assert detect_seasons(daily_5m, 300_000) == [288]
    sawtooth = (t % 864) * 0.1 + rng.normal(0, 0.5, t.size)  # a restart every 3 days at 5 min
    assert detect_seasons(sawtooth, 300_000) == [864]
    assert detect_seasons(rng.normal(0, 1, t.size), 60_000) == []
    assert detect_seasons(np.ones(100), 60_000) == []


def test_missing_values_and_short_rows() -> None:
    rows = np.vstack([np.r_[np.full(10, np.nan), np.arange(90.0)], np.full(100, np.nan)])
    out = StatisticalForecaster().submit(ForecastJob(rows, 12, step_ms=60_000)).result()
    assert out.quantiles.shape == (9, 2, 12) and np.isfinite(out.quantiles).all()


def test_scores_of_an_exact_forecast_are_zero() -> None:
    """A pure sine on an hourly season at 1 minute: seasonal-naive is exact."""
    history = 5 + np.sin(2 * np.pi * np.arange(2048 + 8 * 60) / 60)
    windows = rolling_origins(history, 8, 60, context_length=2048)
    assert len(windows) == 8 and all(w.context.size == 2048 for w in windows)
    assert windows[-1].origin + 60 == history.size
    q = np.stack([seasonal_naive(w.context, 60, 60_000) for w in windows], axis=1)
    s = score_windows(windows, q)
    assert s.windows == 8
    assert s.mase < 1e-9 and s.crps < 1e-9 and s.coverage == 1.0


def test_known_scores() -> None:
    history = np.r_[np.zeros(10), np.arange(1.0, 11.0)]  # context 0..: naive scale 0.1 per step
    (w,) = rolling_origins(np.r_[np.arange(10.0), np.full(4, 10.0)], 1, 4)
    assert w.context.size == 10 and np.array_equal(w.actual, np.full(4, 10.0))
    q = np.full((9, 1, 4), 12.0)  # every quantile 2 above: MAE 2, naive in-sample MAE 1
    s = score_windows([w], q)
    assert s.mase == 2.0
    assert s.coverage == 0.0
    # pinball at level q for a forecast 2 above: (1 - q)·2; weighted by Σ|y| = 40 over 4 points.
    expected = np.mean([2 * 4 * (1 - lv) * 2 / 40 for lv in np.arange(1, 10) / 10])
    assert abs(s.crps - expected) < 1e-12
    assert abs(crps(np.full(4, 10.0), q[:, 0]) - expected) < 1e-12
    assert stack_contexts(rolling_origins(history, 2, 5)).shape == (2, 15)


def test_backtest_line_variants() -> None:
    toto, naive = Scores(0.62, 0.1, 0.8, 8), Scores(0.90, 0.2, 0.7, 8)
    assert backtest_line("Toto", toto, "seasonal-naive", naive) == (
        "Toto beats seasonal-naive by 31 % on this metric: MASE 0.62 vs 0.90 over 8 windows")
    assert backtest_line("Toto", naive, "seasonal-naive", toto).startswith(
        "Toto loses to seasonal-naive by 45 % on this metric: MASE 0.90 vs 0.62")
    assert backtest_line("Toto", Scores(0.901, 0, 0, 1), "seasonal-naive", naive) == (
        "Toto ties with seasonal-naive on this metric: MASE 0.90 vs 0.90 over 1 window")


def test_plural() -> None:
    assert plural(1, "step") == "1 step" and plural(14, "step") == "14 steps" and plural(1, "min") == "1 min"
