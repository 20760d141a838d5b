"""Dynamic batching: many concurrent ForecastJobs, few `forecast()` calls, one inference thread.

gRPC handler threads only prepare inputs and enqueue. The inference thread takes whatever is
queued when the device becomes free (so a lone request never waits for company), groups
compatible jobs (context-length bucket, horizon bucket, decoding mode, variates per row),
left-pads each group to one length (exact for Toto), runs one call per group and slices the
rows back. Toto's rows are independent, so batched and unbatched answers agree to ~1e-6.
Block decoding keeps state on the model; one thread per model makes it safe.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
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


@dataclass
class _Pending:
    job: ForecastJob
    rows: list[PreparedContext]  # one row per independent series, or one row for a joint group
    future: Future[ForecastOutput]
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> tuple[int, int, int, int | None]:
        variates = self.rows[0].values.shape[0]
        length = max(r.length for r in self.rows)
        ctx_bucket = math.ceil(math.log2(length // PATCH))
        horizon_bucket = math.ceil(math.log2(math.ceil(self.job.horizon / PATCH)))
        return (variates, ctx_bucket, horizon_bucket, self.job.decode_block_size)


@dataclass(frozen=True)
class BatchLimits:
    """max_cells bounds rows × variates × length per call (memory cap); max_queue bounds the
    number of jobs waiting (backpressure instead of unbounded memory)."""

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
        self._thread = threading.Thread(target=self._loop, name=f"inference-{name}", daemon=True)
        self._thread.start()
        self.calls = 0
        self.rows_run = 0

    # -- handler side ---------------------------------------------------------------------
    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        context_length = min(self._context_length, job.context.shape[1])
        if job.joint:
            rows = [prepare_context(job.context, context_length)]
        else:
            rows = [prepare_context(row[None, :], context_length) for row in job.context]
        pending = _Pending(job, rows, Future())
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
        return pending.future

    def describe(self) -> dict[str, Any]:
        return {**self.info, "name": self.name, "queued": self._queue.qsize(), "calls": self.calls,
                "rows": self.rows_run}

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    # -- inference thread -----------------------------------------------------------------
    def _collect(self, first: _Pending) -> list[_Pending]:
        batch = [first]
        until = time.monotonic() + self.limits.window_s
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is None:
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = self._collect(first)
            metrics.QUEUE_DEPTH.set(self._queue.qsize())
            now = time.monotonic()
            live: list[_Pending] = []
            for p in batch:
                if p.job.deadline is not None and p.job.deadline < now:
                    p.future.set_exception(DeadlineExceeded())
                    metrics.DROPPED.inc()
                elif p.future.set_running_or_notify_cancel():
                    live.append(p)
                    metrics.QUEUE_WAIT.observe(now - p.enqueued)
                else:
                    metrics.DROPPED.inc()
            groups: dict[tuple[int, int, int, int | None], list[_Pending]] = {}
            for p in live:
                groups.setdefault(p.key, []).append(p)
            for group in groups.values():
                self._run_group(group)

    def _run_group(self, group: list[_Pending]) -> None:
        """Run a group in chunks under the memory cap; results go back to each job's future."""
        chunks: list[list[_Pending]] = [[]]
        cells = 0
        for p in group:
            c = sum(r.values.size for r in p.rows)
            if chunks[-1] and cells + c > self.limits.max_cells:
                chunks.append([])
                cells = 0
            chunks[-1].append(p)
            cells += c
        for chunk in chunks:
            self._run_chunk(chunk)

    def _run_chunk(self, chunk: list[_Pending]) -> None:
        try:
            quantiles = self._forecast(chunk)
        except QueryError as exc:
            for p in chunk:
                p.future.set_exception(exc)
            return
        except Exception as exc:
            if _is_oom(exc) and len(chunk) > 1:
                half = len(chunk) // 2
                log.warning("out of memory on a batch of %d jobs; splitting", len(chunk))
                self._run_chunk(chunk[:half])
                self._run_chunk(chunk[half:])
                return
            log.exception("forecast call failed")
            err = QueryError(f"the model failed on this input: {type(exc).__name__}: {exc}", 500)
            for p in chunk:
                p.future.set_exception(err)
            return
        row = 0
        for p in chunk:
            n = len(p.rows)
            h = p.job.horizon
            if p.job.joint:
                q = quantiles[:, row, :, :h]
            else:
                q = quantiles[:, row : row + n, 0, :h]
            row += n
            p.future.set_result(ForecastOutput(np.ascontiguousarray(q), self.name))

    def _forecast(self, chunk: list[_Pending]) -> np.ndarray:
        rows = [r for p in chunk for r in p.rows]
        length = max(r.length for r in rows)
        padded = [pad_to(r, length) for r in rows]
        values = np.stack([r.values for r in padded])
        mask = np.stack([r.mask for r in padded])
        variates = values.shape[1]
        series_ids = np.zeros((len(rows), variates), dtype=np.int64)
        horizon = max(p.job.horizon for p in chunk)
        complete = bool(mask.all())
        started = time.perf_counter()
        out = self._runner(values, mask, series_ids, horizon, not complete, chunk[0].job.decode_block_size)
        elapsed = time.perf_counter() - started
        self.calls += 1
        self.rows_run += len(rows)
        metrics.BATCH_ROWS.observe(len(rows))
        metrics.INFERENCE_SECONDS.observe(elapsed)
        return out


def _is_oom(exc: Exception) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"
