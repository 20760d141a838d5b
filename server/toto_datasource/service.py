"""The data source's capabilities, free of protobuf: query data, check health, call resource.

Per query the data flows one way: query (parse, plan) → source (history) → engine (submit)
→ frames. Every failure becomes that query's QueryError; other queries are unaffected.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any

from . import metrics
from .engine.registry import ModelRegistry
from .engine.types import Forecaster, ForecastJob
from .errors import QueryError, bad_request
from .frames.forecast import FrameContext
from .frames.model import Frame, Notice
from .outputs.anomaly import AnomalyKind
from .outputs.base import OutputKind, OutputRequest, PendingOutput
from .outputs.forecast import ForecastKind
from .outputs.threshold import ThresholdKind
from .query import DemoSpec, ForecastQuery, InlineSpec, Plan, format_duration, parse_query, plan_query
from .settings import DataSourceSettings
from .sources.base import History, HistoryRequest, HistorySource
from .sources.demo import DemoSource
from .sources.inline import InlineSource
from .sources.prometheus import PrometheusSource
from .sources.prometheus_factory import prometheus_factory as default_prometheus_factory

log = logging.getLogger(__name__)


@dataclass
class DataQueryInput:
    ref_id: str
    query_type: str
    json: bytes
    from_ms: int
    to_ms: int
    interval_ms: float = 0
    max_data_points: int = 0


@dataclass
class QueryResult:
    frames: list[Frame] = field(default_factory=list)
    error: QueryError | None = None


@dataclass
class HealthResult:
    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResourceResponse:
    status: int
    body: Any
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


def is_alert_request(headers: Mapping[str, str]) -> bool:
    """Grafana's alerting sets FromAlert=true; forwarded headers may carry an http_ prefix."""
    for key, value in headers.items():
        name = key.lower().removeprefix("http_")
        if name == "fromalert" and value.lower() == "true":
            return True
    return False


