"""Seasonal-naive baseline with drift: repeat the recent seasons (their median), shifted by the
typical season-over-season change, band from the previous seasons' errors.

The drift term is what lets the baseline answer capacity questions ("the volume is full in
9 days"): without it a filling disk is forecast to stay where it is.

Runs when asked for (`model: seasonal-naive`) and when Toto's weights cannot be had, so the
product still answers offline; frames always say which model produced them.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import numpy as np

from ..backend.settings import ModelSettings
from .backends import LoadedBackend, Probe
from .types import QUANTILE_LEVELS, ForecastJob, ForecastOutput

_SEASONS_MS = (7 * 86_400_000, 86_400_000, 3_600_000)
_MEDIAN_OF_SEASONS = 3


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

    Step h is the median of the same phase in the last (up to) three seasons, each moved forward
    by the drift (the median season-over-season change across those seasons) for the seasons
    between; the median keeps a one-off spike from being echoed a season later. The band is the
    spread of all season-over-season changes in the context, widened as seasons accumulate.
    """
    observed = int(np.isfinite(history).sum())
    x = _ffill(np.asarray(history, dtype=np.float64))
    s = season_steps(step_ms, observed)
    h = np.arange(horizon)
    changes = x[s:] - x[:-s] if len(x) > s else np.zeros(1)
    levels = np.quantile(changes, QUANTILE_LEVELS)
    spread = levels - levels[4]
    drift = float(np.median(changes[-_MEDIAN_OF_SEASONS * s :]))  # the recent trend, not the context's
    seasons_ahead = h // s + 1  # how many seasons back the latest same-phase value lies
    back = range(1, min(_MEDIAN_OF_SEASONS, len(x) // s) + 1)
    candidates = [x[len(x) - k * s + (h % s)] + drift * (seasons_ahead + k - 1) for k in back]
    median = np.median(candidates, axis=0)
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
        return {"name": self.name, "baseline": True}


class SeasonalNaiveBackend:
    """The baseline as a model backend: instant, needs no checkpoint, picked by `model: seasonal-naive`."""

    name = "seasonal-naive"
    instant = True
    query_model = "seasonal-naive"

    def load(self, settings: ModelSettings, warmup: bool) -> LoadedBackend:
        model = SeasonalNaiveForecaster()
        return LoadedBackend(model, model, {"name": model.name, "baseline": True})

    def probe(self, loaded: LoadedBackend, settings: ModelSettings) -> Probe:
        return Probe(True, "seasonal-naive baseline ready (no checkpoint needed)")
