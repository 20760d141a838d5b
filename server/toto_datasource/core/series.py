"""The plain values every stage passes along: a regular time grid and a series on it."""

from __future__ import annotations

from dataclasses import dataclass

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
    unit: str = ""  # Grafana's unit id (`reqps`, `percent`, `bytes`, ...) when the source knows it

    @property
    def observed(self) -> int:
        return int(np.isfinite(self.values).sum())
