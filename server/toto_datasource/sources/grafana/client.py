"""Grafana's HTTP query API as a history upstream: POST /api/ds/query with a service-account token.

The same fetch machinery as Prometheus (sources/http_budget.py): one call = one budget,
min(`timeout_s`, the request's deadline), for connect, headers and body together, enforced on
every socket operation by the budget transport, so a server that trickles its headers or its
body is cut off on time (httpx's own timeouts are per read) on the caller's thread, with no
worker left behind; and at most `fetch_permits` calls per data source in flight, a call that gets
no permit within its budget being a 504 "busy" like Prometheus's. (Before: each call ran on a
4-thread pool per data source and the caller stopped waiting at the budget, but the worker went
on for up to timeoutSeconds per read, and the queue in front of the pool was unbounded.) Bodies
over `max_response_bytes` are refused with a 400 naming the limit. The token never appears in a
message: upstream text is redacted before it is quoted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from ...core.errors import BackendError, bad_request, downstream
from ...core.redact import Redactor
from ...core.request import RequestContext
from ..base import SourceHealth
from ..http_budget import (
    DEFAULT_FETCHES_PER_SOURCE,
    BodyTooLarge,
    BudgetExceeded,
    FetchLimiter,
    FetchPermitsExhausted,
    budget_transport,
    fetch_within,
)
from .frames import DecodedResult, decode_result

OWN_PLUGIN_ID = "toto-forecast-datasource"
TOKEN_HELP = (
    "create a service account token (Administration > Users and access > Service accounts, role Viewer "
    "or datasources:query on the target) and put it in the data source's Grafana token setting"
)
# Grafana answers /api/ds/query with 400 (or 207 with datasourceQueryMultiStatus) when any query
# failed; the body still carries every refId's result.
RESULT_STATUSES = (200, 207, 400)


FETCH_PERMITS = DEFAULT_FETCHES_PER_SOURCE


def _fmt_mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


class GrafanaClient:
    """Queries one Grafana through /api/ds/query (one httpx client, at most `fetch_permits` calls
    in flight, each on its caller's thread)."""

    def __init__(
        self,
        url: str,
        token: str,
        timeout_s: float = 30.0,
        max_response_bytes: int = 64 << 20,
        client: httpx.Client | None = None,
        fetch_permits: int = FETCH_PERMITS,
    ) -> None:
        if not url.strip():
            raise bad_request(
                "the data source has no Grafana URL (grafanaUrl) and Grafana sent no GF_APP_URL"
            )
        self.url = url.strip().rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._redactor = Redactor.of([token])
        self._limiter = FetchLimiter(fetch_permits)
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            transport=budget_transport(limits=httpx.Limits(max_connections=fetch_permits,
                                                           max_keepalive_connections=fetch_permits)),
            headers={"User-Agent": OWN_PLUGIN_ID, "Accept": "application/json"},
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # ---- query -------------------------------------------------------------------------------

    @staticmethod
    def request_body(
        datasource: Mapping[str, str],
        source_query: Mapping[str, Any],
        ref_id: str,
        from_ms: int,
        to_ms: int,
        interval_ms: int,
        max_data_points: int,
    ) -> dict[str, Any]:
        """The body Grafana's frontend sends: the target's own query plus Grafana's common keys."""
        query = {
            **source_query,
            "refId": ref_id,
            "datasource": {"uid": datasource.get("uid", ""), "type": datasource.get("type", "")},
            "intervalMs": interval_ms,
            "maxDataPoints": max_data_points,
        }
        return {"queries": [query], "from": str(from_ms), "to": str(to_ms)}

    def query(
        self,
        datasource: Mapping[str, str],
        source_query: Mapping[str, Any],
        ref_id: str,
        from_ms: int,
        to_ms: int,
        interval_ms: int,
        max_data_points: int,
        ctx: RequestContext,
    ) -> DecodedResult:
        """Run the target's query over [from_ms, to_ms] at interval_ms and decode its series, within
        timeoutSeconds or what is left of the request's deadline, whichever is less."""
        uid, kind = str(datasource.get("uid") or ""), str(datasource.get("type") or "")
        if kind == OWN_PLUGIN_ID:
            raise bad_request(
                "the target data source is this forecast data source itself; pick the panel's own"
            )
        if not uid:
            raise bad_request("the query names no target data source (datasource.uid is empty)")
        target = f"data source {uid} ({kind or 'unknown type'})"
        body = self.request_body(
            datasource, source_query, ref_id, from_ms, to_ms, interval_ms, max_data_points
        )
        status, raw = self._call("POST", "/api/ds/query", body, ctx)
        if status in (401, 403, 404) or status not in RESULT_STATUSES:
            raise self._status_error(status, raw, target)
        doc = self._json(raw)
        if not isinstance(doc, dict) or "results" not in doc:
            if status == 400:
                raise downstream(f"Grafana refused the query for {target} (400): {self._snippet(raw)}", 400)
            raise downstream(f"Grafana at {self.url} sent an answer without results", 502)
        return decode_result(doc, ref_id, target)

    # ---- health ------------------------------------------------------------------------------

    def check(self, ctx: RequestContext) -> SourceHealth:
        """Reachable (version from /api/health), then the token and its organisation (GET /api/org:
        any member may read it), which must be the request's: data-source uids and users'
        permissions are per organisation. Each call within timeoutSeconds and the check's deadline."""
        try:
            status, raw = self._call("GET", "/api/health", None, ctx, auth=False,
                                     deadline_of="the health check")
            info = self._json(raw)
            version = str(info.get("version", "")) if isinstance(info, dict) else ""
            if status != 200 or not version:
                return SourceHealth(
                    False, f"{self.url} answered /api/health with HTTP {status}; is it Grafana?"
                )
            if not self._token:
                return SourceHealth(
                    False, f"Grafana {version} reachable, but no token is set: {TOKEN_HELP}", version
                )
            status, org = self.get_json("/api/org", None, ctx, auth=True, deadline_of="the health check")
        except BackendError as exc:
            return SourceHealth(False, exc.message)
        if status == 401:
            return SourceHealth(
                False, f"Grafana {version} reachable, but it rejected the token (401): {TOKEN_HELP}", version
            )
        if status == 403:
            return SourceHealth(False, f"Grafana {version} reachable, but the service account may not read "
                                "its organisation (403 on /api/org): give it the Viewer role (orgs:read)",
                                version)
        if status != 200 or not isinstance(org, dict):
            return SourceHealth(False, f"Grafana {version} answered /api/org with HTTP {status}", version)
        org_id, wanted = org.get("id"), ctx.caller.org_id
        if wanted and org_id != wanted:
            return SourceHealth(False, f"the service account belongs to organisation {org_id} "
                                f"({str(org.get('name', ''))[:60]}), but this data source is in "
                                f"organisation {wanted}: create the service account and its token in "
                                f"organisation {wanted}", version)
        return SourceHealth(True, f"Grafana {version} at {self.url} reachable, token accepted", version)

    # ---- HTTP --------------------------------------------------------------------------------

    def get_json(self, path: str, params: Mapping[str, str] | None, ctx: RequestContext, *, auth: bool,
                 deadline_of: str = "the query") -> tuple[int, Any]:
        """GET `path` (with the service-account token when `auth`) under the same budget and permits
        as queries: the status and the JSON answer (None when the body is not JSON)."""
        status, raw = self._call("GET", path, None, ctx, auth=auth, deadline_of=deadline_of, params=params)
        return status, self._json(raw)

    def _call(self, method: str, path: str, body: Any, ctx: RequestContext, auth: bool = True,
              deadline_of: str = "the query", params: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """One request under one budget (`RequestContext.budget`), within one fetch permit."""
        budget = ctx.budget(self.timeout_s)
        if budget.seconds <= 0:
            raise self._timeout(BudgetExceeded(budget), deadline_of)
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        try:
            req = self._client.build_request(method, self.url + path, json=body, headers=headers,
                                             params=params)
            with self._limiter.permit(budget, ctx):
                fetched = fetch_within(self._client, req, budget, ctx,
                                       max_body_bytes=self.max_response_bytes)
            return fetched.status, fetched.body
        except BudgetExceeded as exc:
            raise self._timeout(exc, deadline_of) from None
        except FetchPermitsExhausted as exc:
            raise downstream(f"Grafana at {self.url} is busy: {exc}", 504) from None
        except BodyTooLarge:
            raise bad_request(
                f"Grafana's answer is larger than the {_fmt_mib(self.max_response_bytes)} limit "
                "(grafanaMaxResponseMB setting); shorten the history or aggregate the query"
            ) from None
        except httpx.TimeoutException:
            raise self._timeout(BudgetExceeded(budget), deadline_of) from None
        except httpx.ConnectError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else self._redact(str(exc))
            raise downstream(f"cannot reach Grafana at {self.url}: {reason}", 502) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise downstream(
                f"request to Grafana at {self.url} failed: {self._redact(str(exc))}", 502
            ) from None

    def _timeout(self, exc: BudgetExceeded, deadline_of: str) -> BackendError:
        budget = exc.budget
        why = f"({deadline_of}'s deadline came first)" if budget.capped_by_request else "(timeoutSeconds)"
        return downstream(
            f"Grafana at {self.url} did not {exc.phase} within {budget.seconds:.3g}s {why}", 504
        )

    def _status_error(self, status: int, raw: bytes, target: str) -> BackendError:
        if status == 401:
            return downstream(f"Grafana rejected the token (401): {TOKEN_HELP}", 401)
        if status == 403:
            return downstream(
                f"the token cannot query {target} (403): give the service account Viewer or "
                "datasources:query on that data source",
                403,
            )
        if status == 404:
            return downstream(
                f"Grafana has no {target} (404): pick the data source again in the query editor", 400
            )
        return downstream(
            f"Grafana at {self.url} answered HTTP {status}: {self._snippet(raw)}",
            504 if status == 504 else 502,
        )

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None

    def _snippet(self, raw: bytes) -> str:
        doc = self._json(raw)
        text = (
            str(doc.get("message"))
            if isinstance(doc, dict) and doc.get("message")
            else raw[:300].decode("utf-8", "replace")
        )
        return self._redact(text.strip().replace("\n", " ")) or "(empty body)"

    def _redact(self, text: str) -> str:
        """The token (and its encoded forms) and secret-shaped text (a proxy echoing a request)."""
        return self._redactor(text)
