"""The interface every query type implements, and the request they submit through.

A query type is a registry entry (querytypes/registry.py): its name, the schema and parsing of its
own query keys (`parse_params`), an optional history plan (anomaly needs the visible range too),
and `submit`, which hands jobs to the engine (`SubmitRequest.forecast`) and returns frames to
await later, so that all queries of a request are submitted before any is awaited (batching).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..core.errors import BackendError
from ..core.request import RequestContext
from ..engine.types import PATCH, Forecaster, ForecastJob, ForecastOutput
from ..frames.forecast import QueryMeta
from ..frames.model import Frame
from ..query.model import ForecastQuery, Plan
from ..sources.base import History


def _no_other_models(model: str) -> Forecaster:
    raise BackendError(f"model {model!r} is not available to this query", 400)


@dataclass
class SubmitRequest:
    """One query, its history and plan, ready for its query type to submit.

    The request context reaches the engine only through `forecast()` and `wait()`: every job is
    cancelled with the request, carries its deadline, and every wait gives the CPU slot back and
    ends at the deadline with a 504 naming the model."""

    query: ForecastQuery
    history: History
    plan: Plan
    forecaster: Forecaster  # the model the query's `model` names
    meta: QueryMeta
    ctx: RequestContext
    # Any other model by its query `model` name ("toto", "seasonal-naive", ...): for query types that
    # compare models (backtest). Raises BackendError when that model is not available (e.g. loading).
    forecaster_for: Callable[[str], Forecaster] = _no_other_models

    def job(self, context: np.ndarray | None = None, horizon: int | None = None) -> ForecastJob:
        """The job for this request's series (or the given context), its horizon, joint mode and
        the request's deadline."""
        return ForecastJob(
            context=np.stack([s.values for s in self.history.series]) if context is None else context,
            horizon=self.plan.horizon if horizon is None else horizon,
            joint=self.query.joint,
            deadline=self.ctx.deadline,
            step_ms=self.history.grid.step_ms,
        )

    def forecast(self, job: ForecastJob, forecaster: Forecaster | None = None) -> Future[ForecastOutput]:
        """Submit `job` to the query's model (or `forecaster`), cancelled with the request."""
        return self.ctx.track((forecaster or self.forecaster).submit(job))

    def wait(self, future: Future[ForecastOutput], forecaster: Forecaster | None = None) -> ForecastOutput:
        """The job's output, waited for without the CPU slot until the request's deadline; past it
        the job is cancelled (the engine drops it unrun) and the query is a 504. The time the job
        queued for the model goes into the frames' meta (`queueWaitMs`)."""
        try:
            with self.ctx.released():
                out = future.result(timeout=self.ctx.left())
        except FutureTimeout:
            future.cancel()
            name = (forecaster or self.forecaster).name
            raise BackendError(f"the forecast ({name}) did not finish before the request's deadline",
                               504) from None
        except CancelledError:
            raise BackendError("the request was cancelled before its forecast ran", 499) from None
        wait_ms = round(out.queue_wait_s * 1000, 1)
        self.meta.custom["queueWaitMs"] = max(wait_ms, self.meta.custom.get("queueWaitMs", 0.0))
        return out


@dataclass(frozen=True)
class QueryCost:
    """Model work a query will cost, counted in rows × 32-step patches (context + horizon): the unit
    the model's time scales with (22m on a 2-core CPU: ~3,000 patches/s; a GPU: ~100× more)."""

    patches: int
    explain: str  # how the number comes about, for the message
    advice: str  # how to make it smaller


def patches(context: int, horizon: int) -> int:
    return math.ceil((context + horizon) / PATCH)


class PendingFrames(Protocol):
    def frames(self) -> list[Frame]:
        """The query's frames, once its forecasts are done (`SubmitRequest.wait`)."""
        ...


class QueryType(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def preview_summary(self) -> bool:
        """True when the editor's preview runs the query for its one-line `summary` (backtest)."""
        ...

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

    def submit(self, request: SubmitRequest) -> PendingFrames: ...


class ForecastPlanOnly:
    """Defaults for types that forecast each series once over the plan's horizon."""

    schema: Mapping[str, Any] = {}
    preview_summary = False

    def parse_params(self, obj: Mapping[str, Any]) -> Any:
        return None

    def history_plan(self, query: ForecastQuery, plan: Plan) -> Plan:
        return plan

    def cost(self, query: ForecastQuery, plan: Plan, series: int) -> QueryCost:
        each = patches(plan.grid.count, plan.horizon)
        return QueryCost(series * each, f"{series} series × {each} patches of context and horizon",
                         "Use fewer series, a shorter contextLength or a shorter horizon.")
