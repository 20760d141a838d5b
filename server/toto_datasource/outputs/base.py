"""The interface every query type implements, and the one ForecastJob builder they share.

A query type is a registry entry (outputs/registry.py): its name, the schema and parsing of its
own query keys (`parse_params`), an optional history plan (anomaly needs the visible range too),
and `submit`, which hands jobs to the forecaster and returns frames to await later, so that all
queries of a request are submitted before any is awaited (batching).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..backend.errors import BackendError
from ..engine.types import Forecaster, ForecastJob, ForecastOutput
from ..frames.forecast import FrameContext
from ..frames.model import Frame
from ..query.model import ForecastQuery, Plan
from ..sources.base import History


@dataclass
class OutputRequest:
    query: ForecastQuery
    history: History
    plan: Plan
    forecaster: Forecaster
    ctx: FrameContext
    deadline: float | None  # time.monotonic() value


class PendingOutput(Protocol):
    def frames(self, timeout: float | None) -> list[Frame]: ...


class QueryType(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def schema(self) -> Mapping[str, Any]:
        """JSON schema of this query type's own keys (merged into query.schema.json)."""
        ...

    def parse_params(self, obj: Mapping[str, Any]) -> Any:
        """This type's parameters from the query JSON (None when it has none); raise 400s."""
        ...

    def history_plan(self, query: ForecastQuery, plan: Plan) -> Plan:
        """The history this type needs; most need exactly the forecast plan's."""
        ...

    def submit(self, request: OutputRequest) -> PendingOutput: ...


class ForecastPlanOnly:
    """Default `history_plan` and `parse_params` for types that need nothing special."""

    schema: Mapping[str, Any] = {}

    def parse_params(self, obj: Mapping[str, Any]) -> Any:
        return None

    def history_plan(self, query: ForecastQuery, plan: Plan) -> Plan:
        return plan


def forecast_job(request: OutputRequest, context: np.ndarray | None = None, horizon: int | None = None
                 ) -> ForecastJob:
    """The job for this request's series (or the given context), its horizon, joint mode and deadline."""
    history = request.history
    return ForecastJob(
        context=np.stack([s.values for s in history.series]) if context is None else context,
        horizon=request.plan.horizon if horizon is None else horizon,
        joint=request.query.joint,
        deadline=request.deadline,
        step_ms=history.grid.step_ms,
    )


def await_output(future: Future[ForecastOutput], timeout: float | None) -> ForecastOutput:
    """Wait for a job; past the deadline the job is cancelled so the engine drops it unrun."""
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        future.cancel()
        raise
    except CancelledError:
        raise BackendError("the request was cancelled before its forecast ran", 499) from None
