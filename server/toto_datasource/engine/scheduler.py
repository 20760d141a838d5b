"""Dynamic batching: many concurrent ForecastJobs, few `forecast()` calls, one inference thread.

gRPC handler threads only prepare inputs and enqueue. The inference thread takes whatever is
queued when the device becomes free (so a lone request never waits for company), optionally
lingers up to `window_s` for more while traffic is concurrent, splits every job into rows (one
per independent series, one per joint group), groups compatible rows (variates per row,
context-length bucket, horizon bucket, decoding mode), left-pads each group to one length
(exact for Toto), runs one call per chunk under the memory cap and slices the rows back.
Toto's rows are independent, so batched and unbatched answers agree to ~1e-6.
Block decoding keeps state on the model; one thread per model makes it safe.

Cancellation: a job whose future is cancelled (the gRPC call went away: see `cancel_scope`)
or whose deadline passed before its rows ran is dropped, never computed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import metrics
from ..errors import QueryError
from .prepare import PreparedContext, pad_to, prepare_context
from .types import PATCH, ForecastJob, ForecastOutput

log = logging.getLogger(__name__)

# values (B, V, L) f32, mask (B, V, L) bool, series_ids (B, V), horizon, has_missing, block → (9, B, V, H)
BatchRunner = Callable[[np.ndarray, np.ndarray, np.ndarray, int, bool, int | None], np.ndarray]


class DeadlineExceeded(QueryError):
    def __init__(self) -> None:
        super().__init__("the request's deadline passed before the forecast ran", 504, "plugin")


# -- cancellation scopes ------------------------------------------------------------------
# A gRPC handler opens a scope, registers scope.cancel with context.add_callback, and every
# future a Forecaster hands out on that thread is cancelled when the call ends early.
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


# -- jobs and rows ------------------------------------------------------------------------
def bucket(length: int, horizon: int) -> tuple[int, int]:
    """(context-length bucket, horizon bucket): powers of two in patches."""
    return (
        math.ceil(math.log2(max(1, math.ceil(length / PATCH)))),
        math.ceil(math.log2(max(1, math.ceil(horizon / PATCH)))),
    )


@dataclass(eq=False)
class _Pending:
    job: ForecastJob
    rows: list[PreparedContext]  # one row per independent series, or one row for a joint group
    future: Future[ForecastOutput]
    enqueued: float = field(default_factory=time.monotonic)
    follows_closely: bool = False  # another job was submitted within the batching window
    started: bool = False
    results: list[np.ndarray | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.rows)

    def start(self, now: float) -> bool:
        """Mark running before its first row runs; False when the caller has gone."""
        if self.future.done():
            return False
        if self.started:
            return True
        if self.job.deadline is not None and self.job.deadline < now:
            if self.future.set_running_or_notify_cancel():
                self.future.set_exception(DeadlineExceeded())
            metrics.DROPPED.inc()
            return False
        if not self.future.set_running_or_notify_cancel():
            metrics.DROPPED.inc()
            return False
        self.started = True
        metrics.QUEUE_WAIT.observe(now - self.enqueued)
        return True

    def fail(self, exc: BaseException) -> None:
        if self.future.done():
            return
        if not self.started and not self.future.set_running_or_notify_cancel():
            return
        self.started = True
        self.future.set_exception(exc)


@dataclass(eq=False)
class _Row:
    pending: _Pending
    index: int

    @property
    def prepared(self) -> PreparedContext:
        return self.pending.rows[self.index]

    @property
    def key(self) -> tuple[int, int, int, int | None]:
        ctx_bucket, horizon_bucket = bucket(self.prepared.length, self.pending.job.horizon)
        return (self.prepared.values.shape[0], ctx_bucket, horizon_bucket, self.pending.job.decode_block_size)


@dataclass(frozen=True)
class BatchLimits:
    """max_cells bounds rows × variates × padded length per call (memory cap); max_queue bounds
    the number of jobs waiting (backpressure instead of unbounded memory); window_s is the
    longest the inference thread lingers for more jobs while traffic is concurrent."""

    max_cells: int = 128 * 2048
    max_queue: int = 1024
    window_s: float = 0.0


class BatchingForecaster:
    """A Forecaster that batches concurrent jobs onto one model through one thread."""

    def __init__(
        self,
        name: str,
        runner: BatchRunner,
        context_length: int = 8192,
        limits: BatchLimits | None = None,
        info: dict[str, Any] | None = None,
    ):
        self.name = name
        self.info = info or {}
        self._runner = runner
        self._context_length = context_length
        self.limits = limits or BatchLimits()
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=self.limits.max_queue)
        self._closed = threading.Event()
        self._last_submit = -math.inf
        self.calls = 0
        self.rows_run = 0
        self._thread = threading.Thread(target=self._loop, name=f"inference-{name}", daemon=True)
        self._thread.start()

    # -- handler side ---------------------------------------------------------------------
    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        if self._closed.is_set():
            raise QueryError("the forecast engine is shutting down", 503)
        context_length = min(self._context_length, job.context.shape[1])
        if job.joint:
            rows = [prepare_context(job.context, context_length)]
        else:
            rows = [prepare_context(row[None, :], context_length) for row in job.context]
        now = time.monotonic()
        pending = _Pending(
            job, rows, Future(), enqueued=now, follows_closely=now - self._last_submit <= self.limits.window_s
        )
        self._last_submit = now
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            metrics.REJECTED.inc()
            raise QueryError(
                f"the forecast queue is full ({self.limits.max_queue} jobs waiting); "
                "retry shortly, or reduce the number of series per query",
                503,
            ) from None
        metrics.QUEUE_DEPTH.set(self._queue.qsize())
        return track(pending.future)

    def describe(self) -> dict[str, Any]:
        return {
            **self.info,
            "name": self.name,
            "queued": self._queue.qsize(),
            "calls": self.calls,
            "rows": self.rows_run,
        }

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=5)
        while True:  # whatever is still queued will never run: tell its callers
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.fail(QueryError("the forecast engine shut down before this job ran", 503))

    # -- inference thread -----------------------------------------------------------------
    def _drain(self, batch: list[_Pending]) -> bool:
        """Move everything queued now into batch; False when the stop sentinel was seen."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return True
            if item is None:
                return False
            batch.append(item)

    def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch = [first]
        running = self._drain(batch)
        window = self.limits.window_s
        if not running or window <= 0 or not any(p.follows_closely for p in batch):
            return batch, running  # the device is idle and nobody else is coming: go now
        until = first.enqueued + window
        while running:
            remaining = until - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                running = False
                break
            batch.append(item)
            running = self._drain(batch)
        return batch, running

    def _loop(self) -> None:
        running = True
        while running and not self._closed.is_set():
            first = self._queue.get()
            if first is None:
                return
            batch, running = self._collect(first)
            metrics.QUEUE_DEPTH.set(self._queue.qsize())
            try:
                self._run_batch(batch)
            except BaseException as exc:  # never let the inference thread die with callers waiting
                log.exception("batch failed")
                for p in batch:
                    p.fail(
                        QueryError(f"internal error in the forecast engine: {type(exc).__name__}: {exc}", 500)
                    )
        # the sentinel arrived inside a batch: fail what may still be queued (close() drains too)

    def _run_batch(self, batch: list[_Pending]) -> None:
        groups: dict[tuple[int, int, int, int | None], list[_Row]] = {}
        for p in batch:
            if p.future.cancelled():
                metrics.DROPPED.inc()
                continue
            for i in range(len(p.rows)):
                row = _Row(p, i)
                groups.setdefault(row.key, []).append(row)
        for group in groups.values():
            self._run_group(group)

    def _chunks(self, rows: list[_Row]) -> list[list[_Row]]:
        """Split a group under the memory cap, counting the padded batch rows × variates × length."""
        chunks: list[list[_Row]] = [[]]
        longest = 0
        for r in rows:
            length = max(longest, r.prepared.length)
            variates = r.prepared.values.shape[0]
            if chunks[-1] and (len(chunks[-1]) + 1) * variates * length > self.limits.max_cells:
                chunks.append([])
                length = r.prepared.length
            chunks[-1].append(r)
            longest = length
        return chunks

    def _run_group(self, group: list[_Row]) -> None:
        for chunk in self._chunks(group):
            now = time.monotonic()
            live = [r for r in chunk if r.pending.start(now)]
            if live:
                self._run_chunk(live)

    def _run_chunk(self, chunk: list[_Row]) -> None:
        chunk = [r for r in chunk if not r.pending.future.done()]  # a sibling row may have failed it
        if not chunk:
            return
        try:
            quantiles = self._forecast(chunk)
        except QueryError as exc:
            for r in chunk:
                r.pending.fail(exc)
            return
        except Exception as exc:
            if _is_oom(exc):
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    log.warning("out of memory on a batch of %d rows; splitting and retrying", len(chunk))
                    self._run_chunk(chunk[:half])
                    self._run_chunk(chunk[half:])
                    return
                err = QueryError(
                    "the model ran out of memory on a single series of this size; "
                    "shorten contextLength or use fewer series per joint group",
                    503,
                )
            else:
                log.exception("forecast call failed")
                err = QueryError(f"the model failed on this input: {type(exc).__name__}: {exc}", 500)
            for r in chunk:
                r.pending.fail(err)
            return
        for b, r in enumerate(chunk):
            p = r.pending
            if p.future.done():
                continue
            p.results[r.index] = quantiles[:, b, :, : p.job.horizon]
            if all(q is not None for q in p.results):
                out = np.ascontiguousarray(np.concatenate(p.results, axis=1))  # type: ignore[arg-type]
                p.results = []
                p.future.set_result(ForecastOutput(out, self.name))

    def _forecast(self, chunk: list[_Row]) -> np.ndarray:
        rows = [r.prepared for r in chunk]
        length = max(r.length for r in rows)
        padded = [pad_to(r, length) for r in rows]
        values = np.stack([r.values for r in padded])
        mask = np.stack([r.mask for r in padded])
        variates = values.shape[1]
        series_ids = np.zeros((len(rows), variates), dtype=np.int64)
        horizon = max(r.pending.job.horizon for r in chunk)
        complete = bool(mask.all())  # no padding, no gaps: the cheaper (Flash-eligible) path is exact
        started = time.perf_counter()
        out = self._runner(
            values, mask, series_ids, horizon, not complete, chunk[0].pending.job.decode_block_size
        )
        elapsed = time.perf_counter() - started
        self.calls += 1
        self.rows_run += len(rows)
        metrics.BATCH_ROWS.observe(len(rows))
        metrics.INFERENCE_SECONDS.observe(elapsed)
        return out


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"
