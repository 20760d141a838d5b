"""The data source's query path, free of protobuf: parse, plan, fetch, submit, await, frames.

Per query the data flows one way: query (parse, plan) → source (history) → engine (submit) →
frames, each stage looked up in its registry (sources, query types, model runtimes), so this
module knows none of them by name. Every failure becomes that query's BackendError; other
queries are unaffected. Health and resources are service/health.py and service/resources.py.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

from .. import metrics
from ..core.errors import BackendError, bad_request
from ..core.registry import Registry
from ..core.settings import DataSourceSettings, ModelSettings, RawSettings, parse_settings
from ..core.types import DataQueryInput, HealthResult, QueryResult
from ..engine.decoding import decode_block_for
from ..engine.registry import ModelRegistry, builtin_runtimes
from ..engine.runtimes import ModelRuntime, settings_hook
from ..engine.types import Forecaster
from ..frames.forecast import FrameContext
from ..frames.model import Notice
from ..query import ForecastQuery, Plan, format_duration, parse_query, plan_query
from ..query.schema import build_schema
from ..querytypes.base import OutputRequest, PendingOutput, QueryType
from ..querytypes.registry import builtin_query_types
from ..sources.base import History, HistoryRequest, HistorySource, SourceProvider
from ..sources.registry import builtin_sources
from .health import check_health_within, model_list
from .instances import InstanceManager


def check_cost(kind: QueryType, query: ForecastQuery, plan: Plan, series: int, limit: int) -> None:
    """Refuse a query whose model work (rows × patches) is over the data source's limit, before it
    runs: a 400 naming the limit and how to shrink the query, instead of a call that runs past any
    deadline and holds every other query up."""
    cost = kind.cost(query, plan, series)
    if cost.patches > limit:
        raise bad_request(
            f"this query needs {cost.patches:,} model patches ({cost.explain}); the data source allows "
            f"{limit:,} per query (maxQueryPatches setting). {cost.advice}"
        )

log = logging.getLogger(__name__)


def parse_data_source_settings(
    raw: RawSettings,
    environ: Mapping[str, str] | None = None,
    sources: Registry[SourceProvider] | None = None,
    runtimes: Registry[ModelRuntime] | None = None,
) -> DataSourceSettings:
    """The generic settings, every source's part and the model runtimes' settings hooks (which
    runtime runs the data source's Toto); raises BackendError(400)."""
    providers = (sources or builtin_sources()).values()
    model = settings_hook((runtimes or builtin_runtimes()).values(), environ)
    return parse_settings(raw, {p.name: p.parse_settings for p in providers}, environ, model=model)


class ForecastDataSource:
    def __init__(
        self,
        registry: ModelRegistry,
        *,
        clock: Callable[[], float] = time.time,
        sources: Registry[SourceProvider] | None = None,
        query_types: Registry[QueryType] | None = None,
        instances: InstanceManager | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.sources = sources or builtin_sources()
        self.query_types = query_types or builtin_query_types()
        self.instances = instances or InstanceManager(self.sources)

    # -- settings -------------------------------------------------------------------------
    def parse_settings(
        self, raw: RawSettings, environ: Mapping[str, str] | None = None
    ) -> DataSourceSettings:
        return parse_data_source_settings(raw, environ, self.sources, self.registry.runtimes)

    def schema(self) -> dict:
        """The query schema of exactly the registered sources and query types."""
        return build_schema(self.sources.values(), self.query_types.values(), self.registry.query_models())

    # -- query data -----------------------------------------------------------------------
    def query_data(
        self,
        settings: DataSourceSettings | BackendError,
        queries: list[DataQueryInput],
        *,
        for_alert: bool = False,
        deadline: float | None = None,
    ) -> dict[str, QueryResult]:
        """Answer every refId. All queries are submitted before any is awaited (batching)."""
        results: dict[str, QueryResult] = {}
        pending: dict[str, tuple[PendingOutput, str, float, str]] = {}
        uses = Counter(q.ref_id for q in queries)
        for q in queries:
            started = time.perf_counter()
            if uses[q.ref_id] > 1:  # a response holds one answer per refId: refuse rather than drop one
                results[q.ref_id] = self._failed(bad_request(
                    f"refId {q.ref_id!r} is used by {uses[q.ref_id]} queries of this request; "
                    "give each query its own refId"), q.query_type)
                continue
            try:
                if isinstance(settings, BackendError):
                    raise settings
                query = self.parse(q, settings)
                submitted = self._submit(query, settings, for_alert, deadline)
                model = self.forecaster_for(query, settings).name  # a timeout names where it waited
                pending[q.ref_id] = (submitted, query.query_type, started, model)
            except BackendError as exc:
                results[q.ref_id] = self._failed(exc, q.query_type or "forecast")
            except Exception as exc:  # a bug must not take down the other queries
                log.exception("query failed", extra={"kv": {"refId": q.ref_id}})
                results[q.ref_id] = self._failed(
                    BackendError(f"internal error: {type(exc).__name__}: {exc}", 500), ""
                )
        for ref_id, (out, qtype, started, model) in pending.items():
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                frames = out.frames(timeout)
                for frame in frames:
                    frame.ref_id = ref_id
                results[ref_id] = QueryResult(frames)
                metrics.QUERIES.labels(qtype, "200").inc()
                metrics.QUERY_SECONDS.labels(qtype).observe(time.perf_counter() - started)
            except FutureTimeout:
                results[ref_id] = self._failed(
                    BackendError(f"the forecast ({model}) did not finish before the request's deadline", 504),
                    qtype,
                )
            except BackendError as exc:
                results[ref_id] = self._failed(exc, qtype)
            except Exception as exc:
                log.exception("query failed", extra={"kv": {"refId": ref_id}})
                results[ref_id] = self._failed(
                    BackendError(f"internal error: {type(exc).__name__}: {exc}", 500), qtype
                )
        return results

    @staticmethod
    def _failed(exc: BackendError, qtype: str) -> QueryResult:
        metrics.QUERIES.labels(qtype or "forecast", str(exc.status)).inc()
        return QueryResult(error=exc)

    def parse(self, q: DataQueryInput, settings: DataSourceSettings) -> ForecastQuery:
        return parse_query(
            q.json,
            ref_id=q.ref_id,
            query_type=q.query_type,
            from_ms=q.from_ms,
            to_ms=q.to_ms,
            interval_ms=q.interval_ms,
            max_data_points=q.max_data_points,
            settings=settings,
            sources={p.name: p for p in self.sources.values()},
            query_types={t.name: t for t in self.query_types.values()},
            models=self.registry.query_models(),
        )

    def source_for(self, query: ForecastQuery, settings: DataSourceSettings) -> HistorySource:
        return self.instances.get(settings).source(query.source_name)

    def plan(self, query: ForecastQuery, source: HistorySource) -> Plan:
        """The time plan; a source whose data dictates the grid (inline points) sets it."""
        grid = source.native_grid(query.source, query.context_length)
        if grid is not None:
            plan = plan_query(query, int(self.clock() * 1000), step_ms=grid.step_ms, end_ms=grid.end_ms)
            plan = replace(plan, grid=grid)
        else:
            plan = plan_query(query, int(self.clock() * 1000))
        return self.query_types.get(query.query_type).history_plan(query, plan)

    def model_settings_for(self, query: ForecastQuery, settings: DataSourceSettings) -> ModelSettings:
        """A query's `model` names a baseline directly, or "toto": the data source's own model."""
        runtime = self.registry.by_query_model(query.model)
        return settings.model if runtime is None else ModelSettings(runtime=runtime.name)

    def forecaster_for(self, query: ForecastQuery, settings: DataSourceSettings) -> Forecaster:
        return self.registry.forecaster(self.model_settings_for(query, settings))

    def _submit(
        self, query: ForecastQuery, settings: DataSourceSettings, for_alert: bool, deadline: float | None
    ) -> PendingOutput:
        forecaster = self.forecaster_for(query, settings)  # fail fast (loading) before fetching
        kind = self.query_types.get(query.query_type)
        source = self.source_for(query, settings)
        plan = self.plan(query, source)
        history = source.fetch(HistoryRequest(plan.grid, query, deadline))
        if not history.series:
            raise bad_request("the source returned no series for this query")
        check_cost(kind, query, plan, len(history.series), settings.max_query_patches)
        custom: dict[str, object] = {"model": forecaster.name, "stepMs": plan.grid.step_ms,
                                     "horizonSteps": plan.horizon}
        if (block := decode_block_for(plan.horizon)) is not None:
            custom["decodeBlockSize"] = block
        ctx = FrameContext(
            executed=self._executed(plan, history, forecaster),
            notices=self._notices(history, forecaster),
            custom=custom,
            for_alert=for_alert,
        )
        metrics.SERIES_FORECAST.labels(forecaster.name.split(":")[0]).inc(len(history.series))
        def other_model(name: str) -> Forecaster:
            return self.forecaster_for(replace(query, model=name), settings)

        return kind.submit(OutputRequest(query, history, plan, forecaster, ctx, deadline, other_model))

    @staticmethod
    def _executed(plan: Plan, history: History, forecaster: Forecaster) -> str:
        return (
            f"{history.executed_query} | model={forecaster.name} step={format_duration(plan.grid.step_ms)} "
            f"context={plan.grid.count} horizon={plan.horizon} steps ({format_duration(plan.horizon_ms)})"
        )

    def _notices(self, history: History, forecaster: Forecaster) -> list[Notice]:
        notices = [Notice("warning", text) for text in history.notices]
        info = forecaster.describe()
        if info.get("baseline"):
            notices.append(Notice("info", f"Forecast by the {forecaster.name} baseline, not by Toto."))
        elif info.get("randomWeights"):
            notices.append(Notice("warning", "This checkpoint has random weights (a test model): "
                                             "its numbers are not a forecast."))
        return notices

    # -- health and resources (service/health.py, service/resources.py) -------------------
    def check_health(self, settings: DataSourceSettings | BackendError,
                     deadline: float | None = None) -> HealthResult:
        """Answered by `deadline` (time.monotonic()), whatever an upstream does (service/health.py)."""
        return check_health_within(self.registry, self.sources, self.instances, settings, deadline)

    def models(self) -> list[dict[str, object]]:
        return model_list(self.registry)

    def close(self) -> None:
        self.instances.close()
