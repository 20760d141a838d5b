"""Series given inside the query: timestamps and values, possibly unsorted or irregular.

The grid comes from the data itself (median spacing, last timestamp); points are snapped to it,
duplicates keep the last value, and what was done is reported as a notice.
"""

from __future__ import annotations

import numpy as np

from ..errors import bad_request
from ..query import InlineSpec
from .base import History, HistoryRequest, Series, TimeGrid


class InlineSource:
    def __init__(self, spec: InlineSpec) -> None:
        self.spec = spec

    def native_grid(self, context_length: int) -> TimeGrid:
        """One grid for all series: the finest median spacing, ending at the latest timestamp."""
        steps, ends, starts = [], [], []
        for i, s in enumerate(self.spec.series):
            ts = s.timestamps_ms
            diffs = np.diff(ts)
            if not (diffs > 0).all():  # the common case, sorted and distinct, needs no np.unique
                ts = np.unique(ts)
                diffs = np.diff(ts)
            if diffs.size == 0:
                raise bad_request(
                    f"series.{i}.timestamps: all timestamps are equal; need at least 2 distinct times"
                )
            steps.append(int(np.median(diffs)))
            ends.append(int(ts[-1]))
            starts.append(int(ts[0]))
        step = max(1, min(steps))
        end = max(ends)
        count = min(context_length, (end - min(starts)) // step + 1)
        return TimeGrid(end, step, int(count))

    def fetch(self, request: HistoryRequest) -> History:
        grid = request.grid
        notices: list[str] = []
        out = []
        for s in self.spec.series:
            ts, vals = s.timestamps_ms, s.values
            if np.any(np.diff(ts) < 0):
                notices.append(f"{s.name}: timestamps were not in order; sorted them")
                order = np.argsort(ts, kind="stable")
                ts, vals = ts[order], vals[order]
            idx = np.rint((ts - grid.start_ms) / grid.step_ms).astype(np.int64)
            if np.any(np.abs(ts - (grid.start_ms + idx * grid.step_ms)) > 0):
                notices.append(f"{s.name}: irregular timestamps snapped to a {grid.step_ms} ms grid")
            keep = (idx >= 0) & (idx < grid.count)
            values = np.full(grid.count, np.nan)
            values[idx[keep]] = vals[keep]  # later duplicates overwrite earlier ones
            if np.any(np.diff(idx[keep]) == 0):  # idx is sorted: duplicates are neighbours
                notices.append(f"{s.name}: several points fell on the same step; kept the last")
            out.append(Series(s.name, s.labels, values))
        return History(grid, out, notices, executed_query=f"inline: {len(out)} series")
