"""Decode Grafana's /api/ds/query JSON into plain series (name, labels, times, values).

The JSON is what grafana-plugin-sdk-go's QueryDataResponse marshalling writes (`data/frame_json.go`):
`results.<refId>` holds `frames` (each `schema.fields[]` + `data.values[]`, with `entities` for
NaN/+-Inf, `nanos` for sub-millisecond times) or `error` / `status` / `errorSource`. Every
time-series kind of Grafana's data plane decodes:

- `timeseries-multi` / `-many` and `timeseries-wide`, and legacy frames without `meta.type`: the
  first time field is the index; every number field is one series, with the field's labels. (The
  data plane reads only a multi frame's first value field; a panel shows them all, and a forecast
  should match the panel.)
- `timeseries-long` (and legacy frames with a time field and string fields): string columns are
  dimensions, so every (number field, dimension values) pair is one series.

Numeric and table answers raise a 400 that says what came back. Names follow the panel's legend:
`config.displayName`, `config.displayNameFromDS`, else the field name (unless it is the generic
"Value") with the labels as `name{k="v", ...}`, else the frame name. Pure functions, no HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.errors import BackendError, bad_request, downstream

TIME_SERIES_KINDS = ("timeseries-multi", "timeseries-many", "timeseries-wide")
NUMERIC_KINDS = ("numeric-multi", "numeric-wide", "numeric-long")
GENERIC_VALUE_NAMES = ("", "Value")
NEED_TIME_SERIES = (
    "the forecast needs a time-series query (a time field plus number fields), e.g. Format: Time series"
)


@dataclass
class GrafanaSeries:
    name: str
    labels: dict[str, str]
    timestamps_ms: np.ndarray  # int64
    values: np.ndarray  # float64; NaN where null
    unit: str = ""  # the field's config.unit, kept so the forecast is drawn on the same axis


@dataclass
class DecodedResult:
    series: list[GrafanaSeries]
    executed_queries: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


@dataclass
class _Field:
    name: str
    kind: str  # time | number | string | boolean | other | enum
    labels: dict[str, str]
    config: Mapping[str, Any]
    values: list[Any]
    entities: Mapping[str, list[int]] | None


def format_labels(labels: Mapping[str, str]) -> str:
    """Prometheus/Grafana notation: `name{k="v", ...}` with __name__ in front and the rest sorted."""
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    name = labels.get("__name__", "")
    return f"{name}{{{rest}}}" if rest else name


def display_name(f: _Field, frame_name: str, labels: Mapping[str, str]) -> str:
    for key in ("displayName", "displayNameFromDS"):
        value = f.config.get(key)
        if isinstance(value, str) and value:
            return value
    parts = [f.name] if f.name not in GENERIC_VALUE_NAMES else []
    if labels:
        parts.append(format_labels(labels))
    if parts:
        return " ".join(parts)
    return frame_name or f.name or "Value"


def unit_of(f: _Field) -> str:
    unit = f.config.get("unit")
    return unit if isinstance(unit, str) else ""


def _number_column(f: _Field) -> np.ndarray:
    if f.kind == "boolean":
        vals = np.array([np.nan if v is None else float(bool(v)) for v in f.values], dtype=np.float64)
    else:
        vals = np.array([np.nan if v is None else v for v in f.values], dtype=np.float64)
    for key, special in (("NaN", np.nan), ("Inf", np.inf), ("NegInf", -np.inf)):
        for i in (f.entities or {}).get(key) or ():
            if 0 <= i < vals.size:
                vals[i] = special
    return vals


def _fields(frame: Mapping[str, Any], where: str) -> list[_Field]:
    schema = frame.get("schema") or {}
    values = (frame.get("data") or {}).get("values") or []
    entities = (frame.get("data") or {}).get("entities") or []
    specs = schema.get("fields") or []
    if not isinstance(specs, list) or not isinstance(values, list):
        raise downstream(f"{where}: the frame's schema or data is not a list", 502)
    if values and len(values) != len(specs):
        raise downstream(f"{where}: {len(specs)} fields but {len(values)} value columns", 502)
    out = []
    for i, spec in enumerate(specs):
        column = values[i] if i < len(values) else []
        ent = entities[i] if i < len(entities) else None
        out.append(
            _Field(
                name=str(spec.get("name") or ""),
                kind=str(spec.get("type") or "other"),
                labels={str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
                config=spec.get("config") or {},
                values=column if isinstance(column, list) else [],
                entities=ent if isinstance(ent, dict) else None,
            )
        )
    return out


def _time_column(f: _Field) -> tuple[np.ndarray, np.ndarray]:
    """Times in ms and which rows have one (a nullable time field may hold nulls)."""
    present = np.array([v is not None for v in f.values], dtype=bool)
    ts = np.array([v if v is not None else 0 for v in f.values], dtype=np.int64)
    return ts, present


def _what(kind: str, fields: Sequence[_Field]) -> str:
    names = ", ".join(f"{f.name or '?'} ({f.kind})" for f in fields[:6])
    more = f" and {len(fields) - 6} more" if len(fields) > 6 else ""
    return f"{kind} with fields {names}{more}" if fields else f"{kind} without fields"


def _frame_series(fields: list[_Field], frame_name: str, kind: str, where: str) -> list[GrafanaSeries]:
    times = [f for f in fields if f.kind == "time"]
    numbers = [f for f in fields if f.kind in ("number", "boolean")]
    strings = [f for f in fields if f.kind == "string"]
    if not times:
        what = "a table" if kind in ("", "table") else f"a {kind} frame"
        raise bad_request(f"{where} returned {_what(what, fields)} and no time field; {NEED_TIME_SERIES}")
    ts, present = _time_column(times[0])
    long = kind == "timeseries-long" or (kind == "" and bool(strings))
    out: list[GrafanaSeries] = []
    if not long:
        for f in numbers:
            vals = _number_column(f)
            name = display_name(f, frame_name, f.labels)
            out.append(GrafanaSeries(name, dict(f.labels), ts[present], vals[present], unit_of(f)))
        return out
    dims = np.array(
        [
            "\x00".join("" if s.values[r] is None else str(s.values[r]) for s in strings)
            for r in range(ts.size)
        ]
    )
    for key in dict.fromkeys(dims.tolist()):
        rows = (dims == key) & present
        dim_labels = dict(zip((s.name for s in strings), key.split("\x00"), strict=True))
        for f in numbers:
            labels = {**f.labels, **dim_labels}
            vals = _number_column(f)
            name = display_name(f, frame_name, labels)
            out.append(GrafanaSeries(name, labels, ts[rows], vals[rows], unit_of(f)))
    return out


def target_error(result: Mapping[str, Any], target: str) -> BackendError:
    """The target data source's own error, passed on with its status (errorSource downstream)."""
    status = result.get("status")
    code = status if isinstance(status, int) and 400 <= status <= 599 else 502
    return downstream(f"{target} returned an error: {result.get('error')}", code)