class ForecastDataSource:
    def __init__(
        self,
        registry: ModelRegistry,
        *,
        clock: Callable[[], float] = time.time,
        output_kinds: Mapping[str, OutputKind] | None = None,
        prometheus_factory: Callable[[DataSourceSettings], PrometheusSource] | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.kinds: dict[str, OutputKind] = {
            "forecast": ForecastKind(),
            "threshold": ThresholdKind(),
            "anomaly": AnomalyKind(),
            **(output_kinds or {}),
        }
        self._prometheus_factory = prometheus_factory or default_prometheus_factory()

    # -- query data -----------------------------------------------------------------------
    def query_data(
        self,
        settings: DataSourceSettings | QueryError,
        headers: Mapping[str, str],
        queries: list[DataQueryInput],
        deadline: float | None = None,
    ) -> dict[str, QueryResult]:
        """Answer every refId. All queries are submitted before any is awaited (batching)."""
        for_alert = is_alert_request(headers)
        results: dict[str, QueryResult] = {}
        pending: dict[str, tuple[PendingOutput, str, float]] = {}
        for q in queries:
            started = time.perf_counter()
            try:
                if isinstance(settings, QueryError):
                    raise settings
                query = self._parse(q, settings)
                pending[q.ref_id] = (
                    self._submit(query, settings, for_alert, deadline), query.query_type, started
                )
            except QueryError as exc:
                results[q.ref_id] = self._failed(exc, q.query_type or "forecast")
            except Exception as exc:  # a bug must not take down the other queries
                log.exception("query failed", extra={"kv": {"refId": q.ref_id}})
                results[q.ref_id] = self._failed(
                    QueryError(f"internal error: {type(exc).__name__}: {exc}", 500), ""
                )
        for ref_id, (out, qtype, started) in pending.items():
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
                    QueryError("the forecast did not finish before the request's deadline", 504), qtype
                )
            except QueryError as exc:
                results[ref_id] = self._failed(exc, qtype)
            except Exception as exc:
                log.exception("query failed", extra={"kv": {"refId": ref_id}})
                results[ref_id] = self._failed(
                    QueryError(f"internal error: {type(exc).__name__}: {exc}", 500), qtype
                )
        return results

    @staticmethod
    def _failed(exc: QueryError, qtype: str) -> QueryResult:
        metrics.QUERIES.labels(qtype or "forecast", str(exc.status)).inc()
        return QueryResult(error=exc)

    def _parse(self, q: DataQueryInput, settings: DataSourceSettings) -> ForecastQuery:
        return parse_query(
            q.json,
            ref_id=q.ref_id,
            query_type=q.query_type,
            from_ms=q.from_ms,
            to_ms=q.to_ms,
            interval_ms=q.interval_ms,
            max_data_points=q.max_data_points,
            settings=settings,
        )

    def source_for(self, query: ForecastQuery, settings: DataSourceSettings) -> HistorySource:
        spec = query.source
        if isinstance(spec, DemoSpec):
            return DemoSource(spec.scenario)
        if isinstance(spec, InlineSpec):
            return InlineSource(spec)
        return self.prometheus_source(settings)

    def prometheus_source(self, settings: DataSourceSettings) -> PrometheusSource:
        """The data source's Prometheus client (one per configuration, shared by its requests)."""
        if settings.prometheus is None:
            raise bad_request(
                "source: prometheus needs a Prometheus URL; no Prometheus URL is configured for this "
                "data source (set the Prometheus URL field)"
            )
        return self._prometheus_factory(settings)

    def plan(self, query: ForecastQuery, source: HistorySource) -> Plan:
        if isinstance(source, InlineSource):
            grid = source.native_grid(query.context_length)
            plan = plan_query(query, int(self.clock() * 1000), step_ms=grid.step_ms, end_ms=grid.end_ms)
            return replace(plan, grid=grid)
        return plan_query(query, int(self.clock() * 1000))

    def forecaster_for(self, query: ForecastQuery, settings: DataSourceSettings) -> Forecaster:
        if query.model == "seasonal-naive":
            return self.registry.baseline
        return self.registry.forecaster(settings.model)

    def _submit(
        self, query: ForecastQuery, settings: DataSourceSettings, for_alert: bool, deadline: float | None
    ) -> PendingOutput:
        forecaster = self.forecaster_for(query, settings)  # fail fast (loading) before fetching
        kind = self.kinds.get(query.query_type)
        if kind is None:
            raise bad_request(f"queryType: {query.query_type} is not supported by this version")
        source = self.source_for(query, settings)
        plan = self.plan(query, source)
        history_plan = getattr(kind, "history_plan", None)  # a kind that needs more history (anomaly)
        if history_plan is not None:
            plan = history_plan(query, plan)
        history = source.fetch(HistoryRequest(plan.grid, query))
        if not history.series:
            raise bad_request("the source returned no series for this query")
        ctx = FrameContext(
            executed=self._executed(query, plan, history, forecaster),
            notices=self._notices(history, forecaster, settings),
            custom={"model": forecaster.name, "stepMs": plan.grid.step_ms, "horizonSteps": plan.horizon},
            for_alert=for_alert,
        )
        metrics.SERIES_FORECAST.labels(forecaster.name.split(":")[0]).inc(len(history.series))
        return kind.submit(OutputRequest(query, history, plan, forecaster, ctx, deadline))

    @staticmethod
    def _executed(query: ForecastQuery, plan: Plan, history: History, forecaster: Forecaster) -> str:
        return (
            f"{history.executed_query} | model={forecaster.name} step={format_duration(plan.grid.step_ms)} "
            f"context={plan.grid.count} horizon={plan.horizon} steps ({format_duration(plan.horizon_ms)})"
        )

    def _notices(
        self, history: History, forecaster: Forecaster, settings: DataSourceSettings
    ) -> list[Notice]:
        notices = [Notice("warning", text) for text in history.notices]
        if forecaster is self.registry.baseline:
            notices.append(Notice("info", "Forecast by the seasonal-naive baseline, not by Toto."))
        else:
            info = forecaster.describe()
            if info.get("randomWeights"):
                notices.append(Notice("warning", "This checkpoint has random weights (a test model): "
                                                 "its numbers are not a forecast."))
        return notices

    # -- health ---------------------------------------------------------------------------
    def check_health(self, settings: DataSourceSettings | QueryError) -> HealthResult:
        if isinstance(settings, QueryError):
            return HealthResult(False, f"invalid data source settings: {settings}")
        slot = self.registry.ensure(settings.model)
        details: dict[str, Any] = {
            "model": {"checkpoint": settings.model.checkpoint, "state": slot.state, **slot.info}
        }
        if slot.state == "loading":
            return HealthResult(
                False,
                f"loading the Toto model {settings.model.checkpoint}; test again in a few seconds",
                details,
            )
        if slot.state == "failed":
            return HealthResult(False, slot.error, details)
        assert slot.forecaster is not None
        started = time.perf_counter()
        try:
            slot.forecaster.submit(ForecastJob([[float(i % 7) for i in range(64)]], 32)).result(timeout=60)
        except Exception as exc:
            return HealthResult(False, f"the model is loaded but a test forecast failed: {exc}", details)
        latency_ms = (time.perf_counter() - started) * 1000
        details["model"]["testForecastMs"] = round(latency_ms, 1)
        info = slot.info
        message = (
            f"Toto 2.0 ready: {info['checkpoint']}, {info['parameters'] / 1e6:.1f}M parameters, "
            f"{info['device']} ({info['deviceName']}), {info['dtype']}; test forecast {latency_ms:.0f} ms"
        )
        if info.get("randomWeights"):
            message += " — WARNING: random-weight test checkpoint, not a forecasting model"
        if settings.prometheus is not None:
            try:
                upstream = self.prometheus_source(settings).check()
            except QueryError as exc:  # e.g. a CA certificate that does not parse
                details["prometheus"] = {"ok": False, "message": exc.message}
                return HealthResult(False, f"Prometheus settings: {exc.message}", details)
            details["prometheus"] = {
                "ok": upstream.ok, "message": upstream.message, "version": upstream.version
            }
            if not upstream.ok:
                return HealthResult(False, upstream.message, details)
            message += f". {upstream.message}"
        return HealthResult(True, message, details)

    # -- resources ------------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        out = [
            {"checkpoint": s.settings.checkpoint, "device": s.settings.device, "dtype": s.settings.dtype,
             "state": s.state, "loaded": s.state == "ready", "error": s.error, **s.info}
            for s in self.registry.slots()
        ]
        out.append({"checkpoint": "seasonal-naive", "state": "ready", "loaded": True, "baseline": True})
        return out
