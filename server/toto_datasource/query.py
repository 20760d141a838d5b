"""The query model: DataQuery.json → a typed ForecastQuery, and the time plan it implies.

Our keys are validated strictly against query.schema.json (the same file the frontend's tests
check the editors against); Grafana's own keys and unknown keys are ignored. Every problem is
a 400 QueryError that names the field and what it accepts. Inline `timestamps`/`values` arrays
are checked with numpy against the same schema rules: jsonschema checks numbers one at a time,
which cost seconds (holding the GIL) for a 64 x 2048 request.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import numpy as np
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from .errors import bad_request
from .settings import DataSourceSettings
from .sources.base import TimeGrid

QueryType = Literal["forecast", "threshold", "anomaly"]
MAX_HORIZON_STEPS = 8192
DEFAULT_HORIZON_STEPS = 64
HORIZON_FRACTION_OF_CONTEXT = 4  # history should cover at least 4× the horizon
MIN_AUTO_STEP_MS = 15_000
NICE_STEPS_MS = tuple(
    s * 1000
    for s in (
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
        7200, 10800, 21600, 43200, 86400, 172800, 604800,
    )
)
# Bounds applied before any arithmetic (issue 13: intervalMS 2^63-1, "step": "9999999w" or a time
# range at -2^63 overflowed int64 nanoseconds into 500s, and intervalMs 1e15 wrapped timestamps).
# Grafana's frames carry int64 nanoseconds, good for 1677-2262; every time we compute stays inside
# TIME_WINDOW_MS, which leaves room on both sides.
EARLIEST_RANGE_MS = 0  # a panel's time range: 1970 ...
LATEST_RANGE_MS = 4_102_444_800_000  # ... to 2100-01-01
TIME_WINDOW_MS = (-8_000_000_000_000, 7_000_000_000_000)  # grid and forecast: 1716 to 2191
MAX_STEP_MS = 366 * 86_400_000  # a year; finer than any forecast that makes sense
MAX_SPAN_MS = 20 * 366 * 86_400_000  # horizon / anomaly window as a duration
MAX_INTERVAL_MS = MAX_STEP_MS
MAX_DATA_POINTS = 1_000_000_000
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration_ms(text: str, limit_ms: float = math.inf) -> int:
    """Milliseconds of a duration such as 90s or 1.5h; ValueError when it is not one, or is longer
    than `limit_ms` (checked on the float, before int() of a 400-digit number can overflow)."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 2h, 7d")
    ms = float(m.group(1)) * _UNITS_MS[m.group(2)]
    if not math.isfinite(ms) or ms > limit_ms:
        raise ValueError(f"{text.strip()[:40]!r} is longer than {format_duration(limit_ms)}")
    return int(ms)


def _duration_field(name: str, text: str, limit_ms: float) -> int:
    try:
        return parse_duration_ms(text, limit_ms)
    except ValueError as exc:
        raise bad_request(f"{name}: {exc}") from None


