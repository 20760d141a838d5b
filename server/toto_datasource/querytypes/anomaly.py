"""queryType `anomaly`: forecast-vs-actual over the visible range.

The visible range [from, end] (end = the last history point: the range end or now, whichever is
earlier) is tiled by windows of `anomalyWindow` steps (default 64), oldest first; the last may
be shorter. For each window one ForecastJob forecasts every series from the `contextLength`
points *before* the window (so a window never sees the values it is compared with), and the
actual values in the window are scored against that forecast's [p10, p90] band
(querytypes/scoring.py: score in band widths, flag when score > 1). Every window is submitted before
any is awaited; all windows share one context length and horizon, so the engine batches them
into a few model calls (up to its memory cap per call).

History: the data source fetches `contextLength` points before the visible range plus the range
itself (`history_plan`). A (window, series) pair with fewer than MIN_HISTORY_POINTS observed
points before it gets no band and no score (null) and a notice says so; when no window of any
series has enough history the query fails with a 400 naming the time range.

Frames (frames/alerting.py): per series a timeseries-multi frame (actual, p50, p10, p90,
anomaly_score, anomaly), then a numeric-wide summary (latest score, latest flag, max score,
number of flagged points per series). Alert requests get only the summary's `anomaly_score`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.errors import bad_request
from ..core.series import TimeGrid
from ..engine.types import ForecastOutput
from ..frames.alerting import AnomalySeries, anomaly_frame, anomaly_summary_frame, unique_labels
from ..frames.display import series_color
from ..frames.model import Frame, Notice
from ..query.durations import Span, format_duration, span, span_schema
from ..query.limits import MAX_ANOMALY_WINDOW_STEPS, MAX_HORIZON_STEPS
from ..query.model import ForecastQuery, Plan
from .base import QueryCost, SubmitRequest, patches
from .scoring import FLAG_SCORE, anomaly_flags, anomaly_scores, latest_finite

DEFAULT_WINDOW_STEPS = 64
MIN_HISTORY_POINTS = 64  # observed points a window's context needs for a band worth scoring
MAX_VISIBLE_STEPS = MAX_HORIZON_STEPS
MAX_WINDOWS = 512


def window_steps(query: ForecastQuery, step_ms: int) -> int:
    window: Span | None = query.params
    if window is None:
        return DEFAULT_WINDOW_STEPS
    steps = window.to_steps(step_ms)
    if steps < 1:
        raise bad_request("anomalyWindow: must be at least one step")
    if steps > MAX_ANOMALY_WINDOW_STEPS:
        raise bad_request(f"anomalyWindow: {steps} steps at a step of {format_duration(step_ms)} is more "
                          f"than the {MAX_ANOMALY_WINDOW_STEPS} allowed")
    return steps


def visible_steps(query: ForecastQuery, grid: TimeGrid) -> int:
    """Grid points in [from, end]."""
    if query.from_ms > grid.end_ms:
        raise bad_request(
            f"timeRange: the range starts after the last history point ({grid.end_ms} ms); anomaly "
            "detection compares actual values, so the range must include the past")
    return (grid.end_ms - query.from_ms) // grid.step_ms + 1


@dataclass
class _Window:
    start: int  # index into the visible range
    length: int
    future: Future[ForecastOutput]
    scored: np.ndarray  # (n_series,) bool: enough history before this window


@dataclass
class PendingAnomaly:
    request: SubmitRequest
    first_visible: int  # grid index of the first visible point
    window: int
    windows: list[_Window]
    notices: list[Notice]

    def frames(self) -> list[Frame]:
        req = self.request
        grid = req.history.grid
        series = req.history.series
        n_vis = grid.count - self.first_visible
        bands = np.full((3, len(series), n_vis), np.nan)  # p10, p50, p90
        try:
            for w in self.windows:
                out = req.wait(w.future)
                sl = slice(w.start, w.start + w.length)
                for k, q in enumerate((0.1, 0.5, 0.9)):
                    values = out.level(q)[:, : w.length]
                    bands[k, :, sl] = np.where(w.scored[:, None], values, np.nan)
        except BaseException:
            for w in self.windows:  # nobody will read the other windows: let the engine drop them
                w.future.cancel()
            raise
        actual = np.stack([s.values[self.first_visible :] for s in series])
        scores = anomaly_scores(actual, bands[0], bands[1], bands[2])
        flags = anomaly_flags(scores)
        labels = unique_labels(series)
        meta = replace(req.meta, notices=[*req.meta.notices, *self.notices])
        frames: list[Frame] = []
        if not meta.for_alert:
            times = grid.timestamps_ms()[self.first_visible :]
            for i, s in enumerate(series):
                a = AnomalySeries(actual[i], bands[0, i], bands[1, i], bands[2, i], scores[i], flags[i])
                frames.append(anomaly_frame(s, labels[i], times, a, meta, series_color(i)))
        summaries = []
        for i in range(len(series)):
            finite = np.isfinite(scores[i])
            summaries.append((
                latest_finite(scores[i]),
                latest_finite(flags[i]),
                float(scores[i][finite].max()) if finite.any() else float("nan"),
                int(np.nansum(flags[i])),
            ))
        custom = {"anomalyWindowSteps": self.window,
                  "windows": len(self.windows), "flagScore": FLAG_SCORE}
        frames.append(anomaly_summary_frame(series, labels, summaries, meta, custom))
        return frames


class AnomalyQueryType:
    name = "anomaly"
    description = "actual vs rolling forecast band"
    preview_summary = False
    schema: Mapping[str, Any] = {
        "anomalyWindow": span_schema(
            MAX_ANOMALY_WINDOW_STEPS,
            "Length of each rolling forecast window in the visible range (queryType=anomaly); default "
            f"{DEFAULT_WINDOW_STEPS} steps.",
        ),
    }

    def parse_params(self, obj: Mapping[str, Any]) -> Span | None:
        return span(obj.get("anomalyWindow"))

    def cost(self, query: ForecastQuery, plan: Plan, series: int) -> QueryCost:
        """Every window forecasts every series from `contextLength` points before it."""
        windows = math.ceil(min(visible_steps(query, plan.grid), plan.grid.count) / plan.horizon)
        each = patches(query.context_length, plan.horizon)
        return QueryCost(
            windows * series * each, f"{windows} windows × {series} series × {each} patches",
            "Use a longer anomalyWindow, a shorter contextLength, a coarser step or a shorter time range.",
        )

    def history_plan(self, query: ForecastQuery, plan: Plan) -> Plan:
        """Fetch `contextLength` points before the visible range plus the range itself."""
        grid = plan.grid
        n_vis = visible_steps(query, grid)
        if n_vis > MAX_VISIBLE_STEPS:
            raise bad_request(
                f"timeRange: the range holds {n_vis} steps of {format_duration(grid.step_ms)}; anomaly "
                f"detection scores at most {MAX_VISIBLE_STEPS}: shorten the range or set a coarser step")
        window = window_steps(query, grid.step_ms)
        if math.ceil(n_vis / window) > MAX_WINDOWS:
            raise bad_request(
                f"anomalyWindow: {window} steps split the range into {math.ceil(n_vis / window)} windows, "
                f"more than the {MAX_WINDOWS} allowed; use a longer anomalyWindow or a coarser step")
        return Plan(TimeGrid(grid.end_ms, grid.step_ms, query.context_length + n_vis), window)

    def submit(self, request: SubmitRequest) -> PendingAnomaly:
        query, history = request.query, request.history
        grid = history.grid
        n_vis = min(visible_steps(query, grid), grid.count)
        window = window_steps(query, grid.step_ms)
        first_visible = grid.count - n_vis
        values = np.stack([s.values for s in history.series])
        cumulative = np.cumsum(np.isfinite(values), axis=1)
        observed = np.concatenate([np.zeros((len(values), 1)), cumulative], axis=1)  # points before i
        windows: list[_Window] = []
        unscored: dict[int, int] = {}  # series index → first visible index without enough history
        for start in range(0, n_vis, window):
            s = first_visible + start
            lo = max(0, s - query.context_length)
            scored = (observed[:, s] - observed[:, lo]) >= MIN_HISTORY_POINTS
            for i in np.flatnonzero(~scored):
                unscored.setdefault(int(i), start)
            if not scored.any():
                continue
            # every window the same horizon (one batch bucket); the last is cut
            job = request.job(context=values[:, lo:s], horizon=window)
            length = min(window, n_vis - start)
            windows.append(_Window(start, length, request.forecast(job), scored))
        if not windows:
            raise bad_request(
                f"timeRange: too little history before the range: every window needs at least "
                f"{MIN_HISTORY_POINTS} observed points at a step of {format_duration(grid.step_ms)} before "
                f"it (the data starts too late); move the range start later")
        notices = []
        if unscored:
            names = ", ".join(history.series[i].name for i in list(unscored)[:3])
            more = f" and {len(unscored) - 3} more" if len(unscored) > 3 else ""
            notices.append(Notice("info", f"No anomaly score where fewer than {MIN_HISTORY_POINTS} points of "
                                          f"history precede the window: {names}{more}"))
        return PendingAnomaly(request, first_visible, window, windows, notices)
