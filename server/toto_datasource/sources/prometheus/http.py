"""The HTTP side of a Prometheus data source: one httpx client, auth, deadlines, error mapping.

Every upstream fault becomes a downstream `BackendError` whose message says what happened without
ever quoting a secret: configured secrets and URL credentials are redacted from upstream bodies.

Each call has one total budget, connect + TLS + headers + body (sources/http_budget.py): the
caller's deadline is min(timeoutSeconds, the request's deadline). httpx alone times out per socket
operation, so headers sent at 1 byte/s took 71 s under a 5 s timeout. At most
`FETCH_PERMITS` calls per data source are in flight; a call that cannot get a permit within its
budget is a 504 too, so 80 queries on one stuck upstream hold 16 connections, not 80.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from ...core.errors import BackendError, bad_request, downstream
from ...core.redact import Redactor
from ...core.request import Budget, RequestContext
from ...core.settings import redact_url
from ..http_budget import (
    DEFAULT_FETCHES_PER_SOURCE,
    BodyTooLarge,
    BudgetExceeded,
    FetchLimiter,
    FetchPermitsExhausted,
    budget_transport,
    fetch_within,
)
from .settings import PrometheusSettings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024 * 1024  # a runaway answer must not take the plugin process down with it
FETCH_PERMITS = DEFAULT_FETCHES_PER_SOURCE


class NotFound(BackendError):
    """HTTP 404 on an API path (an old or partial Prometheus-compatible server)."""


class PrometheusHttp:
    """Sends API calls for one data-source configuration, each within its caller's budget."""

    def __init__(self, settings: PrometheusSettings, client: httpx.Client | None) -> None:
        self.settings = settings
        # Credentials in the URL (http://user:pass@host) become basic auth: httpx logs request
        # URLs, so the URL we send never carries them, and the one messages show has ***@ instead.
        self._base = redact_url(settings.url, userinfo="").rstrip("/")
        # A query string in the configured URL (e.g. a tenant or org parameter some Prometheus-
        # compatible APIs want) goes with every request; messages leave it out (it may hold a token).
        self._base_params = parse_qsl(urlsplit(settings.url).query, keep_blank_values=True)
        self.url = redact_url(settings.url).rstrip("/")
        userinfo = urlsplit(settings.url)
        # Values that must never reach a message or a log line (upstream error bodies are redacted too).
        self._redactor = Redactor.for_settings(settings)
        self._limiter = FetchLimiter(FETCH_PERMITS)
        self._headers = {name: value.reveal() for name, value in settings.headers}
        self._auth: httpx.Auth | None = None
        if settings.auth == "basic":
            self._auth = httpx.BasicAuth(settings.basic_user, settings.basic_password.reveal())
        elif settings.auth == "bearer":
            self._headers["Authorization"] = f"Bearer {settings.bearer_token.reveal()}"
        elif userinfo.username or userinfo.password:
            self._auth = httpx.BasicAuth(unquote(userinfo.username or ""), unquote(userinfo.password or ""))
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s),
            # The transport caps every socket operation at what is left of the call's budget; it
            # owns the TLS settings (a Client's verify= does not reach a transport passed in).
            transport=budget_transport(verify=self._verify(settings), limits=httpx.Limits(
                max_connections=FETCH_PERMITS, max_keepalive_connections=FETCH_PERMITS)),
            follow_redirects=True,
            # Prometheus gzips a 4.7 MB answer (100 series x 2048 points) in ~0.45 s on 2 cores but
            # sends it uncompressed in ~0.08 s: on the LAN/cluster links a data source uses,
            # compression costs more than it saves.
            headers={"User-Agent": "toto-forecast-datasource", "Accept-Encoding": "identity"},
        )

    @staticmethod
    def _verify(settings: PrometheusSettings) -> ssl.SSLContext | bool:
        if settings.tls_skip_verify:
            return False
        if not settings.tls_ca_cert.strip():
            return True
        try:
            return ssl.create_default_context(cadata=settings.tls_ca_cert)
        except (ssl.SSLError, ValueError) as exc:
            raise bad_request(
                f"data source setting tlsCACert is not a valid PEM certificate: {exc}"
            ) from None

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def api(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        budget: Budget,
        ctx: RequestContext,
        warnings: list[str] | None = None,
    ) -> Any:
        """One API call within `budget`; returns the `data` member or raises a downstream BackendError."""
        body, status = self.send(method, path, params, budget, ctx)
        if status in (401, 403):
            raise downstream(
                f"Prometheus at {self.url} rejected the credentials (HTTP {status}); "
                "check the data source's authentication settings",
                502,
            )
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
            if status == 404:
                raise NotFound(
                    f"Prometheus at {self.url} answered HTTP 404 for {path}; "
                    "is the URL the root of a Prometheus API?",
                    502,
                    "downstream",
                )
            if status >= 400:
                raise downstream(
                    f"Prometheus at {self.url} answered HTTP {status}: {self._snippet(body)}",
                    504 if status == 504 else 502,
                )
            raise self.bad_response("the answer is not Prometheus API JSON")
        if doc["status"] == "error" or status >= 400:
            kind = str(doc.get("errorType", ""))
            text = self.redact(str(doc.get("error", "") or f"HTTP {status}"))
            if kind == "bad_data" or status == 400:
                raise downstream(f"Prometheus rejected the query: {text}", 400)
            if kind == "timeout" or (status in (503, 504) and "timeout" in text.lower()):
                raise downstream(f"Prometheus timed out evaluating the query: {text}", 504)
            if kind == "execution" or status == 422:
                raise downstream(f"Prometheus could not execute the query: {text}", 422)
            raise downstream(
                f"Prometheus at {self.url} answered HTTP {status} ({kind or 'error'}): {text}", 502
            )
        if warnings is not None:
            warnings.extend(self.redact(str(w)) for w in doc.get("warnings") or [])
        return doc.get("data")

    def send(
        self, method: str, path: str, params: Mapping[str, str] | None, budget: Budget, ctx: RequestContext
    ) -> tuple[bytes, int]:
        """Send and read the whole body within `budget` (calls of one fetch share it), within one
        of the data source's fetch permits."""
        if budget.remaining() <= 0:
            raise self._timeout(BudgetExceeded(budget))
        form = method == "POST"
        log.debug("prometheus %s %s %s", method, path, {k: v for k, v in (params or {}).items()})
        try:
            req = self._client.build_request(
                method,
                self._base + path,
                params=[*self._base_params, *(() if form else (params or {}).items())] or None,
                data=params if form else None,
                headers=self._headers,
            )
            with self._limiter.permit(budget, ctx):
                fetched = fetch_within(self._client, req, budget, ctx, max_body_bytes=MAX_BODY_BYTES,
                                       auth=self._auth or httpx.USE_CLIENT_DEFAULT)
            return fetched.body, fetched.status
        except BudgetExceeded as exc:
            raise self._timeout(exc) from None
        except FetchPermitsExhausted as exc:
            raise downstream(f"Prometheus at {self.url} is busy: {exc}", 504) from None
        except BodyTooLarge:
            raise downstream(
                f"Prometheus at {self.url} sent more than {MAX_BODY_BYTES >> 20} MiB; "
                "narrow the selector or use a coarser step",
                502,
            ) from None
        except httpx.TimeoutException:
            raise self._timeout(BudgetExceeded(budget)) from None
        except httpx.ConnectError as exc:
            raise downstream(f"cannot reach Prometheus at {self.url}: {self._reason(exc)}", 502) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise downstream(
                f"request to Prometheus at {self.url} failed: {self._reason(exc)}", 502
            ) from None

    def _timeout(self, exc: BudgetExceeded) -> BackendError:
        return downstream(f"Prometheus at {self.url} {exc}", 504)

    def bad_response(self, why: str) -> BackendError:
        return downstream(f"Prometheus at {self.url} sent an invalid response: {why}", 502)

    def _reason(self, exc: Exception) -> str:
        text = str(exc)
        low = text.lower()
        if "refused" in low:
            return "connection refused"
        if "certificate" in low or "ssl" in low or "tls" in low:
            return "TLS handshake failed (check the CA certificate or skip-verify setting): " + self.redact(
                text.split("] ")[-1]
            )
        if "name or service not known" in low or "nodename nor servname" in low or "name resolution" in low:
            return "host name not found"
        return self.redact(re.sub(r"^\[Errno -?\d+\]\s*", "", text)) or type(exc).__name__

    def _snippet(self, body: bytes) -> str:
        text = body[:300].decode("utf-8", "replace").strip().replace("\n", " ")
        return self.redact(text) or "(empty body)"

    def redact(self, text: str) -> str:
        """This data source's secrets (and their Basic/percent forms) and secret-shaped text, such
        as an upstream echoing the request's `?token=` or `Authorization: Basic` back."""
        return self._redactor(text)

