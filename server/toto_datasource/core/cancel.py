"""Cancellation of one request: when its gRPC call ends early, the forecasts it queued are
dropped unrun.

The gRPC edge registers `Cancellation.cancel` with `context.add_callback`; every future the
request's query types get from a forecaster is tracked here (`RequestContext.track`, called by
`querytypes.base.SubmitRequest.forecast`, the one way a query type reaches a forecaster). A
wrapper that shares one computation between requests (the result cache) hands each request a
proxy future, so cancelling one request never cancels another's computation.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any


class Cancellation:
    def __init__(self) -> None:
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()
        self.cancelled = False

    def track[F: Future[Any]](self, future: F) -> F:
        """Cancel `future` with the request (at once when the request is already cancelled)."""
        with self._lock:
            if not self.cancelled:
                self._futures.append(future)
                return future
        future.cancel()
        return future

    def cancel(self) -> None:
        """Cancel every future still waiting (those already running finish, unobserved)."""
        with self._lock:
            self.cancelled = True
            futures, self._futures = self._futures, []
        for f in futures:
            f.cancel()
