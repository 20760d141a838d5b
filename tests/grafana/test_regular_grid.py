"""Irregular timestamps onto a round grid: the issue's example and the other shapes real sources send."""

from __future__ import annotations

import numpy as np
import pytest
from toto_datasource.core.errors import BackendError
from toto_datasource.sources.base import TimeGrid
from toto_datasource.sources.regular_grid import infer_step_ms, place, regularize, round_step_ms

ISSUE_TS = np.array(
    [1699999980000, 1700000041000, 1700000100000, 1700000161000, 1700000220000, 1700000281000]
)
ISSUE_VALUES = np.array([1.0, 2, 3, 4, 5, 6])


def test_issue_example_gives_a_one_minute_grid_with_every_point() -> None:
    out = regularize([(ISSUE_TS, ISSUE_VALUES)])
    assert out.grid == TimeGrid(end_ms=1700000280000, step_ms=60_000, count=6)
    assert out.grid.start_ms == 1699999980000  # the first point is kept, not dropped
    np.testing.assert_array_equal(out.series[0].values, ISSUE_VALUES)
    assert out.series[0].merged == 0 and out.series[0].outside == 0
    assert out.series[0].moved == 3 and out.series[0].max_shift_ms == 1000
    # every grid time is a multiple of the round step: no timestamps that never existed
    assert np.all(out.grid.timestamps_ms() % 60_000 == 0)
    assert out.notices[0] == "step 1m inferred from the timestamps"
    assert "3 points of 1 series were off the 1m grid (by up to 1s)" in out.notices[1]


def test_twenty_second_jitter_on_minute_data_merges_nothing() -> None:
    rng = np.random.default_rng(3)
    nominal = 1_700_000_040_000 + 60_000 * np.arange(500)  # minute marks
    ts = nominal + rng.integers(-20_000, 20_001, nominal.size)
    values = np.arange(nominal.size, dtype=np.float64)
    out = regularize([(ts, values)])
    assert out.grid.step_ms == 60_000
    assert out.grid.start_ms == nominal[0] and out.grid.count == nominal.size
    np.testing.assert_array_equal(out.series[0].values, values)
    assert out.series[0].merged == 0
    assert out.series[0].max_shift_ms <= 20_000


def test_data_sampled_at_half_minutes_uses_bucket_starts() -> None:
    jitter = np.array([0, 3, -2, 5, 0, 1, -4, 0, 2, 0]) * 1000
    ts = 1_700_000_040_000 + 30_000 + 60_000 * np.arange(10) + jitter
    out = regularize([(ts, np.arange(10.0))])
    assert out.series[0].merged == 0
    np.testing.assert_array_equal(out.series[0].values, np.arange(10.0))
    assert out.grid.start_ms == 1_700_000_040_000  # the bucket [t, t+1m) holding :30 is labelled t


@pytest.mark.parametrize(
    ("spacing_ms", "step"),
    [
        (1000, 1000),
        (4_900, 5_000),
        (10_300, 10_000),
        (15_000, 15_000),
        (29_000, 30_000),
        (45_000, 30_000),
        (61_000, 60_000),
        (300_000, 300_000),
        (3_600_000, 3_600_000),
        (250, 200),
    ],
)
def test_round_steps(spacing_ms: int, step: int) -> None:
    assert round_step_ms(spacing_ms) == step


def test_finest_series_sets_the_step() -> None:
    fine = 1_700_000_000_000 + 15_000 * np.arange(20)
    coarse = 1_700_000_000_000 + 60_000 * np.arange(5)
    assert infer_step_ms([coarse, fine]) == 15_000


def test_too_few_points_is_a_400() -> None:
    with pytest.raises(BackendError) as err:
        regularize([(np.array([5, 5]), np.array([1.0, 2.0]))])
    assert err.value.status == 400 and "2 distinct timestamps" in err.value.message


def test_merges_last_and_mean_are_counted() -> None:
    grid = TimeGrid(end_ms=180_000, step_ms=60_000, count=4)
    ts = np.array([0, 10_000, 60_000, 130_000, 125_000, 180_000])  # unsorted; two in bucket 0, two in 2
    vals = np.array([1.0, 2.0, 3.0, 5.0, 4.0, 6.0])
    last = place(grid, [(ts, vals)], "last", ["x"])
    np.testing.assert_array_equal(last.series[0].values, [2.0, 3.0, 5.0, 6.0])
    assert last.series[0].merged == 2
    text = "2 points fell on the same step (1m) as another point, the last one kept (x)"
    assert any(text in n for n in last.notices)
    mean = place(grid, [(ts, vals)], "mean")
    np.testing.assert_array_equal(mean.series[0].values, [1.5, 3.0, 4.5, 6.0])


def test_points_outside_the_window_and_infinities_are_reported() -> None:
    grid = TimeGrid(end_ms=120_000, step_ms=60_000, count=2)
    ts = np.array([0, 60_000, 120_000, 180_000])
    vals = np.array([1.0, np.inf, 3.0, np.nan])
    out = place(grid, [(ts, vals)])
    np.testing.assert_array_equal(out.series[0].values, [np.nan, 3.0])
    assert out.series[0].outside == 1 and out.series[0].infinite == 1
    assert "1 points fell outside the history window and were not used" in out.notices
    assert "1 infinite values were treated as missing" in out.notices


def test_query_step_and_max_count() -> None:
    ts = 1_700_000_040_000 + 10_000 * np.arange(100)
    out = regularize([(ts, np.arange(100.0))], step_ms=60_000, max_count=5, merge="mean")
    assert out.grid.count == 5 and out.grid.step_ms == 60_000
    # 10 s points split evenly either way; centred buckets move them less, so the last one
    # (at :30) belongs to the next minute
    assert out.grid.end_ms % 60_000 == 0 and abs(out.grid.end_ms - ts[-1]) <= 30_000
    np.testing.assert_array_equal(out.series[0].values[:-1], [77.5, 83.5, 89.5, 95.5])
    assert not any("inferred" in n for n in out.notices)
    assert out.series[0].outside > 0


def test_regular_data_off_the_minute_marks_keeps_its_own_times() -> None:
    """Data sampled every minute at :17 is regular: its times are kept, nothing is snapped; jitter
    around the minute marks (no shared phase) lands on the marks."""
    ts = 1_700_000_017_000 + 60_000 * np.arange(10)
    out = regularize([(ts, np.arange(10.0))])
    assert out.grid.timestamps_ms().tolist() == ts.tolist()
    assert out.notices == ["step 1m inferred from the timestamps"]
    jittered = 1_700_000_040_000 + 60_000 * np.arange(10) + np.array([0, 3, -2, 5, 1, -4, 2, 0, -1, 4]) * 1000
    assert regularize([(jittered, np.arange(10.0))]).grid.start_ms == 1_700_000_040_000
