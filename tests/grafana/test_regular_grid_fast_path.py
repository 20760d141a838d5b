"""The evenly-stepped fast paths of grid_for and place give what the general path gives.

Most series arrive sorted, one point per step (Prometheus, Grafana's own sources, the inline
clients); grid_for and place then skip the phase counting and bucket scoring. Seeded hypothesis
over series that are regular, shifted by a phase, gapped, jittered, out of order or carry NaN
and infinities, several at once, compared field by field with the general path."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from toto_datasource.sources import regular_grid as rg

STEPS = (1_000, 15_000, 60_000, 300_000)


@st.composite
def raw_series(draw: st.DrawFn, step: int) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 40))
    start = draw(st.integers(0, 10**6)) * step + draw(st.sampled_from([0, 0, 0, 7, step // 2]))
    ts = start + step * np.arange(n, dtype=np.int64)
    kind = draw(st.sampled_from(["regular", "regular", "gap", "jitter", "shuffled", "dup"]))
    if kind == "gap" and n > 2:
        ts = np.delete(ts, draw(st.integers(1, n - 2)))
    elif kind == "jitter" and n:
        ts = ts + np.asarray(draw(st.lists(st.integers(-step // 3, step // 3), min_size=ts.size,
                                           max_size=ts.size)), dtype=np.int64)
    elif kind == "shuffled" and n > 1:
        ts = ts[np.random.default_rng(draw(st.integers(0, 99))).permutation(ts.size)]
    elif kind == "dup" and n > 1:
        ts = np.sort(np.append(ts, ts[draw(st.integers(0, n - 1))]))
    values = np.asarray(draw(st.lists(st.sampled_from([1.0, 2.5, -3.0, np.nan, np.inf]), min_size=ts.size,
                                      max_size=ts.size)), dtype=np.float64)
    return ts, values


@st.composite
def cases(draw: st.DrawFn) -> tuple[int, list[tuple[np.ndarray, np.ndarray]], int]:
    step = draw(st.sampled_from(STEPS))
    series = draw(st.lists(raw_series(step), min_size=1, max_size=3))
    return step, series, draw(st.sampled_from([1, 5, 24, 1 << 20]))


@settings(max_examples=400, derandomize=True, deadline=None)
@given(cases(), st.sampled_from(["last", "mean"]))
def test_fast_paths_equal_the_general_path(case, merge) -> None:
    step, series, max_count = case
    timestamps = [ts for ts, _ in series]
    if not any(ts.size for ts in timestamps):
        return
    fast_grid = rg.grid_for(timestamps, step, max_count)
    fast = rg.place(fast_grid, series, merge)
    grid = rg.grid_for(timestamps, step, max_count, fast=False)
    slow = rg.place(grid, series, merge, fast=False)
    assert fast_grid == grid
    assert fast.notices == slow.notices
    for a, b in zip(fast.series, slow.series, strict=True):
        np.testing.assert_array_equal(a.values, b.values)
        assert (a.reordered, a.merged, a.moved, a.max_shift_ms, a.outside, a.infinite) == (
            b.reordered, b.merged, b.moved, b.max_shift_ms, b.outside, b.infinite)


def test_a_regular_series_is_what_the_fast_paths_take() -> None:
    """Regular data qualifies for both fast paths (else the comparison above compares nothing)."""
    ts = 1_700_000_040_000 + 60_000 * np.arange(100, dtype=np.int64)
    grid = rg.grid_for([ts], 60_000, 100)
    assert rg.evenly_stepped(ts, 60_000) and rg.on_grid(ts, np.diff(ts), grid)
    jittered = ts + np.where(np.arange(100) % 7 == 3, 1_500, 0)
    assert not rg.evenly_stepped(jittered, 60_000) and not rg.on_grid(jittered, np.diff(jittered), grid)
    assert rg.place(grid, [(ts, np.ones(100))]).series[0].outside == 0
