"""Grafana's HTTP query API as a history upstream: POST /api/ds/query with a service-account token.

One call = one budget (`timeout_s`) for connect, headers and body together: the request runs on a
worker thread and the caller waits at most the budget, so a server that sends headers and then
trickles the body is cut off on time (httpx's own timeouts are per read). Bodies over
`max_response_bytes` are refused with a 400 naming the limit. The token never appears in a message:
upstream text is redacted before it is quoted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import httpx

from ...backend.cpu import released
from ...backend.errors import BackendError, bad_request, downstream
from ..base import SourceHealth
from .frames import DecodedResult, decode_result

OWN_PLUGIN_ID = "toto-forecast-datasource"
TOKEN_HELP = (
    "create a service account token (Administration > Users and access > Service accounts, role Viewer "
    "or datasources:query on the target) and put it in the data source's Grafana token setting"
)
# Grafana answers /api/ds/query with 400 (or 207 with datasourceQueryMultiStatus) when any query
# failed; the body still carries every refId's result.
RESULT_STATUSES = (200, 207, 400)


def _fmt_mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


class _Cancelled(Exception):
    pass


class GrafanaClient:
    """Queries one Grafana through /api/ds/query (one httpx client, one worker thread per call)."""

    def __init__(
        self,
        url: str,
        token: str,
        timeout_s: float = 30.0,
        max_response_bytes: int = 64 << 20,
        client: httpx.Client | None = None,
    ) -> None:
        if not url.strip():
            raise bad_request(
                "the data source has no Grafana URL (grafanaUrl) and Grafana sent no GF_APP_URL"
            )
        self.url = url.strip().rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": OWN_PLUGIN_ID, "Accept": "application/json"},
        )
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="grafana-http")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
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
        deadline: float | None = None,
    ) -> DecodedResult:
        """Run the target's query over [from_ms, to_ms] at interval_ms and decode its series, within
        timeoutSeconds or before `deadline` (time.monotonic(): the query's own), whichever is first."""
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
        status, raw = self._call("POST", "/api/ds/query", body, deadline=deadline)
        if status in (401, 403, 404) or status not in RESULT_STATUSES:
            raise self._status_error(status, raw, target)
        doc = self._json(raw)
        if not isinstance(doc, dict) or "results" not in doc:
            if status == 400:
                raise downstream(f"Grafana refused the query for {target} (400): {self._snippet(raw)}", 400)
            raise downstream(f"Grafana at {self.url} sent an answer without results", 502)
        return decode_result(doc, ref_id, target)

    # ---- health ------------------------------------------------------------------------------

    def check(self, deadline: float | None = None) -> SourceHealth:
        """Reachable (version from /api/health), then the token (GET /api/org: any org member may),
        each within timeoutSeconds and both before `deadline` (time.monotonic()) when given."""
        try:
            status, raw = self._call("GET", "/api/health", None, auth=False, deadline=deadline)
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
            status, raw = self._call("GET", "/api/org", None, deadline=deadline)
        except BackendError as exc:
            return SourceHealth(False, exc.message)
        if status == 401:
            return SourceHealth(
                False, f"Grafana {version} reachable, but it rejected the token (401): {TOKEN_HELP}", version
            )
        if status not in (200, 403):  # 403: a valid token without org read; queries may still work
            return SourceHealth(False, f"Grafana {version} answered /api/org with HTTP {status}", version)
        return SourceHealth(True, f"Grafana {version} at {self.url} reachable, token accepted", version)

    # ---- HTTP --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any, auth: bool = True,
              deadline: float | None = None) -> tuple[int, bytes]:
        """One request under one budget: timeout_s, or less when the query's deadline comes first."""
        budget = self.timeout_s
        if deadline is not None:
            budget = max(0.0, min(budget, deadline - time.monotonic()))
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        cancelled = threading.Event()
        future = self._pool.submit(self._send, method, path, body, headers, cancelled, budget)
        try:
            with released():  # no CPU slot held while Grafana answers
                return future.result(timeout=budget)
        except FutureTimeout:
            cancelled.set()
            raise self._timeout(budget) from None

    def _send(
        self, method: str, path: str, body: Any, headers: dict[str, str], cancelled: threading.Event,
        budget: float,
    ) -> tuple[int, bytes]:
        deadline = time.monotonic() + budget
        try:
            req = self._client.build_request(method, self.url + path, json=body, headers=headers)
            resp = self._client.send(req, stream=True)
            try:
                parts: list[bytes] = []
                size = 0
                for part in resp.iter_bytes():
                    size += len(part)
                    if size > self.max_response_bytes:
                        raise bad_request(
                            f"Grafana's answer is larger than the {_fmt_mib(self.max_response_bytes)} limit "
                            "(grafanaMaxResponseMB setting); shorten the history or aggregate the query"
                        )
                    if cancelled.is_set() or time.monotonic() > deadline:
                        raise _Cancelled
                    parts.append(part)
                return resp.status_code, b"".join(parts)
            finally:
                resp.close()
        except (BackendError, _Cancelled):
            raise
        except httpx.TimeoutException:
            raise self._timeout(budget) from None
        except httpx.ConnectError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else self._redact(str(exc))
            raise downstream(f"cannot reach Grafana at {self.url}: {reason}", 502) from None
        except httpx.HTTPError as exc:
            raise downstream(
                f"request to Grafana at {self.url} failed: {self._redact(str(exc))}", 502
            ) from None

    def _timeout(self, budget: float) -> BackendError:
        why = "(timeoutSeconds)" if budget >= self.timeout_s else "(the query's deadline came first)"
        return downstream(f"Grafana at {self.url} did not answer within {budget:.3g}s {why}", 504)

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
        return text.replace(self._token, "***") if len(self._token) >= 3 else text
