"""Series given inside the query: timestamps and values, possibly unsorted or irregular.

The grid comes from the data itself (median spacing, last timestamp); points are snapped to it,
duplicates keep the last value, and what was done is reported as a notice. The `timestamps` and
`values` arrays are checked here in bulk with numpy under the schema's own rules: jsonschema
checks numbers one at a time, which cost seconds (holding the GIL) for a 64 x 2048 request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend.errors import bad_request
from ..backend.settings import DataSourceSettings
from ..query.limits import MAX_INLINE_POINTS, MAX_INLINE_SERIES
from ..query.schema import short
from .base import History, HistoryRequest, Series, SimpleProvider, StaticSource, TimeGrid, spec_of

_ARRAYS = ("timestamps", "values")
_NUMBER_TYPES = frozenset({int, float})
_NUMBER_OR_NULL_TYPES = frozenset({int, float, type(None)})
_SERIES_DESCRIPTION = "Inline history (source=inline): one entry per series."


@dataclass(frozen=True)
class InlineSeries:
    name: str
    labels: dict[str, str]
    timestamps_ms: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class InlineSpec:
    series: tuple[InlineSeries, ...]


def _check_number_array(path: str, items: list[Any], *, allow_null: bool) -> None:
    """The schema's rules for an inline array (maxItems; numbers, or null for values), in bulk."""
    if len(items) > MAX_INLINE_POINTS:
        raise bad_request(f"{path}: has {len(items)} items; at most {MAX_INLINE_POINTS} allowed. "
                          f"Accepted: {_SERIES_DESCRIPTION}")
    allowed = _NUMBER_OR_NULL_TYPES if allow_null else _NUMBER_TYPES
    if not set(map(type, items)) <= allowed:  # type(True) is bool: JSON booleans are not numbers
        i, bad = next((i, v) for i, v in enumerate(items) if type(v) not in allowed)
        kind = "number or null" if allow_null else "number"
        raise bad_request(f"{path}.{i}: {short(bad)} is not of type {kind}. Accepted: {_SERIES_DESCRIPTION}")


def _inline_series(i: int, s: Mapping[str, Any]) -> InlineSeries:
    for key in _ARRAYS:
        _check_number_array(f"series.{i}.{key}", s[key], allow_null=key == "values")
    ts = np.asarray(s["timestamps"], dtype=np.float64)
    values = np.array(s["values"], dtype=np.float64)  # null → NaN
    if ts.size != values.size:
        raise bad_request(
            f"series.{i}: {ts.size} timestamps but {values.size} values; "
            "each value needs a timestamp (epoch ms)"
        )
    if ts.size < 2:
        raise bad_request(f"series.{i}: needs at least 2 points, got {ts.size}")
    if not np.isfinite(ts).all() or np.abs(ts).max() > 9e12:
        raise bad_request(
            f"series.{i}.timestamps: every timestamp must be an epoch-millisecond number between the "
            "years 1678 and 2262"
        )
    name = (
        s.get("name")
        or ",".join(f"{k}={v}" for k, v in sorted((s.get("labels") or {}).items()))
        or f"series{i}"
    )
    return InlineSeries(name, dict(s.get("labels") or {}), ts.astype(np.int64), values)


class InlineSource(StaticSource):
    def __init__(self, spec: InlineSpec | None = None) -> None:
        self.spec = spec  # fixed series (tests), else the query's

    def native_grid(self, spec: Any, context_length: int) -> TimeGrid:
        """One grid for all series: the finest median spacing, ending at the latest timestamp."""
        steps, ends, starts = [], [], []
        for i, s in enumerate((spec or self.spec).series):
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

    def series_count(self, spec: Any, grid: TimeGrid) -> int:
        return len(spec.series)

    def fetch(self, request: HistoryRequest) -> History:
        grid = request.grid
        spec = self.spec or spec_of(request, InlineSpec)
        notices: list[str] = []
        out = []
        for s in spec.series:
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


class InlineProvider(SimpleProvider):
    name = "inline"
    title = "Inline series"
    description = "series given in the query"
    schema: Mapping[str, Any] = {
        "series": {
            "type": "array",
            "maxItems": MAX_INLINE_SERIES,
            "description": _SERIES_DESCRIPTION,
            "items": {
                "type": "object",
                "required": list(_ARRAYS),
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "timestamps": {"type": "array", "maxItems": MAX_INLINE_POINTS,
                                   "items": {"type": "number"},
                                   "description": "Epoch milliseconds, same length as values."},
                    "values": {"type": "array", "maxItems": MAX_INLINE_POINTS,
                               "items": {"type": ["number", "null"]}},
                },
            },
        },
    }

    def strip_for_schema(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The query with inline arrays emptied: parse_query checks them in bulk."""
        series = obj.get("series")
        if not isinstance(series, list):
            return obj
        stripped = [
            {**item, **{k: [] for k in _ARRAYS if isinstance(item.get(k), list)}} if isinstance(item, dict)
            else item
            for item in series
        ]
        return {**obj, "series": stripped}

    def parse_query(self, obj: Mapping[str, Any]) -> InlineSpec:
        spec = InlineSpec(tuple(_inline_series(i, s) for i, s in enumerate(obj.get("series") or [])))
        if not spec.series:
            raise bad_request("series: source is inline but no series were given. Accepted: a list of "
                              "{name, labels, timestamps (epoch ms), values}")
        return spec

    def open(self, settings: DataSourceSettings) -> InlineSource:
        return InlineSource()
