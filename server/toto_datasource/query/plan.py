"""The time plan a query implies: the history grid (end, step, length) and the horizon."""

from __future__ import annotations

import math

from ..core.errors import bad_request
from ..core.series import TimeGrid
from .durations import format_duration
from .limits import DEFAULT_HORIZON_STEPS, MAX_HORIZON_STEPS
from .model import ForecastQuery, Plan

NANOSECOND_LIMIT_MS = 9_000_000_000_000  # int64 nanoseconds end in 2262 (and begin in 1677)
HORIZON_FRACTION_OF_CONTEXT = 4  # history should cover at least 4× the horizon
MIN_AUTO_STEP_MS = 15_000
NICE_STEPS_MS = tuple(
    s * 1000
    for s in (
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
        7200, 10800, 21600, 43200, 86400, 172800, 604800,
    )
)


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
    field = query.horizon_field
    if horizon < 1:
        raise bad_request(f"{field}: must be at least one step")
    if horizon > MAX_HORIZON_STEPS:
        raise bad_request(
            f"{field}: {horizon} steps at a step of {format_duration(step)} is more than the "
            f"{MAX_HORIZON_STEPS} steps allowed; shorten the {field} or set a coarser step"
        )
    grid = TimeGrid(end_ms=int(end_ms), step_ms=int(step), count=query.context_length)
    if grid.start_ms < -NANOSECOND_LIMIT_MS or grid.end_ms + horizon * step > NANOSECOND_LIMIT_MS:
        raise bad_request(
            f"step: {format_duration(step)} × {grid.count} history points and {horizon} forecast steps "
            "reach beyond the years 1678-2262 that Grafana's nanosecond timestamps can hold; "
            "set a finer step, a shorter contextLength or a shorter horizon"
        )
    return Plan(grid, horizon, at_ms=min(query.to_ms, now_ms))
