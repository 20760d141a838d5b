"""Prometheus answers on our grid: placement, series names, and the hygiene notices users see.

Prometheus evaluates a range query at start, start+step, ..., so with start/end/step taken from
the planner's grid its points fall on that grid; compatible servers (or float-second rounding)
may not, so points are snapped and what was done is counted and reported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from ...core.errors import bad_request
from ...core.series import Series, TimeGrid
from ..base import History
from ..regular_grid import format_step, listed

# Prometheus refuses a range query with (end - start) / step > 11000; keep each request at or below
# 11000 points so the check passes on every version and on compatible servers.
MAX_POINTS_PER_REQUEST = 11_000
MIN_RELIABLE_POINTS = 32
LATE_START_FRACTION = 0.10  # a leading gap of >= 10% of the window is worth telling the user about
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
PREVIEW_POINTS = 240  # a preview only counts series; a coarse step keeps it cheap
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LEGEND_TOKEN = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


@dataclass
class Placed:
    """One series on the grid plus the hygiene counts its placement found."""

    labels: dict[str, str]
    values: np.ndarray
    misaligned: int = 0
    duplicates: int = 0
    non_finite: int = 0


def series_name(labels: Mapping[str, str], legend_format: str, expr: str) -> str:
    """Display name: the legend format with {{label}} filled in, else `name{k="v", ...}`, else the expr."""
    if legend_format.strip():
        return _LEGEND_TOKEN.sub(lambda m: labels.get(m.group(1), ""), legend_format)
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    if not name and not rest:
        return expr
    return f"{name}{{{rest}}}" if rest else name


def place_on_grid(
    grid: TimeGrid, timestamps_s: np.ndarray, values: np.ndarray, out: np.ndarray
) -> tuple[int, int]:
    """Write samples into `out` (len grid.count) at their nearest grid step.

    Prometheus range queries already answer on the grid; compatible servers (or rounding in
    float seconds) may not, so points are snapped to the nearest step and a later duplicate wins.
    Returns (misaligned, duplicates); points outside the grid are ignored.
    """
    ts_ms = np.asarray(timestamps_s, dtype=np.float64) * 1000.0
    pos = (ts_ms - grid.start_ms) / grid.step_ms
    idx = np.rint(pos).astype(np.int64)
    inside = (idx >= 0) & (idx < grid.count)
    idx, vals, pos = idx[inside], np.asarray(values, dtype=np.float64)[inside], pos[inside]
    # More than a millisecond off the grid counts as misaligned (float seconds round to ~1 µs).
    misaligned = int(np.count_nonzero(np.abs(pos - idx) * grid.step_ms > 1.0))
    duplicates = int(idx.size - np.unique(idx).size)
    out[idx] = vals  # numpy assigns in order, so the last duplicate wins
    return misaligned, duplicates


def looks_like_counter(labels: Mapping[str, str], values: np.ndarray) -> bool:
    """A raw counter: a counter-style name, or values that only rise except for resets towards zero.

    A gauge that only rises (disk usage) has no resets and is not flagged; a counter's forecast
    is a staircase to nowhere, so the user should forecast rate(...) instead.
    """
    if labels.get("__name__", "").endswith(COUNTER_SUFFIXES):
        return True
    seen = values[np.isfinite(values)]
    if seen.size < MIN_RELIABLE_POINTS:
        return False
    diffs = np.diff(seen)
    drops = diffs < 0
    if not drops.any() or not (diffs > 0).any():
        return False
    if np.count_nonzero(drops) > 0.01 * diffs.size:
        return False
    before, after = seen[:-1][drops], seen[1:][drops]
    return bool(np.all((after <= 0.5 * before) & (before > 0)))


def fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_seconds(ms: int) -> str:
    """Milliseconds as the decimal seconds Prometheus accepts for start/end/step."""
    return f"{ms // 1000}.{ms % 1000:03d}" if ms >= 0 else f"{ms / 1000:.3f}"


def chunks(grid: TimeGrid) -> list[TimeGrid]:
    """Split the grid into consecutive sub-grids of at most MAX_POINTS_PER_REQUEST points."""
    out = []
    first = 0
    while first < grid.count:
        n = min(MAX_POINTS_PER_REQUEST, grid.count - first)
        end = grid.start_ms + (first + n - 1) * grid.step_ms
        out.append(TimeGrid(end_ms=end, step_ms=grid.step_ms, count=n))
        first += n
    return out



def history_of(
    grid: TimeGrid,
    expr: str,
    legend: str,
    placed: list[Placed],
    warnings: list[str],
    requests: int,
) -> History:
    notices = [f"Prometheus: {w}" for w in warnings]
    series: list[Series] = []
    empty = 0
    few: list[str] = []
    late: list[str] = []
    counters: list[str] = []
    snapped = dups = non_finite = 0
    late_after = max(1, math.ceil(grid.count * LATE_START_FRACTION))
    for entry in placed:
        observed = np.isfinite(entry.values)
        n = int(observed.sum())
        if n == 0:
            empty += 1
            continue
        name = series_name(entry.labels, legend, expr)
        series.append(Series(name=name, labels=entry.labels, values=entry.values))
        snapped += entry.misaligned
        dups += entry.duplicates
        non_finite += entry.non_finite
        if n < MIN_RELIABLE_POINTS:
            few.append(name)
        first = int(np.argmax(observed))
        if first >= late_after:
            late.append(name)
        if looks_like_counter(entry.labels, entry.values):
            counters.append(name)
    if not series:
        raise bad_request(
            f"expr returned no data between {fmt_time(grid.start_ms)} and {fmt_time(grid.end_ms)} "
            f"(step {format_step(grid.step_ms)}); check the expression and the time range"
        )
    if empty:
        notices.append(f"{empty} series had no points in the history window and were dropped")
    if few:
        notices.append(
            f"{len(few)} series have fewer than {MIN_RELIABLE_POINTS} points; "
            f"their forecasts are unreliable ({listed(few)})"
        )
    if late:
        notices.append(
            f"{len(late)} series start late in the history window "
            f"(the missing history is masked): {listed(late)}"
        )
    if counters:
        notices.append(
            f"{len(counters)} series look like raw counters ({listed(counters)}); a counter only grows, "
            "so forecast its rate instead, e.g. rate(<counter>[5m])"
        )
    if snapped or dups:
        notices.append(
            f"{snapped + dups} points were off the {format_step(grid.step_ms)} grid or duplicated "
            "and were snapped to the nearest step"
        )
    if non_finite:
        notices.append(f"{non_finite} infinite values were treated as missing")
    executed = (
        f"query_range {expr} start={fmt_time(grid.start_ms)} end={fmt_time(grid.end_ms)} "
        f"step={format_step(grid.step_ms)}"
    )
    if requests > 1:
        executed += f" ({requests} requests of at most {MAX_POINTS_PER_REQUEST} points)"
    return History(grid=grid, series=series, notices=notices, executed_query=executed)

