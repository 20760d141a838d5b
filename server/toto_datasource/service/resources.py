"""CallResource routes: small JSON endpoints the editors and admins use.

GET health, GET models, POST preview (what a query would fetch), and each source's own routes
under /<source>/... (e.g. GET prometheus/metric-names, GET prometheus/label-values).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.errors import BackendError, bad_request
from ..core.request import RequestContext
from ..core.types import DataQueryInput, ResourceResponse
from ..query import format_duration
from .health import model_list
from .instances import DataSourceInstance

if TYPE_CHECKING:
    from .datasource import ForecastDataSource


def call_resource(
    ds: ForecastDataSource,
    instance: DataSourceInstance,
    method: str,
    path: str,
    params: Mapping[str, list[str]],
    body: bytes,
    ctx: RequestContext,
) -> ResourceResponse:
    route = path.strip("/")
    try:
        if route == "health" and method == "GET":
            return ResourceResponse(200, {"status": "ok", "models": model_list(ds.registry)})
        if route == "models" and method == "GET":
            return ResourceResponse(200, {"models": model_list(ds.registry)})
        if route == "schema" and method == "GET":
            return ResourceResponse(200, ds.schema())
        if route == "preview" and method == "POST":
            return ResourceResponse(200, preview(ds, instance, body, ctx))
        source_name, _, sub = route.partition("/")
        if sub and method == "GET" and source_name in ds.sources:
            handler = instance.source(source_name).routes().get(sub)
            if handler is not None:
                return ResourceResponse(200, handler(params, body, ctx))
            raise BackendError(f"no {source_name} lookup named {sub}", 404)
    except BackendError as exc:
        return ResourceResponse(exc.status, {"error": exc.message})
    known = ", ".join(["GET health", "GET models", "GET schema", "POST preview",
                       *(f"GET {name}/..." for name in ds.sources)])
    return ResourceResponse(404, {"error": f"no route {method} /{route}; available: {known}"})


def preview(ds: ForecastDataSource, instance: DataSourceInstance, body: bytes, ctx: RequestContext
            ) -> dict[str, Any]:
    """What the query would fetch and forecast, without running the model; a query type that
    asks for it (backtest: `preview_summary`) is run and its one-line `summary` added."""
    try:
        obj = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise bad_request(f"preview body is not JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise bad_request("preview body must be a JSON object")
    rng = obj.pop("range", None) or {}
    now_ms = int(ds.clock() * 1000)
    request = DataQueryInput(
        ref_id=str(obj.get("refId", "A")),
        query_type=str(obj.get("queryType", "")),
        json=json.dumps(obj).encode(),
        from_ms=int(rng.get("from", now_ms - 6 * 3_600_000)),
        to_ms=int(rng.get("to", now_ms)),
        interval_ms=float(obj.get("intervalMs") or 0),
        max_data_points=int(obj.get("maxDataPoints") or 0),
    )
    query = ds.parse(request, instance.valid_settings())
    source = instance.source(query.source_name)
    plan = ds.plan(query, source)
    grid = plan.grid
    answer = {
        "series": source.series_count(query.source, grid, ctx),
        "step": format_duration(grid.step_ms),
        "stepMs": grid.step_ms,
        "historySpan": format_duration(grid.end_ms - grid.start_ms),
        "historyStart": grid.start_ms,
        "historyEnd": grid.end_ms,
        "horizonSteps": plan.horizon,
        "horizon": format_duration(plan.horizon_ms),
        "notices": [],
    }
    if ds.query_types.get(query.query_type).preview_summary:
        answer.update(run_for_summary(ds, instance, request, ctx))
    return answer


def run_for_summary(ds: ForecastDataSource, instance: DataSourceInstance, request: DataQueryInput,
                    ctx: RequestContext) -> dict[str, Any]:
    """Run the query (a backtest: its one line is what the editor asks for) and return its
    frames' meta.custom `summary`; a failure is the preview's notice, not an error."""
    result = ds.query_data(instance, [request], ctx)[request.ref_id]
    if result.error is not None:
        return {"summary": None, "notices": [result.error.message]}
    meta = result.frames[0].meta if result.frames else None
    custom = meta.custom if meta is not None and isinstance(meta.custom, dict) else {}
    notices = [n.text for n in meta.notices] if meta is not None else []
    return {"summary": custom.get("summary"), "notices": notices}
