"""Cancellation scopes: when a gRPC call ends early, the forecasts it queued are dropped unrun.

A gRPC handler opens a scope and registers `scope.cancel` with `context.add_callback`; every
future a forecaster hands out on that thread (`track`) is cancelled when the call goes away.
Wrappers that share one computation between callers (the result cache) create their inner
futures `untracked` and track their own per-caller proxies instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

_local = threading.local()


class CancelScope:
    def __init__(self) -> None:
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()
        self.cancelled = False

    def add(self, future: Future[Any]) -> None:
        with self._lock:
            if self.cancelled:
                future.cancel()
            else:
                self._futures.append(future)

    def cancel(self) -> None:
        """Cancel every future still waiting (those already running finish, unobserved)."""
        with self._lock:
            self.cancelled = True
            futures, self._futures = self._futures, []
        for f in futures:
            f.cancel()


@contextlib.contextmanager
def cancel_scope() -> Iterator[CancelScope]:
    scope = CancelScope()
    previous = getattr(_local, "scope", None)
    _local.scope = scope
    try:
        yield scope
    finally:
        _local.scope = previous


@contextlib.contextmanager
def untracked() -> Iterator[None]:
    """Futures created inside are internal (a wrapper tracks its own); do not register them."""
    previous = getattr(_local, "scope", None)
    _local.scope = None
    try:
        yield
    finally:
        _local.scope = previous


def track(future: Future[Any]) -> Future[Any]:
    scope: CancelScope | None = getattr(_local, "scope", None)
    if scope is not None:
        scope.add(future)
    return future
