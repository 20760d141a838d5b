"""queryType `threshold`: time to breach, breach probability and forecast peak per series.

The recommended alert query. For a threshold T, a direction (above/below) and a watched
quantile q (`thresholdQuantile`, default 0.9 above and 0.1 below), each source series gets:

- `time_to_breach`: seconds from the last history point until the q-forecast is first beyond T
  ((i + 1) × step for the first such forecast step i). Sentinel when it never is within the
  horizon: horizon × step + one step, a finite positive number larger than any real answer, so
  `WHEN time_to_breach IS BELOW 900` does not fire for it.
- `will_breach`: 1 when the q-forecast crosses within the horizon, else 0.
- `breach_probability`: max over forecast steps of P(X_t beyond T), from the nine quantiles
  interpolated linearly with exponential tails (querytypes/crossing.py has the exact definition).
- `forecast_peak`: the q-forecast's maximum (above) or minimum (below) over the horizon.

Frames: frames/alerting.py (numeric-wide; only `time_to_breach` for alert requests).

Capacity queries: a horizon given as a duration coarsens the step (query.plan.choose_step_ms: the
context covers at least 4 horizons, rounded up to a conventional step), e.g. 14d with the default
2048-point context gives 1 h steps and ~85 days of history. How long horizons are decoded is the
engine's choice (engine/decoding.py), the same as for a forecast panel on the same series.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import bad_request
from ..core.quantiles import QUANTILE_LEVELS, quantile_index, quantile_name
from ..engine.types import ForecastOutput
from ..frames.alerting import ThresholdRow, ThresholdSpec, threshold_frames
from ..frames.annotations import Annotation, annotation_frame, clock
from ..frames.model import Frame
from ..query.durations import format_duration
from .base import ForecastPlanOnly, SubmitRequest
from .crossing import breach_probability, first_crossings, peak, sentinel_seconds, time_to_breach_seconds

DEFAULT_QUANTILE = {"above": 0.9, "below": 0.1}


def parse_threshold(obj: Mapping[str, Any]) -> ThresholdSpec:
    """The threshold rule from the query JSON (types and enums are the schema's job)."""
    if "threshold" not in obj:
        raise bad_request("threshold: queryType threshold needs a threshold value (a number)")
    value = float(obj["threshold"])
    if not np.isfinite(value):
        raise bad_request(f"threshold: {obj['threshold']} is not a finite number")
    direction = obj.get("direction", "above")
    quantile = float(obj.get("thresholdQuantile", DEFAULT_QUANTILE[direction]))
    return ThresholdSpec(value, direction, quantile, bool(obj.get("annotation", False)))


def threshold_rows(quantiles: np.ndarray, spec: ThresholdSpec, future_ms: np.ndarray,
                   step_ms: int) -> list[ThresholdRow]:
    """(9, n_series, H) quantiles → one ThresholdRow per series."""
    horizon = quantiles.shape[-1]
    watched = quantiles[quantile_index(spec.quantile)]
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


def breach_annotations(req: SubmitRequest, quantiles: np.ndarray, spec: ThresholdSpec,
                       rows: list[ThresholdRow]) -> list[Annotation]:
    """A region per series from the first forecast step beyond the threshold to the last step of
    that run beyond it, plus one mark where the forecast starts."""
    grid = req.history.grid
    future = grid.future_ms(req.plan.horizon)
    watched = quantiles[quantile_index(spec.quantile)]
    qname = quantile_name(spec.quantile)
    verb = "rises above" if spec.direction == "above" else "falls below"
    out = [Annotation(grid.end_ms, grid.end_ms, f"Forecast starts ({req.forecaster.name}, "
                      f"{format_duration(req.plan.horizon_ms)} ahead)", ("forecast-start",))]
    for i, (series, row) in enumerate(zip(req.history.series, rows, strict=True)):
        if row.breach_ms is None:
            continue
        beyond = watched[i] >= spec.value if spec.direction == "above" else watched[i] <= spec.value
        first = int(np.argmax(beyond))
        after = beyond[first:]
        last = first + (len(after) if after.all() else int(np.argmin(after))) - 1
        text = (f"{series.name} {qname} {verb} {spec.value:g} at {clock(row.breach_ms)}, in "
                f"{format_duration(row.time_to_breach_s * 1000)}, P = {row.probability:.2f}")
        out.append(Annotation(int(future[first]), int(future[last]), text, ("breach", series.name)))
    return out


@dataclass
class PendingThreshold:
    request: SubmitRequest
    spec: ThresholdSpec
    future: Future[ForecastOutput]

    def frames(self) -> list[Frame]:
        req = self.request
        out = req.wait(self.future)
        grid = req.history.grid
        horizon = req.plan.horizon
        rows = threshold_rows(out.quantiles, self.spec, grid.future_ms(horizon), grid.step_ms)
        if self.spec.annotations:
            return [annotation_frame(breach_annotations(req, out.quantiles, self.spec, rows), req.meta)]
        return threshold_frames(
            req.history.series,
            rows,
            self.spec,
            step_ms=grid.step_ms,
            horizon=horizon,
            sentinel_s=sentinel_seconds(grid.step_ms, horizon),
            meta=req.meta,
        )


class ThresholdQueryType(ForecastPlanOnly):
    name = "threshold"
    description = "time to breach, probability, peak: for alert rules"
    schema: Mapping[str, Any] = {
        "threshold": {"type": "number", "description": "Threshold value (queryType=threshold)."},
        "direction": {"type": "string", "enum": ["above", "below"], "default": "above",
                      "description": "Breach when the forecast goes above or below the threshold "
                                     "(queryType=threshold)."},
        "annotation": {"type": "boolean", "default": False,
                       "description": "Answer as dashboard annotations: the predicted breach window of each "
                                      "series and the forecast start, instead of the alerting frame "
                                      "(queryType=threshold; the editor's annotation support sets it)."},
        "thresholdQuantile": {
            "type": "number", "enum": list(QUANTILE_LEVELS),
            "description": "Quantile watched for the breach; default 0.9 for above, 0.1 for below "
                           "(queryType=threshold).",
        },
    }

    def parse_params(self, obj: Mapping[str, Any]) -> ThresholdSpec:
        return parse_threshold(obj)

    def submit(self, request: SubmitRequest) -> PendingThreshold:
        spec = request.query.params
        assert isinstance(spec, ThresholdSpec)
        return PendingThreshold(request, spec, request.forecast(request.job()))
