"""queryType `threshold`: time to breach, breach probability and forecast peak per series.

The recommended alert query. For a threshold T, a direction (above/below) and a watched
quantile q (`thresholdQuantile`, default 0.9 above and 0.1 below), each source series gets:

- `time_to_breach`: seconds from the last history point until the q-forecast is first beyond T
  ((i + 1) × step for the first such forecast step i). Sentinel when it never is within the
  horizon: horizon × step + one step, a finite positive number larger than any real answer, so
  `WHEN time_to_breach IS BELOW 900` does not fire for it.
- `will_breach`: 1 when the q-forecast crosses within the horizon, else 0.
- `breach_probability`: max over forecast steps of P(X_t beyond T), from the nine quantiles
  interpolated linearly with exponential tails (outputs/crossing.py has the exact definition).
- `forecast_peak`: the q-forecast's maximum (above) or minimum (below) over the horizon.

Frames: frames/alerting.py (numeric-wide; only `time_to_breach` for alert requests).

Capacity queries: a horizon given as a duration coarsens the step (query.choose_step_ms: the
context covers at least 4 horizons, rounded up to a conventional step), e.g. 14d with the default
2048-point context gives 1 h steps and ~85 days of history. Horizons longer than
LONG_HORIZON_STEPS use Toto's block decoding (LONG_HORIZON_BLOCK steps per block); the engine
runs one inference thread per model, so block decoding never runs concurrently on a model.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ..engine.types import QUANTILE_LEVELS, ForecastJob, ForecastOutput
from ..errors import bad_request
from ..frames.alerting import ThresholdRow, threshold_frames
from ..frames.model import Frame
from ..query import ThresholdSpec
from .base import OutputRequest
from .crossing import breach_probability, first_crossings, peak, sentinel_seconds, time_to_breach_seconds
from .forecast import await_output

LONG_HORIZON_STEPS = 1024
LONG_HORIZON_BLOCK = 768  # a multiple of Toto's 32-step patch


def decode_block_for(horizon: int) -> int | None:
    """Block decoding for long horizons, single-pass decoding otherwise."""
    return LONG_HORIZON_BLOCK if horizon > LONG_HORIZON_STEPS else None


def validate_spec(spec: ThresholdSpec | None) -> ThresholdSpec:
    if spec is None:
        raise bad_request("threshold: queryType threshold needs a threshold value (a number)")
    if not np.isfinite(spec.value):
        raise bad_request(f"threshold: {spec.value} is not a finite number")
    if spec.direction not in ("above", "below"):
        raise bad_request(f"direction: {spec.direction!r} is not one of above, below")
    if round(spec.quantile, 1) not in QUANTILE_LEVELS or abs(round(spec.quantile, 1) - spec.quantile) > 1e-9:
        raise bad_request(f"thresholdQuantile: {spec.quantile} is not one of the model's quantiles "
                          f"{', '.join(f'{q:g}' for q in QUANTILE_LEVELS)}")
    return spec


def threshold_rows(quantiles: np.ndarray, spec: ThresholdSpec, future_ms: np.ndarray,
                   step_ms: int) -> list[ThresholdRow]:
    """(9, n_series, H) quantiles → one ThresholdRow per series."""
    horizon = quantiles.shape[-1]
    watched = quantiles[QUANTILE_LEVELS.index(round(spec.quantile, 1))]
    index = first_crossings(watched, spec.value, spec.direction)
    seconds = time_to_breach_seconds(index, step_ms, horizon)
    probability = breach_probability(quantiles, spec.value, spec.direction)
    peaks = peak(watched, spec.direction)
    return [
        ThresholdRow(
            time_to_breach_s=float(seconds[i]),
            will_breach=bool(index[i] >= 0),
            probability=float(probability[i]),
            peak=float(peaks[i]),
            breach_ms=int(future_ms[index[i]]) if index[i] >= 0 else None,
        )
        for i in range(watched.shape[0])
    ]


@dataclass
class PendingThreshold:
    request: OutputRequest
    spec: ThresholdSpec
    future: Future[ForecastOutput]

    def frames(self, timeout: float | None) -> list[Frame]:
        out = await_output(self.future, timeout)
        req = self.request
        grid = req.history.grid
        horizon = req.plan.horizon
        rows = threshold_rows(out.quantiles, self.spec, grid.future_ms(horizon), grid.step_ms)
        return threshold_frames(
            req.history.series,
            rows,
            self.spec,
            step_ms=grid.step_ms,
            horizon=horizon,
            sentinel_s=sentinel_seconds(grid.step_ms, horizon),
            ctx=req.ctx,
        )


class ThresholdKind:
    def submit(self, request: OutputRequest) -> PendingThreshold:
        spec = validate_spec(request.query.threshold)
        history = request.history
        horizon = request.plan.horizon
        job = ForecastJob(
            context=np.stack([s.values for s in history.series]),
            horizon=horizon,
            joint=request.query.joint,
            decode_block_size=decode_block_for(horizon),
            deadline=request.deadline,
            step_ms=history.grid.step_ms,
        )
        if job.decode_block_size:
            request.ctx.custom = {**request.ctx.custom, "decodeBlockSize": job.decode_block_size}
        return PendingThreshold(request, spec, request.forecaster.submit(job))
