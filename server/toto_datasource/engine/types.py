"""The engine's interface: a ForecastJob goes in through `submit()`, a ForecastOutput comes out.

Handlers only ever see these types, so the batching scheduler, the Toto runtime and the
seasonal-naive baseline are interchangeable behind one `Forecaster` protocol.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

QUANTILE_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MEDIAN_INDEX = 4
PATCH = 32


@dataclass
class ForecastJob:
    """History of one query's series on a regular grid, oldest first.

    `context` is (n_series, T) float64 with NaN for missing points. With `joint` the series
    are one multivariate group (Toto's variate attention sees them together); otherwise each
    series is forecast on its own. `deadline` is a time.monotonic() value after which nobody
    waits for the answer any more.
    """

    context: np.ndarray
    horizon: int
    joint: bool = False
    decode_block_size: int | None = None
    deadline: float | None = None
    step_ms: int = 0  # the grid's step; the baseline uses it to find daily/hourly seasons

    def __post_init__(self) -> None:
        self.context = np.atleast_2d(np.asarray(self.context, dtype=np.float64))
        if self.horizon < 1:
            raise ValueError("horizon must be at least 1 step")


@dataclass
class ForecastOutput:
    """Quantiles (9, n_series, horizon) for levels 0.1..0.9, in the caller's units."""

    quantiles: np.ndarray
    model: str
    notices: list[str] = field(default_factory=list)

    @property
    def median(self) -> np.ndarray:
        return self.quantiles[MEDIAN_INDEX]

    def level(self, q: float) -> np.ndarray:
        return self.quantiles[QUANTILE_LEVELS.index(round(q, 1))]


class Forecaster(Protocol):
    """Anything that turns ForecastJobs into ForecastOutputs, possibly batched and async."""

    name: str

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]: ...

    def describe(self) -> dict[str, Any]: ...
