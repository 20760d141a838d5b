"""queryType `recorded`: the forecast at a lead time, one number per series and quantile, for a
Grafana-managed recording rule (and an alert rule) to write as `<metric>:predicted` series.

The rule: **the value answered at evaluation time t is the forecast for t + leadTime.** t is the
query's range end, or now when the range ends later; a rule's range ends at its evaluation time
(`relativeTimeRange.to: 0`) and the rule stamps the value with that same time, so at any moment
`metric:predicted offset 1h` (lead 1h) is what was predicted an hour earlier for that moment.
History ends at the last step at or before t. t + leadTime lies between two forecast steps: the
value is interpolated linearly between them (exact when it falls on a step), for the median and
each band edge alike, so yhat_lower <= yhat <= yhat_upper still holds.

Step and horizon: planned as a forecast whose horizon is the longest leadTime (query.model
`SetsHorizon`), so the step is the one a forecast panel with that horizon uses; the horizon is then
extended to reach t + the longest leadTime. One model call serves every lead time.

`quantiles` picks the band: yhat is the median, yhat_lower the quantile below it and yhat_upper
the one above (default p10 and p90); a list with two quantiles on one side is refused, since one
band is recorded. Frames: frames/recorded.py (one numeric-wide frame; the same numbers for
dashboards, alert rules and recording rules).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.errors import bad_request
from ..core.quantiles import DEFAULT_QUANTILES, quantile_index
from ..engine.types import ForecastOutput
from ..frames.model import Frame
from ..frames.recorded import RecordedValues, lead_label, recorded_frame
from ..query.durations import DURATION_PATTERN, Span, format_duration, parse_duration_ms
from ..query.limits import MAX_HORIZON_STEPS
from ..query.model import ForecastQuery, Plan
from ..query.parse import MAX_STEP_MS
from ..query.plan import NANOSECOND_LIMIT_MS
from .base import ForecastPlanOnly, QueryCost, SubmitRequest

MAX_LEAD_TIMES = 8
MAX_LEAD_MS = MAX_STEP_MS * MAX_HORIZON_STEPS  # as long as `horizon` may be
YHAT, YHAT_LOWER, YHAT_UPPER = "yhat", "yhat_lower", "yhat_upper"
LEAD_TIME = "leadTime"


@dataclass(frozen=True)
class RecordedSpec:
    """The lead times (ascending, distinct) and the recorded forecasts: (ml_forecast, quantile)."""

    lead_ms: tuple[int, ...]
    forecasts: tuple[tuple[str, float], ...]
    horizon_field: str = LEAD_TIME

    @property
    def horizon(self) -> Span:
        """Plan the step as for a forecast this long (query.model.SetsHorizon)."""
        return Span(ms=self.lead_ms[-1])


def parse_lead_times(value: Any) -> tuple[int, ...]:
    """`leadTime` ("1h" or ["15m", "1h"]; the schema checked the form) → distinct ms, ascending."""
    if value is None or value == "" or value == []:
        raise bad_request('leadTime: queryType recorded needs a leadTime, a duration such as "1h" or a '
                          'list such as ["15m", "1h"]; the value recorded at time t is the forecast for '
                          "t + leadTime")
    texts = [value] if isinstance(value, str) else list(value)
    by_label: dict[str, str] = {}
    out = []
    for text in texts:
        ms = parse_duration_ms(text)
        if ms <= 0:
            raise bad_request(f"leadTime: {text!r} is not a lead time; give a duration of at least one step")
        if ms > MAX_LEAD_MS:
            raise bad_request(f"leadTime: {text!r} is longer than any supported forecast")
        label = lead_label(ms)
        if label in by_label:
            raise bad_request(f"leadTime: {by_label[label]!r} and {text!r} are the same lead time ({label})")
        by_label[label] = text
        out.append(ms)
    return tuple(sorted(out))


def parse_forecasts(value: Any) -> tuple[tuple[str, float], ...]:
    """`quantiles` → yhat (median), yhat_lower (the one below), yhat_upper (the one above)."""
    levels = sorted({round(float(q), 1) for q in (value or DEFAULT_QUANTILES)})
    lower = [q for q in levels if q < 0.5]
    upper = [q for q in levels if q > 0.5]
    if len(lower) > 1 or len(upper) > 1:
        raise bad_request(
            f"quantiles: {levels} has more than one quantile on a side of the median; a recorded "
            "forecast records one band (yhat_lower, yhat_upper): give at most one quantile below 0.5 "
            "and one above, e.g. [0.1, 0.9]")
    return ((YHAT, 0.5), *((YHAT_LOWER, q) for q in lower), *((YHAT_UPPER, q) for q in upper))


def evaluation_time(plan: Plan) -> int:
    """t: the plan's evaluation time, never before the last history point (inline data may end
    after the range does)."""
    at = plan.at_ms if plan.at_ms is not None else plan.grid.end_ms
    return max(at, plan.grid.end_ms)


def values_at(quantiles: np.ndarray, end_ms: int, step_ms: int, at_ms: int,
              spec: RecordedSpec) -> np.ndarray:
    """(9, series, H) forecast from the history ending at end_ms → (series, leads, forecasts): each
    value at at_ms + lead, linear between the forecast steps around it (step i is end + i·step)."""
    out = np.empty((quantiles.shape[1], len(spec.lead_ms), len(spec.forecasts)))
    for j, lead in enumerate(spec.lead_ms):
        steps, rem = divmod(at_ms + lead - end_ms, step_ms)
        for k, (_, q) in enumerate(spec.forecasts):
            row = quantiles[quantile_index(q)]
            if rem == 0:
                out[:, j, k] = row[:, steps - 1]
            else:
                w = rem / step_ms
                out[:, j, k] = (1 - w) * row[:, steps - 1] + w * row[:, steps]
    return out


@dataclass
class PendingRecorded:
    request: SubmitRequest
    spec: RecordedSpec
    future: Future[ForecastOutput]

    def frames(self) -> list[Frame]:
        req = self.request
        out = req.wait(self.future)
        grid = req.history.grid
        at = evaluation_time(req.plan)
        values = values_at(out.quantiles, grid.end_ms, grid.step_ms, at, self.spec)
        recorded = RecordedValues(values, self.spec.lead_ms, self.spec.forecasts, at)
        return [recorded_frame(req.history.series, recorded, req.meta)]


class RecordedQueryType(ForecastPlanOnly):
    name = "recorded"
    description = "the forecast at a lead time, one number per series and quantile: for recording rules"
    schema: Mapping[str, Any] = {
        LEAD_TIME: {
            "oneOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "array", "minItems": 1, "maxItems": MAX_LEAD_TIMES, "uniqueItems": True,
                 "items": {"type": "string", "pattern": DURATION_PATTERN}},
            ],
            "description": "How far ahead to record (queryType=recorded): a duration such as \"1h\", or up "
                           f"to {MAX_LEAD_TIMES} of them. The value answered at time t is the forecast for "
                           "t + leadTime, labelled ml_lead_time; at least one step.",
        },
    }

    def parse_params(self, obj: Mapping[str, Any]) -> RecordedSpec:
        return RecordedSpec(parse_lead_times(obj.get(LEAD_TIME)), parse_forecasts(obj.get("quantiles")))

    def history_plan(self, query: ForecastQuery, plan: Plan) -> Plan:
        """The forecast plan, its horizon reaching t + the longest lead time."""
        spec = query.params
        assert isinstance(spec, RecordedSpec)
        grid, step = plan.grid, plan.grid.step_ms
        shortest, longest = lead_label(spec.lead_ms[0]), lead_label(spec.lead_ms[-1])
        if spec.lead_ms[0] < step:
            raise bad_request(f"leadTime: {shortest} is shorter than the step ({format_duration(step)}); "
                              "give a leadTime of at least one step, or a finer step")
        horizon = math.ceil((evaluation_time(plan) + spec.lead_ms[-1] - grid.end_ms) / step)
        if horizon > MAX_HORIZON_STEPS or grid.end_ms + horizon * step > NANOSECOND_LIMIT_MS:
            raise bad_request(
                f"leadTime: {longest} after the evaluation time is {horizon} steps of "
                f"{format_duration(step)} past the last history point; a forecast reaches at most "
                f"{MAX_HORIZON_STEPS} steps: give a shorter leadTime or a coarser step")
        return replace(plan, horizon=horizon)

    def cost(self, query: ForecastQuery, plan: Plan, series: int) -> QueryCost:
        base = super().cost(query, plan, series)
        return replace(base, advice="Use fewer series, a shorter contextLength or a shorter leadTime.")

    def submit(self, request: SubmitRequest) -> PendingRecorded:
        spec = request.query.params
        assert isinstance(spec, RecordedSpec)
        return PendingRecorded(request, spec, request.forecast(request.job()))

