"""What every history source takes and gives: one small interface, plain values."""

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class TimeGrid:
    """A regular time grid: `count` points ending at `end_ms`, `step_ms` apart.

    Sources align every series to the grid so the engine sees one value per step and the
    forecast's timestamps continue the history exactly (first forecast = end_ms + step_ms).
    """

    end_ms: int
    step_ms: int
    count: int

    @property
    def start_ms(self) -> int:
        return self.end_ms - (self.count - 1) * self.step_ms

    def timestamps_ms(self) -> np.ndarray:
        return self.start_ms + self.step_ms * np.arange(self.count, dtype=np.int64)

    def future_ms(self, horizon: int) -> np.ndarray:
        return self.end_ms + self.step_ms * np.arange(1, horizon + 1, dtype=np.int64)


@dataclass
class Series:
    """One history series on a TimeGrid; NaN marks a missing point (the engine masks it)."""

    name: str
    labels: dict[str, str]
    values: np.ndarray  # float64, len == grid.count

    @property
    def observed(self) -> int:
        return int(np.isfinite(self.values).sum())


@dataclass
class History:
    """What a source returns: series on one grid plus notices for the user."""

    grid: TimeGrid
    series: list[Series]
    notices: list[str] = field(default_factory=list)
    executed_query: str = ""


@dataclass(frozen=True)
class HistoryRequest:
    """What the query stage asks of a source: `grid` is the history window to fill."""

    grid: TimeGrid
    query: object  # the parsed ForecastQuery; each source reads its own fields


class HistorySource(Protocol):
    """Fetches history for a query. Raise errors.QueryError for anything the user should see."""

    def fetch(self, request: HistoryRequest) -> History: ...
