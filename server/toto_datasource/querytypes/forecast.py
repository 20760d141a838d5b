"""queryType `forecast`: median and band per series, plus history when asked for."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from ..engine.types import ForecastOutput
from ..frames.display import series_color
from ..frames.forecast import forecast_frame, history_frame
from ..frames.model import Frame
from .base import ForecastPlanOnly, SubmitRequest


@dataclass
class PendingForecast:
    request: SubmitRequest
    future: Future[ForecastOutput]

    def frames(self) -> list[Frame]:
        req = self.request
        out = req.wait(self.future)
        grid = req.history.grid
        future_ms = grid.future_ms(req.plan.horizon)
        frames: list[Frame] = []
        for i, series in enumerate(req.history.series):
            color = series_color(i)
            if req.query.include_history and not req.meta.for_alert:
                frames.append(history_frame(series, grid, req.query.from_ms, req.meta, color))
            quantiles = out.quantiles[:, i, :]
            frames.append(forecast_frame(series, future_ms, quantiles, req.query.quantiles, req.meta, color))
        return frames


class ForecastQueryType(ForecastPlanOnly):
    name = "forecast"
    description = "median and band"

    def submit(self, request: SubmitRequest) -> PendingForecast:
        return PendingForecast(request, request.forecast(request.job()))
