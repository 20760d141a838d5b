"""Dynamic batching: many concurrent ForecastJobs, few model calls, one inference thread.

gRPC handler threads only prepare inputs and enqueue. The inference thread takes whatever is
queued when the device becomes free (so a lone request never waits for company, and jobs that
arrive during a call join the next one), splits every job into rows (one per independent
series, one per joint group), groups compatible rows (engine/pending.py),
left-pads each group to one length (exact for Toto), runs one PreparedBatch per call under the
memory cap through the runtime's runner and slices the rows back. Calls go smallest job first
(`_loop`), so interactive queries are not held behind bulk ones, except that a job that has waited
half its deadline goes first, so bulk and alert queries are not starved. Toto's rows are independent,
so batched and unbatched answers agree to ~1e-6. The runner is any callable (in-process Toto, a
inference server): the scheduler knows nothing of the model. Block decoding keeps state on the
model; one thread per model makes it safe. A runtime whose runner is safe to call concurrently
(an inference server: each call is an RPC, and replicas serve calls in parallel) sets
`BatchLimits.concurrency` > 1: the scheduling thread then hands each call to a small pool and
picks the next call while up to that many are in flight. The in-process model keeps 1.

Cancellation: a job whose future is cancelled (the gRPC call went away: core/cancel.py)
or whose deadline passed before its rows ran is dropped, never computed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import metrics
from ..core.errors import BackendError
from .batch import BatchRunner, PreparedBatch
from .pending import DeadlineExceeded, PendingJob, Row, RowKey
from .prepare import pad_to, prepare_context
from .types import ForecastJob, ForecastOutput

__all__ = ["BatchLimits", "BatchingForecaster", "DeadlineExceeded"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchLimits:
    """max_cells bounds rows × variates × padded length per call (memory cap); max_queue bounds
    the number of jobs waiting (backpressure instead of unbounded memory); concurrency is how
    many model calls may be in flight at once (1 for an in-process model).

    slice_cells (0 = off) caps a call that carries only bulk rows while interactive jobs (at
    most SMALL_JOB_ROWS rows) have arrived within the last INTERACTIVE_RECENT_S: a model call
    cannot be preempted, so a panel that arrives just after a 32-row bulk call started waits
    for all of it (0.3-0.7 s for the 4m checkpoint on 2 cores, 10× the panel's own call)."""

    max_cells: int = 128 * 2048
    max_queue: int = 1024
    concurrency: int = 1
    slice_cells: int = 0


# A job this small is someone looking at a panel; bigger ones are bulk ("all hosts", alert
# rules over many series). Recent = within a second: dashboards refreshing together send
# their panels within a few hundred ms of each other.
SMALL_JOB_ROWS = 4
INTERACTIVE_RECENT_S = 1.0
# Smallest first starves a big job for as long as small ones keep coming: under 200 closed-loop
# dashboard clients the 32-series bulk queries waited 26 s (p50) of Grafana's 30 s. A job that
# has waited half its deadline (at most STARVATION_S) goes ahead of smaller ones, oldest first.
# With 15 s that overload gave bulk p50/p99 16.6/21.2 s (was 26.2/28.6, 1.4 s from a 504) for
# one-series 4.0/11.5 s (was 3.9/5.2). Not less: with 5 s it turned into first-come-first-served
# for everyone (one-series p50 11.0 s, bulk 12.2 s). bench/load_mixed.py --clients 200, 2026-12-02.
STARVATION_S = 15.0


def _starved(p: PendingJob, now: float) -> bool:
    limit = STARVATION_S
    if p.job.deadline is not None:
        limit = min(limit, (p.job.deadline - p.enqueued) / 2)
    return now - p.enqueued > limit


def serving_order(active: list[PendingJob], now: float) -> list[PendingJob]:
    """Jobs that have waited half their deadline oldest first, then the rest smallest first
    (oldest first among equals): a panel waits for at most one call, and no job waits out its
    deadline behind a stream of smaller ones."""
    starved: list[PendingJob] = []
    rest: list[PendingJob] = []
    for p in active:
        (starved if _starved(p, now) else rest).append(p)
    starved.sort(key=lambda p: p.enqueued)
    rest.sort(key=lambda p: (p.remaining, p.enqueued))
    return starved + rest


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
        self._queue: queue.Queue[PendingJob | None] = queue.Queue(maxsize=self.limits.max_queue)
        self._closed = threading.Event()
        self._last_small = -math.inf
        self.calls = 0
        self.rows_run = 0
        self._stats_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight = threading.BoundedSemaphore(max(1, self.limits.concurrency))
        if self.limits.concurrency > 1:
            self._pool = ThreadPoolExecutor(self.limits.concurrency, thread_name_prefix=f"call-{name}")
        self._thread = threading.Thread(target=self._loop, name=f"inference-{name}", daemon=True)
        self._thread.start()

    # -- handler side ---------------------------------------------------------------------
    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        if self._closed.is_set():
            raise BackendError("the forecast engine is shutting down", 503)
        context_length = min(self._context_length, job.context.shape[1])
        if job.joint:
            rows = [prepare_context(job.context, context_length)]
        else:
            rows = [prepare_context(row[None, :], context_length) for row in job.context]
        now = time.monotonic()
        pending = PendingJob(job, rows, Future(), enqueued=now)
        if len(rows) <= SMALL_JOB_ROWS:
            self._last_small = now
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            metrics.REJECTED.inc()
            raise BackendError(
                f"the forecast queue is full ({self.limits.max_queue} jobs waiting); "
                "retry shortly, or reduce the number of series per query",
                503,
            ) from None
        metrics.QUEUE_DEPTH.set(self._queue.qsize())
        return pending.future

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
        if self._pool is not None:  # calls in flight finish (each has its deadline) and deliver
            self._pool.shutdown(wait=False)
        while True:  # whatever is still queued will never run: tell its callers
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.fail(BackendError("the forecast engine shut down before this job ran", 503))

    # -- inference thread -----------------------------------------------------------------
    def _drain(self, batch: list[PendingJob]) -> bool:
        """Move everything queued now into batch; False when the stop sentinel was seen."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return True
            if item is None:
                return False
            batch.append(item)

    def _loop(self) -> None:
        """Rounds of one model call each. Between calls newcomers join, and the next call serves
        the job with the fewest rows left (oldest first), filled up to the memory cap with other
        jobs' rows of the same shape: a one-series panel waits for at most one call, never for a
        500-series bulk query to finish."""
        active: list[PendingJob] = []
        running = True
        while running and not self._closed.is_set():
            if self._pool is not None:
                # Wait for a free call slot BEFORE choosing the next call, so that work arriving
                # while every slot is busy joins it instead of queueing behind a tiny call.
                self._in_flight.acquire()
            if not active:
                first = self._queue.get()
                if first is None:
                    return
                active = [first]
            running = self._drain(active)  # everything queued meanwhile joins this round
            metrics.QUEUE_DEPTH.set(self._queue.qsize())
            active = self._live(active)
            chunk: list[Row] = []
            try:
                chunk = self._next_chunk(active)
                if chunk:
                    self._dispatch(chunk)  # the pool's call releases the slot
            except BaseException as exc:  # never let the inference thread die with callers waiting
                chunk = []
                log.exception("batch failed")
                for p in active:
                    p.fail(BackendError(
                        f"internal error in the forecast engine: {type(exc).__name__}: {exc}", 500
                    ))
                active = []
            if self._pool is not None and not chunk:
                self._in_flight.release()  # nothing was sent: the slot stays free
            active = [p for p in active if p.remaining and not p.future.done()]
        for p in active:
            p.fail(BackendError("the forecast engine shut down before this job ran", 503))

    def _dispatch(self, chunk: list[Row]) -> None:
        """Run the call here (one thread), or in the pool on the call slot `_loop` holds."""
        if self._pool is None:
            self._run_chunk(chunk)
            return
        try:
            self._pool.submit(self._run_pooled, chunk)
        except RuntimeError:  # the pool shut down (close() raced this call)
            self._in_flight.release()
            for r in chunk:
                r.pending.fail(BackendError("the forecast engine shut down before this job ran", 503))

    def _run_pooled(self, chunk: list[Row]) -> None:
        try:
            self._run_chunk(chunk)
        except BaseException as exc:  # never leave a caller waiting on a pool thread's failure
            log.exception("batch failed")
            for r in chunk:
                r.pending.fail(BackendError(
                    f"internal error in the forecast engine: {type(exc).__name__}: {exc}", 500
                ))
        finally:
            self._in_flight.release()

    @staticmethod
    def _live(active: list[PendingJob]) -> list[PendingJob]:
        live = []
        for p in active:
            if p.future.cancelled():
                metrics.DROPPED.inc()
            elif not p.future.done():
                live.append(p)
        return live

    def _next_chunk(self, active: list[PendingJob]) -> list[Row]:
        """The rows of the next call: the smallest job's shape class, smallest jobs first; room
        left under the cap goes to other jobs of a compatible class (same variates, horizon
        bucket and decoding; another length bucket, left-padded: exact), smallest first.

        Why the fill: with one length bucket per call, one-series panels of five context lengths
        took turns, each waiting for the four other buckets' calls (10 s under 200 clients)."""
        now = time.monotonic()
        order = serving_order(active, now)
        while order:
            key = order[0].key
            same = [Row(p, i) for p in order if p.key == key for i in range(p.next_row, len(p.rows))]
            other = [Row(p, i) for p in order if p.key != key and compatible(p.key, key)
                     for i in range(p.next_row, len(p.rows))]
            chunk = self._chunks(same + other)[0]
            if self._slice_bulk(chunk, now):
                chunk = self._chunks(chunk, self.limits.slice_cells)[0]
            live = [r for r in chunk if r.pending.start(now)]
            for r in chunk:
                r.pending.next_row = max(r.pending.next_row, r.index + 1)
            if live:
                return live
            order = [p for p in order if p.remaining and not p.future.done()]
        return []

    def _slice_bulk(self, chunk: list[Row], now: float) -> bool:
        """Cut this call to `slice_cells` when it carries only bulk rows and panels are being
        looked at (see BatchLimits). A call with a small job's row is never cut: those rows
        are the ones waiting, and the rest of the call is filling."""
        if not self.limits.slice_cells or now - self._last_small > INTERACTIVE_RECENT_S:
            return False
        return all(len(r.pending.rows) > SMALL_JOB_ROWS for r in chunk)

    def _chunks(self, rows: list[Row], cap: int = 0) -> list[list[Row]]:
        """Split a group under the memory cap (or `cap`), counting the padded batch rows ×
        variates × length."""
        chunks: list[list[Row]] = [[]]
        longest = 0
        cap = cap or self.limits.max_cells
        for r in rows:
            length = max(longest, r.prepared.length)
            variates = r.prepared.values.shape[0]
            if chunks[-1] and (len(chunks[-1]) + 1) * variates * length > cap:
                chunks.append([])
                length = r.prepared.length
            chunks[-1].append(r)
            longest = length
        return chunks

    def _run_chunk(self, chunk: list[Row]) -> None:
        chunk = [r for r in chunk if not r.pending.future.done()]  # a sibling row may have failed it
        if not chunk:
            return
        try:
            quantiles = self._forecast(chunk)
        except BackendError as exc:
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
                err = BackendError(
                    "the model ran out of memory on a single series of this size; "
                    "shorten contextLength or use fewer series per joint group",
                    503,
                )
            else:
                log.exception("forecast call failed")
                err = BackendError(f"the model failed on this input: {type(exc).__name__}: {exc}", 500)
            for r in chunk:
                r.pending.fail(err)
            return
        for b, r in enumerate(chunk):
            r.pending.deliver(r.index, quantiles[:, b, :, : r.pending.job.horizon], self.name)

    def batch_for(self, chunk: list[Row]) -> PreparedBatch:
        rows = [r.prepared for r in chunk]
        length = max(r.length for r in rows)
        padded = [pad_to(r, length) for r in rows]
        values = np.stack([r.values for r in padded])
        mask = np.stack([r.mask for r in padded])
        jobs = [r.pending for r in chunk]
        deadlines = [p.job.deadline for p in jobs]
        return PreparedBatch(
            values=values,
            mask=mask,
            series_ids=np.zeros(values.shape[:2], dtype=np.int64),
            horizon=max(p.job.horizon for p in jobs),
            # no padding, no gaps: the cheaper (Flash-eligible) path is exact
            has_missing_values=not bool(mask.all()),
            decode_block_size=jobs[0].decode_block_size,
            deadline=None if any(d is None for d in deadlines) else max(d for d in deadlines if d),
            cancelled=lambda: all(p.future.done() for p in jobs),
        )

    def _forecast(self, chunk: list[Row]) -> np.ndarray:
        batch = self.batch_for(chunk)
        started = time.perf_counter()
        out = self._runner(batch)
        elapsed = time.perf_counter() - started
        with self._stats_lock:
            self.calls += 1
            self.rows_run += batch.rows
        metrics.BATCH_ROWS.observe(batch.rows)
        metrics.INFERENCE_SECONDS.observe(elapsed)
        return out


def compatible(a: RowKey, b: RowKey) -> bool:
    """Rows of these classes may share a call: same variates, horizon bucket and decoding."""
    return a[0] == b[0] and a[2:] == b[2:]


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"
