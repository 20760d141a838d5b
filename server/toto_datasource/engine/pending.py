"""A submitted job inside the scheduler: its prepared rows, its future, its batching key.

A job becomes one row per independent series (or one row for a joint group); rows of many jobs
that share a key (variates per row, context-length bucket, horizon bucket, decoding mode) can be
padded to one length and run in one model call.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from .. import metrics
from ..core.errors import BackendError
from .decoding import decode_block_for
from .prepare import PreparedContext
from .types import PATCH, ForecastJob, ForecastOutput

RowKey = tuple[int, int, int, int | None]


class DeadlineExceeded(BackendError):
    def __init__(self) -> None:
        super().__init__("the request's deadline passed before the forecast ran", 504, "plugin")


def bucket(length: int, horizon: int) -> tuple[int, int]:
    """(context-length bucket, horizon bucket): powers of two in patches."""
    return (
        math.ceil(math.log2(max(1, math.ceil(length / PATCH)))),
        math.ceil(math.log2(max(1, math.ceil(horizon / PATCH)))),
    )


@dataclass(eq=False)
class PendingJob:
    job: ForecastJob
    rows: list[PreparedContext]  # one row per independent series, or one row for a joint group
    future: Future[ForecastOutput]
    enqueued: float = field(default_factory=time.monotonic)
    started: bool = False
    started_at: float = 0.0
    next_row: int = 0  # rows before it have been handed to a model call
    results: list[np.ndarray | None] = field(default_factory=list)
    # Rows of one job may finish on different threads (a runtime with concurrent calls).
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.rows)

    @property
    def remaining(self) -> int:
        return len(self.rows) - self.next_row

    @property
    def key(self) -> RowKey:
        """Every row of a job has the same shape class: one key per job."""
        return Row(self, 0).key

    @property
    def decode_block_size(self) -> int | None:
        return decode_block_for(self.job.horizon)

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
        self.started, self.started_at = True, now
        metrics.QUEUE_WAIT.observe(now - self.enqueued)
        return True

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.future.done():
                return
            if not self.started and not self.future.set_running_or_notify_cancel():
                return
            self.started = True
            self.future.set_exception(exc)

    def deliver(self, index: int, quantiles: np.ndarray, model: str) -> None:
        """Store one row's (9, V, H) result; the job's future resolves with its last row."""
        with self.lock:
            if self.future.done():
                return
            self.results[index] = quantiles
            if not all(q is not None for q in self.results):
                return
            out = np.ascontiguousarray(np.concatenate(self.results, axis=1))  # type: ignore[arg-type]
            self.results = []
            self.future.set_result(ForecastOutput(out, model, queue_wait_s=self.started_at - self.enqueued))


@dataclass(eq=False)
class Row:
    pending: PendingJob
    index: int

    @property
    def prepared(self) -> PreparedContext:
        return self.pending.rows[self.index]

    @property
    def key(self) -> RowKey:
        ctx_bucket, horizon_bucket = bucket(self.prepared.length, self.pending.job.horizon)
        return (self.prepared.values.shape[0], ctx_bucket, horizon_bucket, self.pending.decode_block_size)
