"""History from any Grafana data source: the target's own query through Grafana's /api/ds/query.

One `GrafanaClient` per data-source configuration (its connection pool lives as long as the
instance), and one `TargetAccess` (access.py): before any target is queried, for a panel, an alert
rule or the editor's preview, the request must be allowed to read it.

The planner picks the grid; the query asks the target for exactly that window at that
step (`intervalMs` = step, `maxDataPoints` = points), and the answer, which Loki, InfluxDB or SQL
may give jittered or irregular, is bucketed onto the grid by `regular_grid.place` (last point of a
step wins, merges and moved points reported). Nothing is invented: an empty bucket stays NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.errors import bad_request
from ...core.request import RequestContext
from ...query.durations import format_duration
from ..base import History, HistoryRequest, ResourceRoute, Series, SourceHealth, TimeGrid, spec_of
from ..regular_grid import place
from .access import AnswerCache, TargetAccess
from .client import OWN_PLUGIN_ID, TOKEN_HELP, GrafanaClient
from .frames import DecodedResult
from .settings import GrafanaSettings

# Grafana's pseudo data sources: a forecast query cannot run a panel of several data sources.
PSEUDO_UIDS = {"-- Mixed --": "Mixed", "-- Dashboard --": "Dashboard"}
GRAFANA_KEYS = ("refId", "datasource", "hide", "intervalMs", "maxDataPoints")  # set by us, not the target
PREVIEW_POINTS = 240  # the preview only counts series


@dataclass(frozen=True)
class GrafanaSpec:
    uid: str
    type: str
    source_query: Mapping[str, Any] = field(default_factory=dict)

    @property
    def datasource(self) -> dict[str, str]:
        return {"uid": self.uid, "type": self.type}

    @property
    def target(self) -> str:
        return f"data source {self.uid} ({self.type or 'unknown type'})"


def parse_grafana_spec(obj: Mapping[str, Any]) -> GrafanaSpec:
    """sourceDatasource {uid, type} and sourceQuery; the target ref may also come inside sourceQuery
    (a target query object carries its own `datasource`). Never this plugin itself."""
    query = obj.get("sourceQuery")
    if query is None:
        query = {}
    if not isinstance(query, Mapping):
        raise bad_request("sourceQuery: must be the target data source's query object (source=grafana)")
    ref = obj.get("sourceDatasource") or query.get("datasource")
    if not isinstance(ref, Mapping) or not str(ref.get("uid") or "").strip():
        raise bad_request("sourceDatasource: source grafana needs the target data source {uid, type}; "
                          "pick it in the query editor")
    uid, kind = str(ref.get("uid")).strip(), str(ref.get("type") or "").strip()
    if kind == OWN_PLUGIN_ID:
        raise bad_request("sourceDatasource: the target is a Toto Forecast data source; a forecast of a "
                          "forecast is not supported: pick the panel's own data source")
    if uid in PSEUDO_UIDS:
        raise bad_request(f"sourceDatasource: {PSEUDO_UIDS[uid]} is not a data source to forecast; "
                          "pick one data source")
    if not any(k not in GRAFANA_KEYS for k in query):
        raise bad_request(f"sourceQuery: empty; build the query of {uid} in the query editor")
    own = {k: v for k, v in query.items() if k not in GRAFANA_KEYS}
    return GrafanaSpec(uid, kind, own)


class GrafanaSource:
    """Runs target queries through one Grafana (one client, closed with the instance)."""

    def __init__(self, settings: GrafanaSettings, max_series: int, client: GrafanaClient | None = None,
                 edition: str = "", answers: AnswerCache | None = None) -> None:
        self.settings = settings
        self.max_series = max_series
        self._client = client or GrafanaClient(
            settings.url, settings.token.reveal(), settings.timeout_s, settings.max_response_bytes
        )
        self.access = TargetAccess(self._client, settings.allowed_targets, edition, answers=answers)

    @property
    def url(self) -> str:
        """Grafana's URL, as health messages name it."""
        return self._client.url

    def close(self) -> None:
        self._client.close()

    def _query(
        self, spec: GrafanaSpec, ref_id: str, grid: TimeGrid, step_ms: int, points: int,
        ctx: RequestContext,
    ) -> DecodedResult:
        if not self.settings.token:
            raise bad_request(f"source: grafana needs a Grafana service-account token: {TOKEN_HELP}")
        self.access.check(spec.uid, ctx)
        return self._client.query(spec.datasource, spec.source_query, ref_id or "A",
                                  grid.start_ms, grid.end_ms, step_ms, points, ctx)

    def fetch(self, request: HistoryRequest) -> History:
        spec = spec_of(request, GrafanaSpec)
        grid = request.grid
        if grid.count <= 0 or grid.step_ms <= 0:
            raise bad_request(f"invalid history grid: {grid.count} points every {grid.step_ms} ms")
        ref_id = request.query.ref_id if request.query is not None else "A"
        decoded = self._query(spec, ref_id, grid, grid.step_ms, grid.count, request.ctx)
        if len(decoded.series) > self.max_series:
            raise bad_request(
                f"{spec.target} returned {len(decoded.series)} series; the data source allows at most "
                f"{self.max_series} (maxSeries setting); narrow or aggregate the query"
            )
        placed = place(grid, [(s.timestamps_ms, s.values) for s in decoded.series],
                       names=[s.name for s in decoded.series])
        series, empty = [], 0
        for raw, on_grid in zip(decoded.series, placed.series, strict=True):
            if not np.isfinite(on_grid.values).any():
                empty += 1
                continue
            series.append(Series(raw.name, raw.labels, on_grid.values, raw.unit))
        span = f"{format_duration(grid.end_ms - grid.start_ms)} at {format_duration(grid.step_ms)}"
        if not series:
            raise bad_request(f"{spec.target} returned no data points in the history window ({span}); "
                              "check its query and the time range")
        notices = [*decoded.notices, *placed.notices]
        if empty:
            notices.append(f"{empty} series had no points in the history window and were dropped")
        executed = "; ".join(decoded.executed_queries) or "(the target reported no executed query)"
        return History(grid, series, notices,
                       executed_query=f"Grafana {spec.target} over {span}: {executed}")

    def native_grid(self, spec: Any, context_length: int) -> TimeGrid | None:
        return None

    def series_count(self, spec: Any, grid: TimeGrid, ctx: RequestContext) -> int:
        """Series the target's query returns over the grid's span, at a coarse step (the preview)."""
        if not isinstance(spec, GrafanaSpec):
            raise bad_request("the preview of source grafana needs sourceDatasource and sourceQuery")
        span = grid.end_ms - grid.start_ms
        step = max(grid.step_ms, -(-span // PREVIEW_POINTS))
        return len(self._query(spec, "preview", grid, step, PREVIEW_POINTS, ctx).series)

    def check(self, ctx: RequestContext) -> SourceHealth:
        """Grafana reachable, the token accepted in the request's organisation, then whether users'
        permissions can be checked with it (access.py)."""
        health = self._client.check(ctx)
        if not health.ok:
            return health
        access = self.access.probe(ctx)
        message = f"{health.message}; {access.message}" if access.ok else access.message
        return SourceHealth(access.ok, message, health.version)

    def routes(self) -> Mapping[str, ResourceRoute]:
        return {}
