"""Irregular timestamps onto a regular, round grid: nothing invented, nothing silently dropped.

Loki, InfluxDB and SQL answers are jittered or irregular. The model needs one value per step, so
every point goes into one bucket of a grid whose times are multiples of a *round* step (1 s, 5 s,
10 s, 15 s, 30 s, 1 m, 5 m, ...; or the step the query asks for), counted from the epoch (or from
the data's own phase when most points share one: regular data at :17 keeps its times), or the
grid the planner chose. Rules:

- The step: the query's, else the largest round step not above 1.2 x the finest median spacing
  of any series. A coarser step would merge points (each merge loses a value); a finer one only
  leaves gaps, which the model masks. The median is robust to jitter: +-20 s on 60 s data has a
  median spacing within a second or two of 60 s.
- The bucket edges: at the grid times (a bucket is [t, t + step), labelled by its start) or half a
  step before them ([t - step/2, t + step/2)), whichever puts fewer points into an already used
  bucket, then whichever moves points less. Data jittered around minute marks is split at the
  half-minutes and data sampled at :30 at the minute marks, so neither merges anything; the labels
  are grid times either way, never the data's own off-grid times.
- Merges: several points in one bucket keep the last one by default (what Prometheus does for a
  range query: the newest sample wins) or their mean; the count goes into a notice.
- Points outside the grid's window and infinite values are counted in notices; NaN is missing.

Measured on the issue's example (60 s data, 0/+1 s jitter) the old inline placement made a 61 s
grid and dropped the first point; here: a 1 m grid from 1699999980000, all six points, no merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..core.errors import bad_request
from ..core.series import TimeGrid

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
ROUND_STEPS_MS: tuple[int, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500,
    SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
    MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 7 * DAY,
)  # fmt: skip
STEP_TOLERANCE = 1.2  # a round step up to 20% above the median spacing still counts as "the" step

Merge = Literal["last", "mean"]
RawSeries = tuple[np.ndarray, np.ndarray]  # (timestamps_ms int64, values float64)


def format_step(ms: int) -> str:
    """A step in the largest unit that divides it exactly: 1m, 15s, 1500ms (PromQL's own form)."""
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def median_spacing_ms(timestamps_ms: np.ndarray) -> float | None:
    """Median distance between distinct timestamps; None with fewer than two."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    diffs = np.diff(ts)
    if diffs.size and diffs[0] > 0 and (diffs == diffs[0]).all():  # evenly spaced: no sort
        return float(diffs[0])
    if not (diffs > 0).all():  # the common case, sorted and distinct, needs no np.unique
        diffs = np.diff(np.unique(ts))
    return float(np.median(diffs)) if diffs.size >= 1 else None


def on_grid(ts: np.ndarray, steps: np.ndarray, grid: TimeGrid) -> bool:
    """Sorted `ts` (with `steps` its differences) has a point on every grid time from its first."""
    return (ts.size >= 2 and (int(ts[0]) - grid.start_ms) % grid.step_ms == 0
            and bool((steps == grid.step_ms).all()))


def evenly_stepped(ts: np.ndarray, step_ms: int) -> bool:
    """Sorted, one point every `step_ms`: what Prometheus and most clients send. Such a series
    sits on one phase of the grid, so its grid is its ends and its buckets a slice (grid_for,
    place): same grid and values for a fraction of the numpy calls."""
    return ts.size >= 2 and bool((ts[1:] - ts[:-1] == step_ms).all())


def round_step_ms(spacing_ms: float) -> int:
    """The largest round step not above STEP_TOLERANCE x spacing (at least 1 ms)."""
    fitting = [s for s in ROUND_STEPS_MS if s <= spacing_ms * STEP_TOLERANCE]
    return fitting[-1] if fitting else ROUND_STEPS_MS[0]


def infer_step_ms(timestamps: Sequence[np.ndarray]) -> int:
    """The round step of the finest-spaced series; a 400 when no series has two distinct times."""
    spacings = [s for s in (median_spacing_ms(ts) for ts in timestamps) if s is not None]
    if not spacings:
        raise bad_request("every series has fewer than 2 distinct timestamps; cannot infer a step")
    return round_step_ms(min(spacings))


def _assign(ts: np.ndarray, anchor_ms: int, step_ms: int, half: bool) -> np.ndarray:
    """Bucket index of each timestamp on the grid anchor + k*step (floor or nearest)."""
    shift = step_ms // 2 if half else 0
    return np.floor_divide(ts - anchor_ms + shift, step_ms)


def _choose_half(series_ts: Sequence[np.ndarray], anchor_ms: int, step_ms: int) -> bool:
    """True when nearest-grid-time buckets beat start-of-step buckets (fewer merges, then less moved).

    Points that all sit on grid times land in the same buckets either way (a tie: False); checking
    that first skips the scoring, two thirds of this function's cost on regular data."""
    if all(not np.mod(ts - anchor_ms, step_ms).any() for ts in series_ts):
        return False
    scores = []
    for half in (False, True):
        merges = 0
        moved = 0.0
        for ts in series_ts:
            if ts.size == 0:
                continue
            idx = _assign(ts, anchor_ms, step_ms, half)  # ts is sorted, so idx is too
            merges += int(np.count_nonzero(np.diff(idx) == 0))
            moved += float(np.abs(ts - (anchor_ms + idx * step_ms)).sum())
        scores.append((merges, moved))
    return scores[1] < scores[0]


@dataclass
class RegularSeries:
    """Values of one series on the grid (NaN = nothing observed) with what placing it did."""

    values: np.ndarray
    reordered: bool = False  # the points came out of time order (and were sorted)
    merged: int = 0  # points that shared a bucket with another point of this series
    moved: int = 0  # points whose time was not a grid time
    max_shift_ms: int = 0
    outside: int = 0  # points before or after the grid's window
    infinite: int = 0


@dataclass
class RegularGrid:
    grid: TimeGrid
    series: list[RegularSeries]
    notices: list[str] = field(default_factory=list)


def place(
    grid: TimeGrid, series: Sequence[RawSeries], merge: Merge = "last", names: Sequence[str] = (),
    *, fast: bool = True,
) -> RegularGrid:
    """Put every series' points into the buckets of `grid`; notices say what was merged or left out.
    `fast=False` scores buckets even for series already on the grid (the general path the fast
    one must equal: tests/grafana/test_regular_grid_fast_path.py)."""
    clean: list[tuple[np.ndarray, np.ndarray, int, bool, bool]] = []
    for ts, vals in series:
        ts = np.asarray(ts, dtype=np.int64)
        vals = np.asarray(vals, dtype=np.float64)
        steps = ts[1:] - ts[:-1]
        reordered = bool((steps < 0).any())
        if reordered:
            order = np.argsort(ts, kind="stable")  # stable: of equal times the later point stays last
            ts, vals = ts[order], vals[order]
        finite = np.isfinite(vals)
        if finite.all():  # the common case: no copies
            clean.append((ts, vals, 0, reordered, fast and not reordered and on_grid(ts, steps, grid)))
            continue
        inf = np.isinf(vals)
        clean.append((ts[finite], vals[finite], int(inf.sum()), reordered, False))
    half = (False if all(c[4] for c in clean)
            else _choose_half([c[0] for c in clean], grid.start_ms, grid.step_ms))
    out = [_place_one(grid, *c, merge, half) for c in clean]
    return RegularGrid(grid, out, _notices(grid, out, merge, list(names)))


def _place_one(
    grid: TimeGrid, ts: np.ndarray, vals: np.ndarray, infinite: int, reordered: bool, on_grid: bool,
    merge: Merge, half: bool,
) -> RegularSeries:
    values = np.full(grid.count, np.nan)
    if on_grid:  # one point on every grid time from the first: a slice, with or without half steps
        first = (int(ts[0]) - grid.start_ms) // grid.step_ms
        lo, hi = max(0, -first), min(ts.size, grid.count - first)
        if hi > lo:
            values[first + lo : first + hi] = vals[lo:hi]
        return RegularSeries(values=values, outside=ts.size - max(0, hi - lo), infinite=infinite)
    idx = _assign(ts, grid.start_ms, grid.step_ms, half)
    inside = (idx >= 0) & (idx < grid.count)
    outside = int(idx.size - inside.sum())
    ts, vals, idx = ts[inside], vals[inside], idx[inside]
    shift = np.abs(ts - (grid.start_ms + idx * grid.step_ms))
    merged = int(np.count_nonzero(np.diff(idx) == 0))  # idx is sorted: duplicates are neighbours
    if merge == "mean" and merged:
        uniq, first, counts = np.unique(idx, return_index=True, return_counts=True)
        values[uniq] = np.add.reduceat(vals, first) / counts
    else:
        values[idx] = vals  # idx is sorted by time: numpy assigns in order, so the last one wins
    return RegularSeries(
        values=values,
        reordered=reordered,
        merged=merged,
        moved=int(np.count_nonzero(shift)),
        max_shift_ms=int(shift.max()) if shift.size else 0,
        outside=outside,
        infinite=infinite,
    )


def listed(names: list[str], limit: int = 3) -> str:
    """The first `limit` names for a notice, and how many more."""
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def _notices(grid: TimeGrid, out: list[RegularSeries], merge: Merge, names: list[str]) -> list[str]:
    step = format_step(grid.step_ms)
    label = names if len(names) == len(out) else [f"series {i}" for i in range(len(out))]
    notices = []
    moved = [(s, n) for s, n in zip(out, label, strict=True) if s.moved]
    if moved:
        worst = max(s.max_shift_ms for s, _ in moved)
        notices.append(
            f"{sum(s.moved for s, _ in moved)} points of {len(moved)} series were off the {step} grid "
            f"(by up to {format_step(worst)}) and were snapped to their step "
            f"({listed([n for _, n in moved])})"
        )
    merged = [(s, n) for s, n in zip(out, label, strict=True) if s.merged]
    if merged:
        how = "the last one kept" if merge == "last" else "averaged"
        notices.append(
            f"{sum(s.merged for s, _ in merged)} points fell on the same step ({step}) as another "
            f"point, {how} ({listed([n for _, n in merged])})"
        )
    outside = sum(s.outside for s in out)
    if outside:
        notices.append(f"{outside} points fell outside the history window and were not used")
    infinite = sum(s.infinite for s in out)
    if infinite:
        notices.append(f"{infinite} infinite values were treated as missing")
    return notices


def grid_anchor_ms(timestamps: Sequence[np.ndarray], step_ms: int) -> int:
    """Where the grid's times sit within a step: the data's own phase when most points share one
    exact phase (regular data sampled at :17 keeps its times), else 0 (multiples of the step), so
    jittered data lands on round times rather than on one point's jitter."""
    phases = np.concatenate([np.mod(np.asarray(ts, dtype=np.int64), step_ms) for ts in timestamps])
    if phases.size == 0:
        return 0
    if (phases == phases[0]).all():  # regular data: one phase, no counting needed
        return int(phases[0])
    values, counts = np.unique(phases, return_counts=True)
    best = int(np.argmax(counts))
    return int(values[best]) if counts[best] * 2 > phases.size else 0


def grid_for(timestamps: Sequence[np.ndarray], step_ms: int, max_count: int, *, fast: bool = True
             ) -> TimeGrid:
    """The grid of `step_ms` (anchored by grid_anchor_ms) that covers every point, or the latest
    `max_count` steps of them. `fast=False` takes the general path even for evenly stepped series."""
    if step_ms <= 0:
        raise bad_request(f"the step must be positive, got {step_ms} ms")
    series_ts = [np.asarray(ts, dtype=np.int64) for ts in timestamps]
    nonempty = [ts for ts in series_ts if ts.size]
    if not nonempty:
        raise bad_request("no series has any timestamp")
    if fast and all(evenly_stepped(ts, step_ms) for ts in nonempty):
        phases = {int(ts[0]) % step_ms for ts in nonempty}
        if len(phases) == 1:  # every point on one grid: the anchor is that phase, no half step
            anchor = phases.pop()
            lo = min((int(ts[0]) - anchor) // step_ms for ts in nonempty)
            hi = max((int(ts[-1]) - anchor) // step_ms for ts in nonempty)
            count = min(max(1, max_count), hi - lo + 1)
            return TimeGrid(end_ms=anchor + hi * step_ms, step_ms=step_ms, count=count)
    anchor = grid_anchor_ms(nonempty, step_ms)
    half = _choose_half(nonempty, anchor, step_ms)
    lo = min(int(_assign(ts, anchor, step_ms, half).min()) for ts in nonempty)
    hi = max(int(_assign(ts, anchor, step_ms, half).max()) for ts in nonempty)
    count = min(max(1, max_count), hi - lo + 1)
    return TimeGrid(end_ms=anchor + hi * step_ms, step_ms=step_ms, count=count)


def regularize(
    series: Sequence[RawSeries],
    step_ms: int | None = None,
    max_count: int = 1 << 20,
    merge: Merge = "last",
    names: Sequence[str] = (),
) -> RegularGrid:
    """Grid (the given or inferred round step) + values + notices for raw (timestamps, values) series."""
    timestamps = [np.asarray(ts, dtype=np.int64) for ts, _ in series]
    step = step_ms if step_ms else infer_step_ms(timestamps)
    result = place(grid_for(timestamps, step, max_count), series, merge, names)
    if not step_ms:
        result.notices.insert(0, f"step {format_step(step)} inferred from the timestamps")
    return result
