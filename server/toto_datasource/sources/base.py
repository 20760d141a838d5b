"""What every history source takes and gives: small interfaces, plain values.

A `SourceProvider` is the registry entry: its name, the schema and parsing of its query keys and
of its settings part, and `open()` for one data-source configuration. The `HistorySource` it opens
fetches history onto a grid, counts series for the editor's preview, checks its upstream's health,
serves its own resource routes (the editor's lookups) and is closed when its configuration goes
stale. The service asks these of whichever source a query names and knows none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.errors import BackendError, bad_request
from ..core.request import RequestContext
from ..core.series import Series, TimeGrid
from ..core.settings import DataSourceSettings, RawSettings
from ..query.model import ForecastQuery

# How long after its own timeout a replaced source may still be turning its last answer into frames.
CLOSE_MARGIN_S = 30.0

__all__ = [
    "CLOSE_MARGIN_S", "History", "HistoryRequest", "HistorySource", "ResourceRoute", "Series", "SourceHealth",
    "SourceProvider", "TimeGrid", "spec_of",
]


@dataclass
class History:
    """What a source returns: series on one grid plus notices for the user."""

    grid: TimeGrid
    series: list[Series]
    notices: list[str] = field(default_factory=list)
    executed_query: str = ""


@dataclass(frozen=True)
class HistoryRequest:
    """What the query stage asks of a source: `grid` is the history window to fill, `ctx` the
    request's deadline, CPU slot and caller (every upstream call is budgeted from it)."""

    grid: TimeGrid
    query: ForecastQuery | None = None
    ctx: RequestContext = field(default_factory=RequestContext)

    @property
    def spec(self) -> Any:
        """The source's own part of the query (what its provider's `parse_query` returned)."""
        return None if self.query is None else self.query.source


def spec_of[S](request: HistoryRequest, kind: type[S]) -> S:
    """The request's source spec, checked to be the type this source parses."""
    spec = request.spec
    if not isinstance(spec, kind):
        raise bad_request(f"this source expects a {kind.__name__} query, got {type(spec).__name__}")
    return spec


@dataclass(frozen=True)
class SourceHealth:
    """What CheckHealth reports about a source's upstream."""

    ok: bool
    message: str
    version: str = ""  # the upstream's own version, when it tells


# A resource route: (query parameters, request body, the request's context) → JSON-able body;
# raise BackendError to fail.
ResourceRoute = Callable[[Mapping[str, list[str]], bytes, RequestContext], Any]


class HistorySource(Protocol):
    @property
    def url(self) -> str:
        """The upstream's URL as messages name it ("" for a source without one)."""
        ...

    def fetch(self, request: HistoryRequest) -> History:
        """Fill every series of the query onto request.grid. Raise BackendError for what the user
        should see."""
        ...

    def native_grid(self, spec: Any, context_length: int) -> TimeGrid | None:
        """The grid the data itself dictates (inline points), or None to let the planner choose."""
        ...

    def series_count(self, spec: Any, grid: TimeGrid, ctx: RequestContext) -> int:
        """How many series fetch() would return (the editor's preview; may be approximate)."""
        ...

    def check(self, ctx: RequestContext) -> SourceHealth | None:
        """The upstream's health for CheckHealth, or None when there is no upstream. Answers by
        the check's deadline (`ctx`) when it comes before the source's own timeout, with an
        unhealthy result naming the upstream that did not answer."""
        ...

    def routes(self) -> Mapping[str, ResourceRoute]:
        """GET resource routes under /<source name>/ (e.g. prometheus/metric-names)."""
        ...

    def close(self) -> None: ...


class SourceProvider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str:
        """How messages name it: "Prometheus settings: ...", "Grafana API: ..."."""
        ...

    @property
    def description(self) -> str: ...

    @property
    def schema(self) -> Mapping[str, Any]:
        """JSON schema of this source's query keys (merged into query.schema.json)."""
        ...

    def strip_for_schema(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def parse_query(self, obj: Mapping[str, Any]) -> Any:
        """The source's part of the query; raise BackendError(400) naming the field."""
        ...

    def parse_settings(self, raw: RawSettings) -> Any | None:
        """This source's settings part, or None when the data source does not configure it."""
        ...

    def open(self, settings: DataSourceSettings) -> HistorySource:
        """A source for one data-source configuration (called once per settings version)."""
        ...

    def close_grace_s(self, settings: DataSourceSettings) -> float:
        """How long a stale instance may still be serving a request (its timeout plus a margin)."""
        ...


class StaticSource:
    """Defaults for a source without upstream, settings or routes (demo, inline)."""

    url = ""

    def native_grid(self, spec: Any, context_length: int) -> TimeGrid | None:
        return None

    def check(self, ctx: RequestContext) -> SourceHealth | None:
        return None

    def routes(self) -> Mapping[str, ResourceRoute]:
        return {}

    def close(self) -> None:
        return None


class SimpleProvider:
    """Defaults for a provider without settings whose query keys jsonschema checks in full."""

    def strip_for_schema(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def parse_settings(self, raw: RawSettings) -> Any | None:
        return None

    def close_grace_s(self, settings: DataSourceSettings) -> float:
        return 0.0


def not_configured(source: str, what: str) -> BackendError:
    return bad_request(f"source: {source} needs {what}; set it in the data source's settings")