def decode_result(doc: Mapping[str, Any], ref_id: str, target: str = "the data source") -> DecodedResult:
    """Series of one refId of an /api/ds/query answer; BackendError for errors and non-time-series."""
    results = doc.get("results") if isinstance(doc, Mapping) else None
    if not isinstance(results, Mapping):
        raise downstream("Grafana's answer has no results object; is the URL Grafana's?", 502)
    result = results.get(ref_id)
    if not isinstance(result, Mapping):
        raise downstream(f"Grafana's answer has no result for refId {ref_id!r}", 502)
    if result.get("error"):
        raise target_error(result, target)
    frames = result.get("frames") or []
    decoded = DecodedResult([])
    for i, frame in enumerate(frames):
        schema = frame.get("schema") or {}
        meta = schema.get("meta") or {}
        kind = str(meta.get("type") or "")
        where = f"{target} (frame {i})"
        executed = meta.get("executedQueryString")
        if isinstance(executed, str) and executed and executed not in decoded.executed_queries:
            decoded.executed_queries.append(executed)
        for notice in meta.get("notices") or []:
            if isinstance(notice, Mapping) and notice.get("text"):
                decoded.notices.append(f"{target}: {notice['text']}")
        fields = _fields(frame, where)
        if not fields:
            continue  # "no data": a typed frame without fields
        if kind in NUMERIC_KINDS or kind not in (*TIME_SERIES_KINDS, "timeseries-long", "", "table"):
            raise bad_request(f"{where} returned {_what(f'a {kind} frame', fields)}; {NEED_TIME_SERIES}")
        decoded.series.extend(_frame_series(fields, str(schema.get("name") or ""), kind, where))
    _dedupe_names(decoded.series)
    return decoded


def _dedupe_names(series: list[GrafanaSeries]) -> None:
    """Two series with one legend name (two frames named alike) get " 2", " 3"... as Grafana's legend
    would show them indistinguishable otherwise."""
    seen: dict[str, int] = {}
    for s in series:
        n = seen.get(s.name, 0) + 1
        seen[s.name] = n
        if n > 1:
            s.name = f"{s.name} {n}"
