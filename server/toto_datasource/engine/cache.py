"""Result cache in front of any Forecaster: identical requests within a refresh share one forecast.

Key: (forecaster name, sha256 of the context's bytes and shape, horizon, joint); the decoding
mode follows from the horizon (engine/decoding.py). A dashboard panel and an alert rule over
the same series, or several browsers on one dashboard, ask identical questions within a
refresh interval; the second and later get the first answer (also while it is still being
computed). Entries live `ttl_s` seconds from the submission that computed them; at most
`max_entries` are kept, least recently used first out.
Failures are never cached. Each caller gets its own future: cancelling one caller's future
cancels the shared computation only when no other caller still waits for it.

A caller joins a computation still in flight whatever its deadline; should the computation be
dropped at its first caller's deadline (a 504), a joiner whose own deadline is later submits
again. Why: refusing to join a computation with an earlier deadline — every later arrival with the
same timeout — made each of 160 clients watching 20 panels its own job under load; 250 one-series
jobs queued at once and some waited out the whole burst (bench/load_mixed.py --panels 20).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, InvalidStateError
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import metrics
from ..core.errors import BackendError
from .types import Forecaster, ForecastJob, ForecastOutput

DEFAULT_TTL_S = 30.0
DEFAULT_MAX_ENTRIES = 256

CacheKey = tuple[str, str, int, bool]


@dataclass(eq=False)
class _Entry:
    future: Future[ForecastOutput]
    expires: float
    deadline: float | None
    waiters: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def fingerprint(context: np.ndarray) -> str:
    data = np.ascontiguousarray(context, dtype=np.float64)
    h = hashlib.sha256(str(data.shape).encode())
    h.update(data.tobytes())
    return h.hexdigest()


class CachingForecaster:
    def __init__(
        self,
        inner: Forecaster,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def key(self, job: ForecastJob) -> CacheKey:
        return (self.inner.name, fingerprint(job.context), job.horizon, job.joint)

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        if self.ttl_s <= 0 or self.max_entries <= 0:
            return self.inner.submit(job)
        key = self.key(job)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not self._usable(entry, now):
                del self._entries[key]
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                metrics.CACHE_HITS.inc()
            else:
                inner = self.inner.submit(job)  # raises (queue full, shutting down): nothing cached
                entry = _Entry(inner, now + self.ttl_s, job.deadline)
                self._entries[key] = entry
                self.misses += 1
                inner.add_done_callback(lambda f, k=key, e=entry: self._settled(k, e, f))
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            with entry.lock:
                entry.waiters += 1
        return self._proxy(key, entry, job)

    def _usable(self, entry: _Entry, now: float) -> bool:
        f = entry.future
        return not (now >= entry.expires or f.cancelled() or (f.done() and f.exception() is not None))

    def _retry(self, job: ForecastJob, proxy: Future[ForecastOutput]) -> None:
        """The shared computation was dropped at an earlier caller's deadline: submit ours."""
        try:
            again = self.submit(job)
        except Exception as exc:  # queue full, shutting down: this caller's answer
            proxy.set_exception(exc)
            return
        proxy.add_done_callback(lambda p: again.cancel() if p.cancelled() else None)

        def transfer(f: Future[ForecastOutput]) -> None:
            with contextlib.suppress(InvalidStateError):  # the caller cancelled meanwhile
                if f.cancelled():
                    proxy.cancel()
                elif (exc := f.exception()) is not None:
                    proxy.set_exception(exc)
                else:
                    proxy.set_result(f.result())

        again.add_done_callback(transfer)

    def _settled(self, key: CacheKey, entry: _Entry, f: Future[ForecastOutput]) -> None:
        if f.cancelled() or f.exception() is not None:
            self._evict(key, entry)

    def _evict(self, key: CacheKey, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]

    def _proxy(self, key: CacheKey, entry: _Entry, job: ForecastJob) -> Future[ForecastOutput]:
        proxy: Future[ForecastOutput] = Future()

        def deliver(f: Future[ForecastOutput]) -> None:
            exc = None if f.cancelled() else f.exception()
            if (isinstance(exc, BackendError) and exc.status == 504 and job.deadline != entry.deadline
                    and (job.deadline is None or job.deadline > time.monotonic())):
                if not proxy.done():
                    self._retry(job, proxy)
                return
            if not proxy.set_running_or_notify_cancel():
                return
            if f.cancelled():
                proxy.set_exception(CancelledError())
            elif exc is not None:
                proxy.set_exception(exc)
            else:
                out = f.result()
                proxy.set_result(replace(out, quantiles=out.quantiles.copy()))

        def on_proxy_done(p: Future[ForecastOutput]) -> None:
            if not p.cancelled():
                return
            with entry.lock:
                entry.waiters -= 1
                last = entry.waiters <= 0
            if last and not entry.future.done():
                entry.future.cancel()  # nobody waits any more: let the scheduler drop it
                self._evict(key, entry)

        proxy.add_done_callback(on_proxy_done)
        entry.future.add_done_callback(deliver)
        return proxy

    def describe(self) -> dict[str, Any]:
        return {
            **self.inner.describe(),
            "cache": {
                "entries": len(self._entries),
                "hits": self.hits,
                "misses": self.misses,
                "ttlSeconds": self.ttl_s,
                "maxEntries": self.max_entries,
            },
        }

    def clear(self) -> None:
        """Forget every entry (their outputs and the futures that hold them)."""
        with self._lock:
            self._entries.clear()
