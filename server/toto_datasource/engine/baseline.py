"""Seasonal-naive baseline with drift: repeat the last season, shifted by the typical
season-over-season change, band from the previous seasons' errors.

The drift term is what lets the baseline answer capacity questions ("the volume is full in
9 days"): without it a filling disk is forecast to stay where it is.

Runs when asked for (`model: seasonal-naive`) and when Toto's weights cannot be had, so the
product still answers offline; frames always say which model produced them.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import numpy as np

from .types import QUANTILE_LEVELS, ForecastJob, ForecastOutput

_SEASONS_MS = (7 * 86_400_000, 86_400_000, 3_600_000)


def season_steps(step_ms: int, observed: int) -> int:
    """The longest of week/day/hour that history covers at least twice; else 1 (naive)."""
    for season_ms in _SEASONS_MS:
        if step_ms > 0 and season_ms % step_ms == 0:
            steps = season_ms // step_ms
            if steps >= 2 and 2 * steps <= observed:
                return int(steps)
    return 1


def _ffill(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    finite = np.isfinite(out)
    if not finite.any():
        return np.zeros_like(out)
    idx = np.where(finite, np.arange(out.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = out[idx]
    first = np.flatnonzero(finite)[0]
    out[:first] = out[first]
    return out


def seasonal_naive(history: np.ndarray, horizon: int, step_ms: int) -> np.ndarray:
    """(9, horizon) quantiles for one series.

    Step h repeats the value one season before it, i.e. (h // s + 1) seasons back, plus that
    many seasons of drift (the median season-over-season change); the band is the spread of
    those changes around the drift, widened as seasons accumulate.
    """
    observed = int(np.isfinite(history).sum())
    x = _ffill(np.asarray(history, dtype=np.float64))
    s = season_steps(step_ms, observed)
    h = np.arange(horizon)
    base = x[len(x) - s + (h % s)]
    changes = x[s:] - x[:-s] if len(x) > s else np.zeros(1)
    levels = np.quantile(changes, QUANTILE_LEVELS)
    drift, spread = levels[4], levels - levels[4]
    seasons_ahead = h // s + 1
    median = base + drift * seasons_ahead
    widen = np.sqrt(seasons_ahead)  # errors accumulate season over season
    return np.sort(median[None, :] + spread[:, None] * widen[None, :], axis=0)


class SeasonalNaiveForecaster:
    name = "seasonal-naive"

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        future: Future[ForecastOutput] = Future()
        q = np.stack([seasonal_naive(row, job.horizon, job.step_ms) for row in job.context], axis=1)
        future.set_result(ForecastOutput(q, self.name))
        return future

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}
