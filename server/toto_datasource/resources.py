"""CallResource routes: small JSON endpoints the editors and admins use.

GET health, GET models, POST preview (what a query would fetch), and the Prometheus lookups
GET prometheus/metric-names and GET prometheus/label-values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import QueryError, bad_request
from .query import DemoSpec, InlineSpec, PrometheusSpec, format_duration, parse_query
from .service import ForecastDataSource, ResourceResponse
from .settings import DataSourceSettings
from .sources.demo import SCENARIOS


def _first(params: Mapping[str, list[str]], key: str, default: str = "") -> str:
    values = params.get(key) or [default]
    return values[0]


def call_resource(
    ds: ForecastDataSource,
    settings: DataSourceSettings | QueryError,
    method: str,
    path: str,
    params: Mapping[str, list[str]],
    body: bytes,
) -> ResourceResponse:
    route = path.strip("/")
    try:
        if route == "health" and method == "GET":
            return ResourceResponse(200, {"status": "ok", "models": ds.models()})
        if route == "models" and method == "GET":
            return ResourceResponse(200, {"models": ds.models()})
        if isinstance(settings, QueryError):
            raise settings
        if route == "preview" and method == "POST":
            return ResourceResponse(200, preview(ds, settings, body))
        if route.startswith("prometheus/") and method == "GET":
            return _prometheus_lookup(ds, settings, route.removeprefix("prometheus/"), params)
    except QueryError as exc:
        return ResourceResponse(exc.status, {"error": exc.message})
    known = "GET health, GET models, POST preview, GET prometheus/metric-names, GET prometheus/label-values"
    return ResourceResponse(404, {"error": f"no route {method} /{route}; available: {known}"})


def _prometheus_lookup(
    ds: ForecastDataSource, settings: DataSourceSettings, what: str, params: Mapping[str, list[str]]
) -> ResourceResponse:
    source = ds.prometheus_source(settings)
    if what == "metric-names":
        return ResourceResponse(200, {"names": source.metric_names(_first(params, "match"))})
    if what == "label-values":
        label = _first(params, "label")
        if not label:
            raise bad_request("label-values needs a label parameter")
        return ResourceResponse(200, {"values": source.label_values(label, _first(params, "match"))})
    raise QueryError(f"no Prometheus lookup named {what}", 404)


def preview(ds: ForecastDataSource, settings: DataSourceSettings, body: bytes) -> dict[str, Any]:
    """What the query would fetch and forecast, without running the model."""
    try:
        obj = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise bad_request(f"preview body is not JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise bad_request("preview body must be a JSON object")
    rng = obj.pop("range", None) or {}
    now_ms = int(ds.clock() * 1000)
    query = parse_query(
        json.dumps(obj).encode(),
        ref_id=str(obj.get("refId", "A")),
        query_type=str(obj.get("queryType", "")),
        from_ms=int(rng.get("from", now_ms - 6 * 3_600_000)),
        to_ms=int(rng.get("to", now_ms)),
        interval_ms=float(obj.get("intervalMs") or 0),
        max_data_points=int(obj.get("maxDataPoints") or 0),
        settings=settings,
    )
    source = ds.source_for(query, settings)
    plan = ds.plan(query, source)
    spec = query.source
    if isinstance(spec, DemoSpec):
        series = len(SCENARIOS) if spec.scenario == "all" else 1
    elif isinstance(spec, InlineSpec):
        series = len(spec.series)
    else:
        assert isinstance(spec, PrometheusSpec)
        series = source.series_count(spec.expr, plan.grid)  # type: ignore[attr-defined]
    grid = plan.grid
    return {
        "series": series,
        "step": format_duration(grid.step_ms),
        "stepMs": grid.step_ms,
        "historySpan": format_duration(grid.end_ms - grid.start_ms),
        "historyStart": grid.start_ms,
        "historyEnd": grid.end_ms,
        "horizonSteps": plan.horizon,
        "horizon": format_duration(plan.horizon_ms),
        "notices": [],
    }
