"""The engine's interface: a ForecastJob goes in through `submit()`, a ForecastOutput comes out.

Query types only ever see these types, so the batching scheduler over a local or remote model
and the statistical baselines are interchangeable behind one `Forecaster` protocol.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..core.quantiles import QUANTILE_LEVELS, quantile_index

__all__ = ["PATCH", "QUANTILE_LEVELS", "ForecastJob", "ForecastOutput", "Forecaster"]

PATCH = 32  # Toto 2.0's patch size: context lengths are padded to a multiple of it


@dataclass
class ForecastJob:
    """History of one query's series on a regular grid, oldest first.

    `context` is (n_series, T) float64 with NaN for missing points. With `joint` the series
    are one multivariate group (Toto's variate attention sees them together); otherwise each
    series is forecast on its own. `deadline` is a time.monotonic() value after which nobody
    waits for the answer any more. How Toto decodes (one pass or blocks) is the engine's choice
    (engine/decoding.py), never the caller's, so every query type gets the same numbers.
    """

    context: np.ndarray
    horizon: int
    joint: bool = False
    deadline: float | None = None
    step_ms: int = 0  # the grid's step; the baselines use it to find daily/hourly seasons

    def __post_init__(self) -> None:
        self.context = np.atleast_2d(np.asarray(self.context, dtype=np.float64))
        if self.horizon < 1:
            raise ValueError("horizon must be at least 1 step")


@dataclass
class ForecastOutput:
    """Quantiles (9, n_series, horizon) for levels 0.1..0.9, in the caller's units."""

    quantiles: np.ndarray
    model: str
    queue_wait_s: float = 0.0  # how long the job waited for the model (frame meta shows it)

    def level(self, q: float) -> np.ndarray:
        return self.quantiles[quantile_index(q)]


class Forecaster(Protocol):
    """Anything that turns ForecastJobs into ForecastOutputs, possibly batched and async."""

    name: str

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]: ...

    def describe(self) -> dict[str, Any]: ...
