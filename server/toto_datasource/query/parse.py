"""DataQuery.json → a typed ForecastQuery.

Our keys are validated strictly against the composed schema (query/schema.py); Grafana's own
keys and unknown keys are ignored. The source and the query type parse their own keys (their
`parse_query` / `parse_params`), so this module knows none of them. Every problem is a 400
BackendError that names the field and what it accepts. Numbers are bounded here, before any
arithmetic turns them into nanoseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from ..core.errors import bad_request
from ..core.quantiles import DEFAULT_QUANTILES
from ..core.settings import DataSourceSettings
from .durations import Span, format_duration, parse_duration_ms, span
from .model import ForecastQuery, SetsHorizon
from .schema import SchemaPart, compiled_schema, describe

# Epoch milliseconds a time range may use: 1970 to 2200. Anything else is not a dashboard range
# (Grafana sends -2^63 for a broken one) and would overflow nanosecond timestamps.
MAX_EPOCH_MS = 7_258_118_400_000
MAX_STEP_MS = 366 * 86_400_000
MAX_INTERVAL_MS = MAX_STEP_MS
MAX_DATA_POINTS = 10_000_000


class SourcePart(SchemaPart, Protocol):
    def strip_for_schema(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The query without what the source checks in bulk itself (large inline arrays)."""
        ...

    def parse_query(self, obj: Mapping[str, Any]) -> Any: ...


class QueryTypePart(SchemaPart, Protocol):
    def parse_params(self, obj: Mapping[str, Any]) -> Any: ...


def _load(raw: bytes | str) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw or b"{}")  # twice as fast as json on megabytes of inline points
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"query JSON is malformed: {exc}") from None
    if not isinstance(obj, dict):
        raise bad_request("query JSON must be an object")
    return obj


def _bounded(name: str, value: float, lo: float, hi: float, unit: str = "") -> float:
    if not math.isfinite(value) or not lo <= value <= hi:
        raise bad_request(f"{name}: {value:g}{unit} is out of range; expected {lo:g}-{hi:g}{unit}")
    return value


def _duration_field(obj: Mapping[str, Any], key: str) -> int | None:
    if not obj.get(key):
        return None
    ms = parse_duration_ms(obj[key])
    if not 0 < ms <= MAX_STEP_MS:
        raise bad_request(
            f"{key}: {obj[key]!r} is out of range; expected 1ms to {format_duration(MAX_STEP_MS)}"
        )
    return ms


def settings_span(text: str) -> Span | None:
    """The data source's defaultHorizon (checked at settings parse): a step count or a duration."""
    text = text.strip()
    return Span(steps=int(text)) if text.isdigit() else span(text or None)


def parse_query(
    raw: bytes | str,
    *,
    ref_id: str,
    query_type: str,
    from_ms: int,
    to_ms: int,
    interval_ms: float,
    max_data_points: int,
    settings: DataSourceSettings,
    sources: Mapping[str, SourcePart],
    query_types: Mapping[str, QueryTypePart],
    models: list[str],
) -> ForecastQuery:
    """Validate DataQuery.json and build a ForecastQuery; raises BackendError(400)."""
    obj = _load(raw)
    if query_type and not obj.get("queryType"):
        obj["queryType"] = query_type
    check = compiled_schema(sources.values(), query_types.values(), models)
    source_name = obj.get("source") or next(iter(sources))
    known = isinstance(source_name, str) and source_name in sources  # a list or object: the schema's 400
    stripped = sources[source_name].strip_for_schema(obj) if known else obj
    error = check.first_error(stripped)
    if error is not None:
        raise bad_request(describe(error, check.schema))
    for name, value in (("timeRange.from", from_ms), ("timeRange.to", to_ms)):
        _bounded(name, value, 0, MAX_EPOCH_MS, " ms")
    if from_ms > to_ms:
        raise bad_request(f"timeRange: from ({from_ms}) is after to ({to_ms}); expected from <= to")
    interval = _bounded("intervalMs", float(obj.get("intervalMs") or interval_ms or 0), 0, MAX_INTERVAL_MS)
    points = _bounded("maxDataPoints", float(obj.get("maxDataPoints") or max_data_points or 0), 0,
                      MAX_DATA_POINTS)

    qtype = obj.get("queryType") or next(iter(query_types))
    quantiles = tuple(sorted({round(float(q), 1) for q in obj.get("quantiles", DEFAULT_QUANTILES)} | {0.5}))
    try:
        horizon = span(obj.get("horizon")) or settings_span(settings.default_horizon)
    except ValueError:
        raise bad_request(f"data source setting defaultHorizon: {settings.default_horizon!r} is not a "
                          "duration such as 2h or a number of steps") from None
    if horizon is not None and horizon.ms is not None and horizon.ms > MAX_STEP_MS * 8192:
        raise bad_request(f"horizon: {format_duration(horizon.ms)} is longer than any supported forecast")
    source = sources[source_name].parse_query(obj)
    params = query_types[qtype].parse_params(obj)
    horizon_field = "horizon"
    if isinstance(params, SetsHorizon):  # the type's own parameters say how far it forecasts
        horizon, horizon_field = params.horizon, params.horizon_field
    return ForecastQuery(
        ref_id=ref_id,
        query_type=qtype,
        source_name=source_name,
        source=source,
        from_ms=from_ms,
        to_ms=to_ms,
        interval_ms=interval,
        max_data_points=int(points),
        horizon=horizon,
        step_ms=_duration_field(obj, "step"),
        context_length=int(obj.get("contextLength", settings.default_context_length)),
        quantiles=quantiles,
        include_history=bool(obj.get("includeHistory", True)),
        model=obj.get("model", "toto"),
        joint=bool(obj.get("joint", False)),
        params=params,
        horizon_field=horizon_field,
    )
