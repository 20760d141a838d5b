"""The typed query: what every query type and source reads, plus the time plan it implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..core.series import TimeGrid
from .durations import Span


@dataclass(frozen=True)
class ForecastQuery:
    """One DataQuery, validated. `source` is the source provider's own spec for `source_name`
    (e.g. a PromQL expression); `params` is the query type's own parameters (e.g. a threshold)."""

    ref_id: str
    query_type: str
    source_name: str
    source: Any
    from_ms: int
    to_ms: int
    interval_ms: float
    max_data_points: int
    horizon: Span | None
    step_ms: int | None
    context_length: int
    quantiles: tuple[float, ...]  # sorted, always includes 0.5
    include_history: bool
    model: str
    joint: bool
    params: Any = None
    horizon_field: str = "horizon"  # the query key `horizon` came from, named in its errors


@runtime_checkable
class SetsHorizon(Protocol):
    """Parameters of a query type that decide how far it forecasts (recorded: its longest
    leadTime). The planner then chooses the step and horizon as for a forecast of that length, and
    its errors name `horizon_field`."""

    @property
    def horizon(self) -> Span: ...

    @property
    def horizon_field(self) -> str: ...


@dataclass(frozen=True)
class Plan:
    """Where history ends, its step and length, and how many steps to forecast."""

    grid: TimeGrid
    horizon: int
    # When the query is evaluated: the range end, or now when the range ends later (a recording
    # rule's range ends at its evaluation time). None for plans made without a clock.
    at_ms: int | None = None

    @property
    def horizon_ms(self) -> int:
        return self.horizon * self.grid.step_ms
