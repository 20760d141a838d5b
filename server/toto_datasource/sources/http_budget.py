"""A total time budget per upstream HTTP call (connect + TLS + headers + body), and a bound on
concurrent fetches per data source.

Why: httpx's timeouts are per socket operation. An upstream that sends its response headers at
1 byte/s answers every read within a 5 s timeout, so the error came after 71 s (and under a
30 s gRPC deadline every call ended DEADLINE_EXCEEDED instead of a per-query 504). A check
between body chunks cannot help either: the headers never finish.

How: `fetch_within` puts the call's `Budget` (from `RequestContext.budget`: min(the data
source's timeout, what is left of the request's deadline)) into the request's own httpx timeout
extension; the network streams of `budget_transport()` read it on every connect, read and write
and cap the operation at what is left of the budget. Past it the next socket operation raises
httpcore's timeout, which httpx turns into `httpx.TimeoutException`, which becomes
`BudgetExceeded` with a sentence saying which limit ended it. The budget travels with the
request, so no thread-local state is needed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from ..core.request import Budget, RequestContext

DEFAULT_FETCHES_PER_SOURCE = 16


class BudgetExceeded(Exception):
    """The upstream did not finish within the budget; `str()` is a sentence for a 504."""

    def __init__(self, budget: Budget, phase: str = "answer") -> None:
        self.budget = budget
        self.phase = phase
        super().__init__(f"did not {phase} within {budget.seconds:.1f}s ({budget.reason})")


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"sent more than {limit >> 20} MiB")


# ---- the transport ------------------------------------------------------------------------


class _Remaining:
    """A timeout value that is what is left of a budget whenever a socket operation reads it."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget

    def __float__(self) -> float:
        return max(0.001, self.budget.remaining())


def _capped(timeout: Any) -> float | None:
    if not isinstance(timeout, _Remaining):
        return timeout
    left = timeout.budget.remaining()
    if left <= 0:
        raise httpcore.ReadTimeout("the call's time budget is spent")
    return left


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: Any = None) -> bytes:
        return self._inner.read(max_bytes, _capped(timeout))

    def write(self, buffer: bytes, timeout: Any = None) -> None:
        self._inner.write(buffer, _capped(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: Any = None):  # type: ignore[no-untyped-def]
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _capped(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: Any = None,
                    local_address: str | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(host, port, _capped(timeout), local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: Any = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _capped(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def budget_transport(**kwargs: Any) -> httpx.HTTPTransport:
    """httpx.HTTPTransport(**kwargs) whose socket operations respect each request's budget.

    httpx has no public hook for httpcore's network backend; the pool's `_network_backend` is
    replaced (httpx is pinned <0.29; tests/hardening/test_http_budget.py fails if this moves)."""
    transport = httpx.HTTPTransport(**kwargs)
    pool = transport._pool
    inner = getattr(pool, "_network_backend", None)
    if inner is None:
        raise RuntimeError("httpx/httpcore changed: no _network_backend on the connection pool")
    pool._network_backend = _Backend(inner)  # type: ignore[attr-defined]
    return transport


@dataclass
class Fetched:
    status: int
    headers: httpx.Headers
    body: bytes


def fetch_within(
    client: httpx.Client,
    request: httpx.Request,
    budget: Budget,
    ctx: RequestContext,
    *,
    max_body_bytes: int,
    auth: Any = httpx.USE_CLIENT_DEFAULT,
) -> Fetched:
    """Send and read the whole body within the budget, the request's CPU slot given back while
    the upstream answers. The client must use `budget_transport()` for the header phase to be
    bounded; the body is bounded either way.

    Raises BudgetExceeded, BodyTooLarge, or httpx errors other than timeouts (connect refused,
    protocol errors) for the caller to word."""
    left = budget.remaining()
    if left <= 0:
        raise BudgetExceeded(budget)
    remaining = _Remaining(budget)
    request.extensions["timeout"] = {"connect": remaining, "read": remaining, "write": remaining,
                                     "pool": left}
    with ctx.released():
        try:
            response = client.send(request, stream=True, auth=auth)
        except httpx.TimeoutException:
            raise BudgetExceeded(budget) from None
        try:
            parts: list[bytes] = []
            size = 0
            for part in response.iter_bytes():
                size += len(part)
                if size > max_body_bytes:
                    raise BodyTooLarge(max_body_bytes)
                parts.append(part)
                if budget.remaining() <= 0:
                    raise BudgetExceeded(budget, "finish its answer")
            return Fetched(response.status_code, response.headers, b"".join(parts))
        except httpx.TimeoutException:
            raise BudgetExceeded(budget, "finish its answer") from None
        finally:
            response.close()


# ---- concurrent fetches per data source --------------------------------------------------


class FetchPermitsExhausted(Exception):
    def __init__(self, limit: int, budget: Budget) -> None:
        self.limit = limit
        super().__init__(
            f"{limit} requests to this data source were already in flight and none finished within "
            f"{budget.seconds:.1f}s ({budget.reason})"
        )


@dataclass
class FetchLimiter:
    """At most `limit` concurrent upstream fetches; a caller waits for a permit within its budget.

    Why: 80 queries on one stuck upstream each held a connection and a thread; with a bound the
    81st query waits (or gets its 504) instead of opening connection 81."""

    limit: int = DEFAULT_FETCHES_PER_SOURCE
    _sem: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self._sem = threading.BoundedSemaphore(self.limit)

    @contextlib.contextmanager
    def permit(self, budget: Budget, ctx: RequestContext) -> Iterator[None]:
        with ctx.released():
            got = self._sem.acquire(timeout=max(0.0, budget.remaining()))
        if not got:
            raise FetchPermitsExhausted(self.limit, budget)
        try:
            yield
        finally:
            self._sem.release()
