"""A total time budget per upstream HTTP call (connect + TLS + headers + body), and a bound on
concurrent fetches per data source.

Why: httpx's timeouts are per socket operation. An upstream that sends its response headers at
1 byte/s answers every read within a 5 s timeout, so in issue 13 the error came after 71 s (and
under a 30 s gRPC deadline every call ended DEADLINE_EXCEEDED instead of a per-query 504). A
check between body chunks cannot help either: the headers never finish.

How: `budget_transport()` gives an httpx transport whose network streams cap every connect,
read and write at what is left of the budget of the call running on that thread (a
thread-local deadline set by `fetch_within`); past the deadline the next socket operation raises
httpcore's timeout, which httpx turns into `httpx.TimeoutException`, which becomes
`BudgetExceeded` with a sentence saying which limit ended it. Sync httpx runs a request on the
caller's thread, so the thread-local is the request's own.

Budget = min(the data source's timeout, the gRPC deadline minus a margin for turning the answer
into frames), so a per-query 504 always reaches Grafana before its deadline.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from ..core.cpu import released

DEADLINE_MARGIN_S = 1.0  # kept back from the gRPC deadline: frames, encoding, the response itself
MIN_MARGIN_FRACTION = 0.5  # with less than 2 x margin left, spend half of what is left
DEFAULT_FETCHES_PER_SOURCE = 16

_local = threading.local()


@dataclass(frozen=True)
class Budget:
    """Seconds an upstream call may take in total, the monotonic deadline, and why that much."""

    seconds: float
    deadline: float
    reason: str

    def remaining(self, clock: Callable[[], float] = time.monotonic) -> float:
        return self.deadline - clock()


def budget_for(
    timeout_s: float,
    request_deadline: float | None,
    *,
    margin_s: float = DEADLINE_MARGIN_S,
    clock: Callable[[], float] = time.monotonic,
) -> Budget:
    """min(timeout_s, the request's deadline minus a margin); `request_deadline` is monotonic."""
    now = clock()
    seconds, reason = timeout_s, f"the data source's timeout of {timeout_s:g}s"
    if request_deadline is not None:
        left = request_deadline - now
        usable = max(left - margin_s, left * MIN_MARGIN_FRACTION, 0.0)
        if usable < seconds:
            seconds, reason = usable, f"what was left ({usable:.1f}s) of Grafana's deadline for the request"
    return Budget(seconds, now + seconds, reason)


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


def _capped(timeout: float | None) -> float | None:
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the call's time budget is spent")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _capped(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _capped(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None):  # type: ignore[no-untyped-def]
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _capped(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_tcp(host, port, _capped(timeout), local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _capped(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def budget_transport(**kwargs: Any) -> httpx.HTTPTransport:
    """httpx.HTTPTransport(**kwargs) whose socket operations respect `fetch_within`'s deadline.

    httpx has no public hook for httpcore's network backend; the pool's `_network_backend` is
    replaced (httpx is pinned <0.29; tests/hardening/test_http_budget.py fails if this moves)."""
    transport = httpx.HTTPTransport(**kwargs)
    pool = transport._pool
    inner = getattr(pool, "_network_backend", None)
    if inner is None:
        raise RuntimeError("httpx/httpcore changed: no _network_backend on the connection pool")
    pool._network_backend = _Backend(inner)  # type: ignore[attr-defined]
    return transport


@contextlib.contextmanager
def _deadline(deadline: float) -> Iterator[None]:
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline if previous is None else min(previous, deadline)
    try:
        yield
    finally:
        _local.deadline = previous


@dataclass
class Fetched:
    status: int
    headers: httpx.Headers
    body: bytes


def fetch_within(
    client: httpx.Client,
    request: httpx.Request,
    budget: Budget,
    *,
    max_body_bytes: int,
    auth: Any = httpx.USE_CLIENT_DEFAULT,
    clock: Callable[[], float] = time.monotonic,
) -> Fetched:
    """Send and read the whole body within the budget. The client must use `budget_transport()`
    for the header phase to be bounded; the body is bounded either way. `clock` is the one the
    budget's deadline is measured on (a source's injectable clock); the transport's sockets use
    the same remaining time on time.monotonic.

    Raises BudgetExceeded, BodyTooLarge, or httpx errors other than timeouts (connect refused,
    protocol errors) for the caller to word."""
    left = budget.remaining(clock)
    if left <= 0:
        raise BudgetExceeded(budget)
    request.extensions["timeout"] = httpx.Timeout(max(left, 0.001)).as_dict()
    with _deadline(time.monotonic() + left), released():  # no CPU slot held while the upstream answers
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
                if budget.remaining(clock) <= 0:
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
    def permit(self, budget: Budget, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
        with released():
            got = self._sem.acquire(timeout=max(0.0, budget.remaining(clock)))
        if not got:
            raise FetchPermitsExhausted(self.limit, budget)
        try:
            yield
        finally:
            self._sem.release()


class FetchLimiters:
    """One FetchLimiter per data source key (uid), created on first use."""

    def __init__(self, limit: int = DEFAULT_FETCHES_PER_SOURCE) -> None:
        self.limit = limit
        self._by_key: dict[object, FetchLimiter] = {}
        self._lock = threading.Lock()

    def __call__(self, key: object) -> FetchLimiter:
        with self._lock:
            limiter = self._by_key.get(key)
            if limiter is None:
                limiter = self._by_key[key] = FetchLimiter(self.limit)
            return limiter
