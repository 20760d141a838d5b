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
from collections.abc import Callable
from dataclasses import replace

from .. import metrics
from ..core.config import ProcessConfig
from ..core.errors import BackendError, bad_request
from ..core.registry import Registry
from ..core.request import RequestContext
from ..core.settings import DataSourceSettings, ModelSettings, RawSettings, parse_settings
from ..core.types import DataQueryInput, HealthResult, QueryResult
from ..engine.decoding import decode_block_for
from ..engine.registry import ModelRegistry, builtin_runtimes
from ..engine.runtimes import ModelRuntime, settings_adjuster
from ..engine.types import Forecaster
from ..frames.display import distinct_names
from ..frames.forecast import QueryMeta
from ..frames.model import Notice
from ..query import ForecastQuery, Plan, format_duration, parse_query, plan_query
from ..query.schema import build_schema
from ..querytypes.base import PendingFrames, QueryType, SubmitRequest
from ..querytypes.registry import builtin_query_types
from ..sources.base import History, HistoryRequest, HistorySource, SourceProvider
from ..sources.registry import builtin_sources
from .health import check_health_within, model_list
from .instances import DataSourceInstance, InstanceManager


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
    config: ProcessConfig | None = None,
    sources: Registry[SourceProvider] | None = None,
    runtimes: Registry[ModelRuntime] | None = None,
) -> DataSourceSettings:
    """The generic settings, every source's part and the model runtimes' adjustments (which
    runtime runs the data source's Toto), under the admin's pins in `config` (none by default);
    raises BackendError(400)."""
    config = config or ProcessConfig()
    providers = (sources or builtin_sources(config)).values()
    model = settings_adjuster((runtimes or builtin_runtimes()).values(), config)
    return parse_settings(raw, config, {p.name: p.parse_settings for p in providers}, model=model)


class ForecastDataSource:
    def __init__(
        self,
        registry: ModelRegistry,
        *,
        clock: Callable[[], float] = time.time,
        sources: Registry[SourceProvider] | None = None,
        query_types: Registry[QueryType] | None = None,
    ) -> None:
        self.registry = registry
        self.config = registry.config
        self.clock = clock
        self.sources = sources or builtin_sources(self.config)
        self.query_types = query_types or builtin_query_types()
        self.instances = InstanceManager(self.sources, registry, self.parse_settings)

    # -- settings -------------------------------------------------------------------------
    def parse_settings(self, raw: RawSettings) -> DataSourceSettings:
        return parse_data_source_settings(raw, self.config, self.sources, self.registry.runtimes)

    def instance(self, settings: DataSourceSettings) -> DataSourceInstance:
        """The instance of already typed settings (in-process callers; the plugin edge gets
        instances by data source and settings version from `instances`)."""
        return self.instances.for_settings(settings)

    def schema(self) -> dict:
        """The query schema of exactly the registered sources and query types."""
        return build_schema(self.sources.values(), self.query_types.values(), self.registry.query_models())

    # -- query data -----------------------------------------------------------------------
    def query_data(
        self, instance: DataSourceInstance, queries: list[DataQueryInput], ctx: RequestContext
    ) -> dict[str, QueryResult]:
        """Answer every refId. All queries are submitted before any is awaited (batching)."""
        results: dict[str, QueryResult] = {}
        pending: dict[str, tuple[PendingFrames, str, float]] = {}
        uses = Counter(q.ref_id for q in queries)
        for q in queries:
            started = time.perf_counter()
            if uses[q.ref_id] > 1:  # a response holds one answer per refId: refuse rather than drop one
                results[q.ref_id] = self._failed(bad_request(
                    f"refId {q.ref_id!r} is used by {uses[q.ref_id]} queries of this request; "
                    "give each query its own refId"), q.query_type)
                continue
            try:
                query = self.parse(q, instance.valid_settings())
                pending[q.ref_id] = (self._submit(query, instance, ctx), query.query_type, started)
            except BackendError as exc:
                results[q.ref_id] = self._failed(exc, q.query_type or "forecast")
            except Exception as exc:  # a bug must not take down the other queries
                log.exception("query failed", extra={"kv": {"refId": q.ref_id}})
                results[q.ref_id] = self._failed(
                    BackendError(f"internal error: {type(exc).__name__}: {exc}", 500), ""
                )
        for ref_id, (out, qtype, started) in pending.items():
            try:
                frames = out.frames()
                for frame in frames:
                    frame.ref_id = ref_id
                results[ref_id] = QueryResult(frames)
                metrics.QUERIES.labels(qtype, "200").inc()
                metrics.QUERY_SECONDS.labels(qtype).observe(time.perf_counter() - started)
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

    def plan(self, query: ForecastQuery, source: HistorySource) -> Plan:
        """The time plan; a source whose data dictates the grid (inline points) sets it."""
        grid = source.native_grid(query.source, query.context_length)
        if grid is not None:
            plan = plan_query(query, int(self.clock() * 1000), step_ms=grid.step_ms, end_ms=grid.end_ms)
            plan = replace(plan, grid=grid)
        else:
            plan = plan_query(query, int(self.clock() * 1000))
        return self.query_types.get(query.query_type).history_plan(query, plan)

    def forecaster_for(self, query_model: str, settings: DataSourceSettings) -> Forecaster:
        """A query's `model` names a baseline directly, or "toto": the data source's own model."""
        runtime = self.registry.by_query_model(query_model)
        model = settings.model if runtime is None else ModelSettings(runtime=runtime.name)
        return self.registry.forecaster(model)

    def _submit(self, query: ForecastQuery, instance: DataSourceInstance, ctx: RequestContext
                ) -> PendingFrames:
        settings = instance.valid_settings()
        forecaster = self.forecaster_for(query.model, settings)  # fail fast (loading) before fetching
        kind = self.query_types.get(query.query_type)
        source = instance.source(query.source_name)
        plan = self.plan(query, source)
        history = source.fetch(HistoryRequest(plan.grid, query, ctx))
        if not history.series:
            raise bad_request("the source returned no series for this query")
        history = replace(history, series=distinct_names(history.series))
        check_cost(kind, query, plan, len(history.series), settings.max_query_patches)
        custom: dict[str, object] = {"model": forecaster.name, "stepMs": plan.grid.step_ms,
                                     "horizonSteps": plan.horizon}
        if (block := decode_block_for(plan.horizon)) is not None:
            custom["decodeBlockSize"] = block
        meta = QueryMeta(
            executed=self._executed(plan, history, forecaster),
            notices=self._notices(history, forecaster),
            custom=custom,
            for_alert=ctx.from_alert,
        )
        metrics.SERIES_FORECAST.labels(forecaster.name.split(":")[0]).inc(len(history.series))
        return kind.submit(SubmitRequest(query, history, plan, forecaster, meta, ctx,
                                         lambda model: self.forecaster_for(model, settings)))

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
    def check_health(self, instance: DataSourceInstance, ctx: RequestContext) -> HealthResult:
        """Answered by the check's deadline, whatever an upstream does (service/health.py)."""
        return check_health_within(self.registry, self.sources, instance, ctx)

    def models(self) -> list[dict[str, object]]:
        return model_list(self.registry)

    def close(self) -> None:
        self.instances.close()
        self.registry.close()