def _bounded(name: str, value: Any, lo: float, hi: float, accepted: str) -> float:
    """A number from the request (Grafana's or the query JSON's), refused outside [lo, hi]."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise bad_request(f"{name}: {_short(value)} is not a number; expected {accepted}") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise bad_request(f"{name}: {number:g} is out of range; expected {accepted}")
    return number


def format_duration(ms: float) -> str:
    """Human form: 1d 10h, 15m, 30s."""
    ms = round(ms)
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
        if len(parts) == 2:
            break
    return " ".join(parts) or f"{ms}ms"


@dataclass(frozen=True)
class Span:
    """A length given either in steps or as a duration."""

    steps: int | None = None
    ms: int | None = None

    def to_steps(self, step_ms: int) -> int:
        return self.steps if self.steps is not None else math.ceil((self.ms or 0) / step_ms)


@dataclass(frozen=True)
class DemoSpec:
    scenario: str


@dataclass(frozen=True)
class InlineSeries:
    name: str
    labels: dict[str, str]
    timestamps_ms: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class InlineSpec:
    series: tuple[InlineSeries, ...]


@dataclass(frozen=True)
class PrometheusSpec:
    expr: str
    legend_format: str


SourceSpec = DemoSpec | InlineSpec | PrometheusSpec


@dataclass(frozen=True)
class ThresholdSpec:
    value: float
    direction: Literal["above", "below"]
    quantile: float


@dataclass(frozen=True)
class ForecastQuery:
    ref_id: str
    query_type: QueryType
    source: SourceSpec
    from_ms: int
    to_ms: int
    interval_ms: float
    max_data_points: int
    horizon: Span | None
    step_ms: int | None
    context_length: int
    quantiles: tuple[float, ...]  # sorted, always includes 0.5
    include_history: bool
    model: Literal["toto", "seasonal-naive"]
    joint: bool
    threshold: ThresholdSpec | None
    anomaly_window: Span | None


@dataclass(frozen=True)
class Plan:
    """Where history ends, its step and length, and how many steps to forecast."""

    grid: TimeGrid
    horizon: int

    @property
    def horizon_ms(self) -> int:
        return self.horizon * self.grid.step_ms


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(resources.files("toto_datasource").joinpath("query.schema.json").read_text())
    return Draft202012Validator(schema)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (bytes, bytearray)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(error: ValidationError) -> str:
    """One line naming the field, what was wrong (without echoing huge values) and what is accepted."""
    path = ".".join(str(p) for p in error.absolute_path) or "query"
    field = str(error.absolute_path[0]) if error.absolute_path else ""
    props = _validator().schema["properties"]
    description = props.get(field, {}).get("description", "")
    kind, limit, value = error.validator, error.validator_value, error.instance
    if kind in ("maxItems", "minItems"):
        message = f"has {len(value)} items; {'at most' if kind == 'maxItems' else 'at least'} {limit} allowed"
    elif kind in ("maxLength", "minLength"):
        bound = "at most" if kind == "maxLength" else "at least"
        message = f"is {len(value)} characters long; {bound} {limit}"
    elif kind == "type":
        message = f"{_short(value)} is not of type {limit}"
    elif kind == "enum":
        message = f"{_short(value)} is not one of {_short(limit)}"
    elif kind in ("minimum", "maximum"):
        message = f"{_short(value)} is {'less' if kind == 'minimum' else 'more'} than the {kind} of {limit}"
    elif kind in ("oneOf", "anyOf", "pattern"):
        message = f"{_short(value)} is not valid"
    else:
        message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{path}: {message}" + (f". Accepted: {description}" if description else "")


_SERIES_ARRAY_MAX_ITEMS = 100_000  # as in query.schema.json
_NUMBER_TYPES = frozenset({int, float})
_NUMBER_OR_NULL_TYPES = frozenset({int, float, type(None)})


def _split_series_arrays(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[tuple[int, str], list[Any]]]:
    """A copy of the query with inline arrays emptied (for the schema), and those arrays by path."""
    series = obj.get("series")
    if not isinstance(series, list):
        return obj, {}
    arrays: dict[tuple[int, str], list[Any]] = {}
    stripped: list[Any] = []
    for i, item in enumerate(series):
        if isinstance(item, dict):
            item = dict(item)
            for key in ("timestamps", "values"):
                if isinstance(item.get(key), list):
                    arrays[(i, key)] = item[key]
                    item[key] = []
        stripped.append(item)
    return {**obj, "series": stripped}, arrays


def _check_number_array(path: str, items: list[Any], *, allow_null: bool) -> None:
    """The schema's rules for an inline array (maxItems; numbers, or null for values), in bulk."""
    accepted = _validator().schema["properties"]["series"]["description"]
    if len(items) > _SERIES_ARRAY_MAX_ITEMS:
        raise bad_request(f"{path}: has {len(items)} items; at most {_SERIES_ARRAY_MAX_ITEMS} allowed. "
                          f"Accepted: {accepted}")
    allowed = _NUMBER_OR_NULL_TYPES if allow_null else _NUMBER_TYPES
    if not set(map(type, items)) <= allowed:  # type(True) is bool: JSON booleans are not numbers
        i, bad = next((i, v) for i, v in enumerate(items) if type(v) not in allowed)
        kind = "number or null" if allow_null else "number"
        raise bad_request(f"{path}.{i}: {_short(bad)} is not of type {kind}. Accepted: {accepted}")


