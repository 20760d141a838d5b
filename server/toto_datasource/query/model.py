"""The typed query: what every query type and source reads, plus the time plan it implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Plan:
    """Where history ends, its step and length, and how many steps to forecast."""

    grid: TimeGrid
    horizon: int

    @property
    def horizon_ms(self) -> int:
        return self.horizon * self.grid.step_ms
