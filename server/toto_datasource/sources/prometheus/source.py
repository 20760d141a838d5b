"""History, editor lookups and health from one Prometheus-compatible data source.

The planner picks the grid; this module only fetches it: one or more `query_range` calls whose
start/end/step reproduce the grid exactly, merged per label set into float64 arrays with NaN
where nothing was observed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from ...core.errors import bad_request
from ...core.request import Budget, RequestContext
from ..base import History, HistoryRequest, ResourceRoute, SourceHealth, TimeGrid, spec_of
from .http import NotFound, PrometheusHttp
from .placement import (
    LABEL_NAME,
    PREVIEW_POINTS,
    Placed,
    chunks,
    fmt_seconds,
    history_of,
    place_on_grid,
)
from .settings import PrometheusSettings

NO_URL = "no Prometheus URL is configured for this data source (set the Prometheus URL field)"


@dataclass(frozen=True)
class PrometheusSpec:
    expr: str
    legend_format: str = ""


def require_expr(expr: str) -> str:
    """The one check that a query has a PromQL expression."""
    if not expr.strip():
        raise bad_request("expr is empty: source prometheus needs a PromQL expression")
    return expr.strip()


def _first(params: Mapping[str, list[str]], key: str) -> str:
    return (params.get(key) or [""])[0]


class PrometheusSource:
    """Fetches history, metadata and health from one Prometheus data source (one httpx client)."""

    def __init__(
        self, settings: PrometheusSettings, max_series: int, client: httpx.Client | None = None
    ) -> None:
        if not settings.url:
            raise bad_request(NO_URL)
        self.settings = settings
        self.max_series = max_series
        self._http = PrometheusHttp(settings, client)
        self.url = self._http.url

    def close(self) -> None:
        self._http.close()

    def _range(self, expr: str, grid: TimeGrid, step_ms: int, budget: Budget, ctx: RequestContext,
               warnings: list[str]) -> list[Mapping[str, Any]]:
        data = self._http.api(
            "POST",
            "/api/v1/query_range",
            {
                "query": expr,
                "start": fmt_seconds(grid.start_ms),
                "end": fmt_seconds(grid.end_ms),
                "step": fmt_seconds(step_ms),
                "timeout": f"{self.settings.timeout_s:g}",
            },
            budget,
            ctx,
            warnings,
        )
        return self._matrix(data)

    # ---- history ---------------------------------------------------------------------------

    def fetch(self, request: HistoryRequest) -> History:
        """Fill every series of the query's expression onto request.grid (NaN where unobserved)."""
        spec = spec_of(request, PrometheusSpec)
        expr = require_expr(spec.expr)
        grid = request.grid
        if grid.count <= 0 or grid.step_ms <= 0:
            raise bad_request(f"invalid history grid: {grid.count} points every {grid.step_ms} ms")
        budget = request.ctx.budget(self.settings.timeout_s)  # one budget for every chunk
        parts = chunks(grid)
        placed: dict[tuple[tuple[str, str], ...], Placed] = {}
        warnings: list[str] = []
        for chunk in parts:
            result = self._range(expr, chunk, chunk.step_ms, budget, request.ctx, warnings)
            keys = [tuple(sorted((item.get("metric") or {}).items())) for item in result]
            total = len(placed) + len({k for k in keys if k not in placed})
            if total > self.max_series:
                raise bad_request(
                    f"query returned {total} series; the data source allows at most {self.max_series} "
                    "(maxSeries setting); narrow the selector or aggregate"
                )
            for key, item in zip(keys, result, strict=True):
                entry = placed.get(key)
                if entry is None:
                    entry = placed[key] = Placed(dict(key), np.full(grid.count, np.nan))
                self._place(grid, item, entry)
        return history_of(grid, expr, spec.legend_format, list(placed.values()), warnings, len(parts))

    def _place(self, grid: TimeGrid, item: Mapping[str, Any], entry: Placed) -> None:
        points = item.get("values") or []
        if not points:
            return
        try:
            ts = np.fromiter((p[0] for p in points), dtype=np.float64, count=len(points))
            vals = np.fromiter((float(p[1]) for p in points), dtype=np.float64, count=len(points))
        except (TypeError, ValueError, IndexError, KeyError):
            raise self._http.bad_response("a series has malformed [timestamp, value] pairs") from None
        inf = np.isinf(vals)
        if inf.any():
            entry.non_finite += int(inf.sum())
            vals[inf] = np.nan
        misaligned, duplicates = place_on_grid(grid, ts, vals, entry.values)
        entry.misaligned += misaligned
        entry.duplicates += duplicates

    def native_grid(self, spec: Any, context_length: int) -> TimeGrid | None:
        return None

    def series_count(self, spec: Any, grid: TimeGrid, ctx: RequestContext) -> int:
        """How many series the expression returns over the grid's span, from a coarse range query
        (the preview only counts; the values are not needed at full resolution)."""
        expr = require_expr(spec.expr if isinstance(spec, PrometheusSpec) else str(spec))
        span = grid.end_ms - grid.start_ms
        step = max(grid.step_ms, -(-span // PREVIEW_POINTS) if span else grid.step_ms)
        return len(self._range(expr, grid, step, ctx.budget(self.settings.timeout_s), ctx, []))

    # ---- editor resources ------------------------------------------------------------------

    def routes(self) -> Mapping[str, ResourceRoute]:
        return {"metric-names": self._metric_names_route, "label-values": self._label_values_route}

    def _metric_names_route(self, params: Mapping[str, list[str]], body: bytes, ctx: RequestContext) -> Any:
        return {"names": self.metric_names(ctx, _first(params, "match"))}

    def _label_values_route(self, params: Mapping[str, list[str]], body: bytes, ctx: RequestContext) -> Any:
        label = _first(params, "label")
        if not label:
            raise bad_request("label-values needs a label parameter")
        return {"values": self.label_values(ctx, label, _first(params, "match"))}

    def metric_names(self, ctx: RequestContext, match: str = "", limit: int = 200) -> list[str]:
        """Metric names for the editor. A `match` with braces is a series selector sent upstream;
        plain text filters names by case-insensitive substring."""
        selector = match.strip() if "{" in match else ""
        names = self._label_values(ctx, "__name__", selector)
        needle = "" if selector else match.strip().lower()
        picked = [n for n in names if needle in n.lower()]
        return sorted(picked)[: max(0, limit)]

    def label_values(self, ctx: RequestContext, label: str, match: str = "") -> list[str]:
        """Values of one label, optionally only on series matching the selector `match`."""
        if not LABEL_NAME.match(label):
            raise bad_request(f"invalid label name {label!r}")
        return sorted(self._label_values(ctx, label, match.strip()))

    def _label_values(self, ctx: RequestContext, label: str, selector: str) -> list[str]:
        params = {"match[]": selector} if selector else None
        budget = ctx.budget(self.settings.timeout_s)
        data = self._http.api("GET", f"/api/v1/label/{label}/values", params, budget, ctx)
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise self._http.bad_response("label values are not a list of strings")
        return data

    # ---- health ----------------------------------------------------------------------------

    def check(self, ctx: RequestContext) -> SourceHealth:
        """Reachable, credentials accepted, version: buildinfo needs auth like any API call, so a
        successful answer proves all three. Falls back to a trivial query for compatible servers
        without the buildinfo endpoint. Both calls share one budget: timeoutSeconds, or less when
        the check's deadline comes first."""
        budget = ctx.budget(self.settings.timeout_s)
        try:
            info = self._http.api("GET", "/api/v1/status/buildinfo", None, budget, ctx)
            version = str(info.get("version", "")) if isinstance(info, dict) else ""
        except NotFound:
            try:
                self._http.api("GET", "/api/v1/query", {"query": "1"}, budget, ctx)
            except Exception as exc2:
                return SourceHealth(False, str(exc2))
            version = ""
        except Exception as exc:
            return SourceHealth(False, str(exc))
        shown = version or "unknown"
        return SourceHealth(True, f"Prometheus at {self.url} reachable, version {shown}", version)

    def _matrix(self, data: Any) -> list[Mapping[str, Any]]:
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
            raise self._http.bad_response(f"expected a range-query matrix, got {kind!r}")
        result = data.get("result")
        if not isinstance(result, list) or not all(
            isinstance(r, dict) and isinstance(r.get("metric", {}), dict) for r in result
        ):
            raise self._http.bad_response("the matrix result is not a list of series")
        return result
