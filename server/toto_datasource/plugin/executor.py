"""A bounded thread pool whose idle workers exit, for the gRPC server.

Why not ThreadPoolExecutor: its threads never end, so after one burst of hostile traffic the
process kept 79 threads (14 before) for good. grpcio accepts any
`concurrent.futures.Executor`; this one starts a worker only when no idle worker can take the
job (up to `max_workers`) and lets a worker exit after `idle_s` without work, down to `min_workers`.
`on_idle` runs (on the exiting worker, outside the lock) when the pool is back at `min_workers`:
the end of a burst, when the server trims the heap (plugin/memory.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class ElasticThreadPool(Executor):
    def __init__(
        self, max_workers: int, *, min_workers: int = 2, idle_s: float = 30.0, name: str = "grpc",
        on_idle: Callable[[], object] | None = None,
    ) -> None:
        self.on_idle = on_idle
        self.max_workers = max_workers
        self.min_workers = min(min_workers, max_workers)
        self.idle_s = idle_s
        self._name = name
        self._jobs: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = deque()
        self._cond = threading.Condition()
        self._workers = 0
        self._idle = 0
        self._shutdown = False
        self._serial = 0

    @property
    def threads(self) -> int:
        return self._workers

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            self._jobs.append((future, fn, args, kwargs))
            if self._idle >= len(self._jobs):
                self._cond.notify()
            elif self._workers < self.max_workers:
                self._workers += 1
                self._serial += 1
                threading.Thread(
                    target=self._work, name=f"{self._name}-{self._serial}", daemon=True
                ).start()
            else:
                self._cond.notify()
        return future

    def _work(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the future, as ThreadPoolExecutor does
                future.set_exception(exc)
            del future, fn, args, kwargs, job

    def _next_job(self) -> tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None:
        """The next job, or None when this worker is to exit (shutdown, or idle beyond min_workers)."""
        settled = False
        with self._cond:
            while not self._jobs:
                if self._shutdown:
                    self._workers -= 1
                    return None
                self._idle += 1
                woke = self._cond.wait(self.idle_s)
                self._idle -= 1
                if not woke and not self._jobs and self._workers > self.min_workers:
                    self._workers -= 1
                    settled = self._workers == self.min_workers
                    break
            else:
                return self._jobs.popleft()
        if settled and self.on_idle is not None:
            with contextlib.suppress(Exception):  # housekeeping must not raise into a dying worker
                self.on_idle()
        return None

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                while self._jobs:
                    self._jobs.popleft()[0].cancel()
            self._cond.notify_all()
