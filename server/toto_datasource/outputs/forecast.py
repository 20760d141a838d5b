"""queryType `forecast`: median and band per series, plus history when asked for."""

from __future__ import annotations

from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np

from ..engine.types import ForecastJob, ForecastOutput
from ..errors import QueryError
from ..frames.forecast import forecast_frame, history_frame
from ..frames.model import Frame
from .base import OutputRequest


def submit_job(request: OutputRequest) -> Future[ForecastOutput]:
    history = request.history
    job = ForecastJob(
        context=np.stack([s.values for s in history.series]),
        horizon=request.plan.horizon,
        joint=request.query.joint,
        deadline=request.deadline,
        step_ms=history.grid.step_ms,
    )
    return request.forecaster.submit(job)


def await_output(future: Future[ForecastOutput], timeout: float | None) -> ForecastOutput:
    """Wait for a job; past the deadline the job is cancelled so the engine drops it unrun."""
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        future.cancel()
        raise
    except CancelledError:
        raise QueryError("the request was cancelled before its forecast ran", 499) from None


@dataclass
class PendingForecast:
    request: OutputRequest
    future: Future[ForecastOutput]

    def frames(self, timeout: float | None) -> list[Frame]:
        out = await_output(self.future, timeout)
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


class ForecastKind:
    def submit(self, request: OutputRequest) -> PendingForecast:
        return PendingForecast(request, submit_job(request))