def _span(value: Any, name: str = "horizon") -> Span | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and not value.strip().isdigit():  # a setting's "64" is steps
        return Span(ms=_duration_field(name, value, MAX_SPAN_MS))
    return Span(steps=int(_bounded(name, value, 1, MAX_HORIZON_STEPS, f"1-{MAX_HORIZON_STEPS} steps")))


def _check_time_range(from_ms: int, to_ms: int) -> None:
    for label, ms in (("from", from_ms), ("to", to_ms)):
        if not EARLIEST_RANGE_MS <= ms <= LATEST_RANGE_MS:
            raise bad_request(
                f"timeRange: {label} ({ms}) is outside the supported range; expected epoch milliseconds "
                f"between {EARLIEST_RANGE_MS} (1970) and {LATEST_RANGE_MS} (2100)"
            )


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
) -> ForecastQuery:
    """Validate DataQuery.json and build a ForecastQuery; raises QueryError(400)."""
    try:
        obj = orjson.loads(raw or b"{}")  # twice as fast as json on megabytes of inline points
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"query JSON is malformed: {exc}") from None
    if not isinstance(obj, dict):
        raise bad_request("query JSON must be an object")
    if query_type and not obj.get("queryType"):
        obj["queryType"] = query_type
    stripped, arrays = _split_series_arrays(obj)
    error = best_match(_validator().iter_errors(stripped))
    if error is not None:
        raise bad_request(_describe(error))
    for (i, key), items in arrays.items():
        _check_number_array(f"series.{i}.{key}", items, allow_null=key == "values")
    _check_time_range(from_ms, to_ms)
    if from_ms > to_ms:
        raise bad_request(f"timeRange: from ({from_ms}) is after to ({to_ms}); expected from <= to")
    interval = _bounded(
        "intervalMs", obj.get("intervalMs") or interval_ms or 0, 0, MAX_INTERVAL_MS,
        f"0-{MAX_INTERVAL_MS} ms (a year)",
    )
    points = int(_bounded("maxDataPoints", obj.get("maxDataPoints") or max_data_points or 0, 0,
                          MAX_DATA_POINTS, f"0-{MAX_DATA_POINTS}"))
    step_ms = _duration_field("step", obj["step"], MAX_STEP_MS) if obj.get("step") else None
    if step_ms is not None and step_ms < 1:
        raise bad_request(f"step: {obj['step']!r} is shorter than 1ms; expected e.g. 15s, 1m, 1h")

    source_name = obj.get("source", "demo")
    source: SourceSpec
    if source_name == "demo":
        source = DemoSpec(obj.get("scenario", "postgres-load"))
    elif source_name == "inline":
        source = InlineSpec(tuple(_inline_series(i, s) for i, s in enumerate(obj.get("series") or [])))
        if not source.series:
            raise bad_request("series: source is inline but no series were given. Accepted: a list of "
                              "{name, labels, timestamps (epoch ms), values}")
    else:
        expr = str(obj.get("expr", "")).strip()
        if not expr:
            raise bad_request("expr: source is prometheus but the PromQL expression is empty")
        source = PrometheusSpec(expr, str(obj.get("legendFormat", "")))

    qtype: QueryType = obj.get("queryType") or "forecast"
    quantiles = tuple(sorted({round(float(q), 1) for q in obj.get("quantiles", [0.1, 0.5, 0.9])} | {0.5}))
    threshold = None
    if qtype == "threshold":
        if "threshold" not in obj:
            raise bad_request("threshold: queryType threshold needs a threshold value (a number)")
        direction = obj.get("direction", "above")
        default_q = 0.9 if direction == "above" else 0.1
        value = float(obj["threshold"])
        if not math.isfinite(value):
            raise bad_request(f"threshold: {obj['threshold']} is not a finite number")
        threshold = ThresholdSpec(value, direction, float(obj.get("thresholdQuantile", default_q)))
    horizon = _span(obj.get("horizon")) or _span(settings.default_horizon or None, "defaultHorizon")
    return ForecastQuery(
        ref_id=ref_id,
        query_type=qtype,
        source=source,
        from_ms=from_ms,
        to_ms=to_ms,
        interval_ms=interval,
        max_data_points=points,
        horizon=horizon,
        step_ms=step_ms,
        context_length=int(obj.get("contextLength", settings.default_context_length)),
        quantiles=quantiles,
        include_history=bool(obj.get("includeHistory", True)),
        model=obj.get("model", "toto"),
        joint=bool(obj.get("joint", False)),
        threshold=threshold,
        anomaly_window=_span(obj.get("anomalyWindow"), "anomalyWindow"),
    )


