"""The interface every query type implements, and the one ForecastJob builder they share.

A query type is a registry entry (querytypes/registry.py): its name, the schema and parsing of its
own query keys (`parse_params`), an optional history plan (anomaly needs the visible range too),
and `submit`, which hands jobs to the forecaster and returns frames to await later, so that all
queries of a request are submitted before any is awaited (batching).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..core.cpu import released
from ..core.errors import BackendError
from ..engine.types import PATCH, Forecaster, ForecastJob, ForecastOutput
from ..frames.forecast import FrameContext
from ..frames.model import Frame
from ..query.model import ForecastQuery, Plan
from ..sources.base import History


def _no_other_models(model: str) -> Forecaster:
    raise BackendError(f"model {model!r} is not available to this query", 400)


@dataclass
class OutputRequest:
    query: ForecastQuery
    history: History
    plan: Plan
    forecaster: Forecaster  # the model the query's `model` names
    ctx: FrameContext
    deadline: float | None  # time.monotonic() value
    # Any other model by its query `model` name ("toto", "seasonal-naive", ...): for query types that
    # compare models (backtest). Raises BackendError when that model is not available (e.g. loading).
    forecaster_for: Callable[[str], Forecaster] = _no_other_models


@dataclass(frozen=True)
class QueryCost:
    """Model work a query will cost, counted in rows × 32-step patches (context + horizon): the unit
    the model's time scales with (22m on a 2-core CPU: ~3,000 patches/s; a GPU: ~100× more)."""

    patches: int
    explain: str  # how the number comes about, for the message
    advice: str  # how to make it smaller


def patches(context: int, horizon: int) -> int:
    return math.ceil((context + horizon) / PATCH)


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

    def cost(self, query: ForecastQuery, plan: Plan, series: int) -> QueryCost:
        """The model work this query will take, checked against the data source's limit."""
        ...

    def submit(self, request: OutputRequest) -> PendingOutput: ...


class ForecastPlanOnly:
    """Defaults for types that forecast each series once over the plan's horizon."""

    schema: Mapping[str, Any] = {}

    def parse_params(self, obj: Mapping[str, Any]) -> Any:
        return None

    def history_plan(self, query: ForecastQuery, plan: Plan) -> Plan:
        return plan

    def cost(self, query: ForecastQuery, plan: Plan, series: int) -> QueryCost:
        each = patches(plan.grid.count, plan.horizon)
        return QueryCost(series * each, f"{series} series × {each} patches of context and horizon",
                         "Use fewer series, a shorter contextLength or a shorter horizon.")


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


def await_output(future: Future[ForecastOutput], timeout: float | None,
                 ctx: FrameContext | None = None) -> ForecastOutput:
    """Wait for a job; past the deadline the job is cancelled so the engine drops it unrun. The
    time the job queued for the model goes into the frames' meta (`queueWaitMs`)."""
    try:
        with released():  # no CPU slot is held while the model works
            out = future.result(timeout=timeout)
        if ctx is not None:
            wait_ms = round(out.queue_wait_s * 1000, 1)
            ctx.custom["queueWaitMs"] = max(wait_ms, ctx.custom.get("queueWaitMs", 0.0))
        return out
    except FutureTimeout:
        future.cancel()
        raise
    except CancelledError:
        raise BackendError("the request was cancelled before its forecast ran", 499) from None
