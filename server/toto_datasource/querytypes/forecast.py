"""queryType `forecast`: median and band per series, plus history when asked for."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from ..engine.types import ForecastOutput
from ..frames.forecast import forecast_frame, history_frame
from ..frames.model import Frame
from .base import ForecastPlanOnly, OutputRequest, await_output, forecast_job


@dataclass
class PendingForecast:
    request: OutputRequest
    future: Future[ForecastOutput]

    def frames(self, timeout: float | None) -> list[Frame]:
        out = await_output(self.future, timeout, self.request.ctx)
        req = self.request
        grid = req.history.grid
        future_ms = grid.future_ms(req.plan.horizon)
        frames: list[Frame] = []
        for i, series in enumerate(req.history.series):
            if req.query.include_history and not req.ctx.for_alert:
                frames.append(history_frame(series, grid, req.query.from_ms, req.ctx))
            frames.append(
                forecast_frame(series, future_ms, out.quantiles[:, i, :], req.query.quantiles, req.ctx)
            )
        return frames


class ForecastQueryType(ForecastPlanOnly):
    name = "forecast"
    description = "median and band"

    def submit(self, request: OutputRequest) -> PendingForecast:
        return PendingForecast(request, request.forecaster.submit(forecast_job(request)))