def _inline_series(i: int, s: dict[str, Any]) -> InlineSeries:
    ts = np.asarray(s["timestamps"], dtype=np.float64)
    values = np.array(s["values"], dtype=np.float64)  # null → NaN
    if ts.size != values.size:
        raise bad_request(
            f"series.{i}: {ts.size} timestamps but {values.size} values; "
            "each value needs a timestamp (epoch ms)"
        )
    if ts.size < 2:
        raise bad_request(f"series.{i}: needs at least 2 points, got {ts.size}")
    if not np.isfinite(ts).all():
        raise bad_request(
            f"series.{i}.timestamps: every timestamp must be a finite epoch-millisecond number"
        )
    lo, hi = TIME_WINDOW_MS
    if ts.min() < lo or ts.max() > hi:
        raise bad_request(
            f"series.{i}.timestamps: every timestamp must be epoch milliseconds between {lo} and {hi}"
        )
    name = (
        s.get("name")
        or ",".join(f"{k}={v}" for k, v in sorted((s.get("labels") or {}).items()))
        or f"series{i}"
    )
    return InlineSeries(name, dict(s.get("labels") or {}), ts.astype(np.int64), values)


def nice_step(required_ms: float) -> int:
    """The smallest conventional step (1s, 15s, 1m, 5m, 1h, ...) that is at least `required_ms`."""
    for step in NICE_STEPS_MS:
        if step >= required_ms:
            return step
    return int(math.ceil(required_ms / NICE_STEPS_MS[-1]) * NICE_STEPS_MS[-1])


def choose_step_ms(query: ForecastQuery) -> int:
    """Panel interval, coarsened so the context covers several horizons (capacity queries get
    hour steps and months of history); a step the user set is kept as given."""
    if query.step_ms:
        return query.step_ms
    required = max(query.interval_ms, MIN_AUTO_STEP_MS)
    if query.horizon is not None and query.horizon.ms:
        required = max(required, query.horizon.ms * HORIZON_FRACTION_OF_CONTEXT / query.context_length)
    return nice_step(required)


def plan_query(
    query: ForecastQuery, now_ms: int, step_ms: int | None = None, end_ms: int | None = None
) -> Plan:
    """History ends at now (or the range end if that is earlier); the forecast runs to the range
    end when it lies in the future, else for the requested or default horizon."""
    step = step_ms or choose_step_ms(query)
    if end_ms is None:
        end_ms = (min(query.to_ms, now_ms) // step) * step
    if query.horizon is not None:
        horizon = query.horizon.to_steps(step)
    elif query.to_ms > end_ms + step:
        horizon = math.ceil((query.to_ms - end_ms) / step)
    else:
        horizon = DEFAULT_HORIZON_STEPS
    if horizon < 1:
        raise bad_request("horizon: must be at least one step")
    if horizon > MAX_HORIZON_STEPS:
        raise bad_request(
            f"horizon: {horizon} steps at a step of {format_duration(step)} is more than the "
            f"{MAX_HORIZON_STEPS} steps allowed; shorten the horizon or set a coarser step"
        )
    grid = TimeGrid(end_ms=int(end_ms), step_ms=int(step), count=query.context_length)
    check_time_window(grid, horizon)
    return Plan(grid, horizon)


def check_time_window(grid: TimeGrid, horizon: int) -> None:
    """History start and forecast end inside TIME_WINDOW_MS (Python ints: no overflow here), so
    the int64 nanoseconds of every frame are exact and ascending."""
    lo, hi = TIME_WINDOW_MS
    start = grid.end_ms - (grid.count - 1) * grid.step_ms
    end = grid.end_ms + horizon * grid.step_ms
    if start < lo or end > hi:
        raise bad_request(
            f"step: {format_duration(grid.step_ms)} × {grid.count} history points and {horizon} forecast "
            f"steps reach beyond the years 1716-2191 that timestamps can carry; use a finer step, a shorter "
            "contextLength or a shorter horizon"
        )
