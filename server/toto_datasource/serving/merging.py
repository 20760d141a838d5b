"""Cross-request batching for the plain OIP server: queue while the model is busy, drain when free.

Why: a plugin keeping 4 remote calls in flight (the remote runtime's default when a server
advertises no `max_concurrency`) sends 16 concurrent 1-series Grafana clients as ~3.5-row
requests. Run one by one
under a lock they cost a model call each: 3.5 rows per call, 0.59x the in-process throughput
(bench/remote.py's load, 1 series x 16 clients, median of 5 alternating 3 s windows on 2
shared cores). Here a request that arrives while the model is busy waits in a queue; when the
model frees, the oldest waiting request and every other waiting request with the same
`merge_key` (up to `max_rows_per_call` rows) run as ONE `run_merged` call, and each caller
gets its own slice: 7 rows per call, 0.78x (64 clients: 26 rows per call, 0.90x). There is no
timer: an idle server runs a lone request at once (no added latency, unlike Serve's batch
wait), and under load a call takes whatever queued up during the previous one. What is left
of the gap is per-request cost (encode, gRPC, decode) on the same 2 cores: the plugin sending
fewer, bigger requests does better (2 in flight: 6.3 rows per request, 0.86x; 1: 1.07x), so
this server advertises `max_concurrency` 1 and the plugin keeps one call in flight (oip.py).

No dispatcher thread: the gRPC handler threads take turns. Whichever waiting thread finds the
model free runs the next round (for itself and others), then wakes the rest; a thread returns
as soon as its own request is answered. A caller that went away before its round is dropped
(never run). A failing model call fails every request of that round with the same error.

Numbers: a merged row equals the row run alone up to float32 rounding, not always bit for
bit. CPU kernels round a row differently depending on the batch's shape (measured with the
4m checkpoint, 2 torch threads: the last row of an odd-sized batch differs by ~1 ulp, up to
3.7e-6 on values ~100; with 1 thread only a 1-row batch differs). The plugin's own
scheduler and Serve's @serve.batch merge the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..engine.batch import PreparedBatch
from .engine import ServingEngine, merge_key, run_merged

log = logging.getLogger(__name__)


class CallerGone(Exception):
    """The caller went away before its request's turn; it was not run."""


class MergedCallFailed(Exception):
    """The model call that carried this request (and `requests` - 1 others) raised `cause`."""

    def __init__(self, cause: BaseException, requests: int) -> None:
        others = f" (one call merged from {requests} requests)" if requests > 1 else ""
        super().__init__(f"{type(cause).__name__}: {cause}{others}")
        self.cause = cause
        self.requests = requests


def _never_gone() -> bool:
    return False


@dataclass(eq=False)
class _Ticket:
    batch: PreparedBatch
    gone: Callable[[], bool]
    result: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class MergingRunner:
    """`run(batch, gone)` from many threads; concurrent compatible batches share model calls."""

    def __init__(self, engine: ServingEngine, max_rows_per_call: int = 0) -> None:
        self.engine = engine
        # 0: the server's advertised per-request limit (256); engine.run still splits by max_cells.
        self.max_rows_per_call = max_rows_per_call or engine.options.max_rows
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # handlers: "answered, or the model is free"
        self._queued = threading.Condition(lock)  # watchers: "a request joined the queue"
        self._queue: list[_Ticket] = []
        self._busy = False
        self.rounds = 0  # run_merged calls made
        self.requests_run = 0  # requests answered by them
        self.dropped = 0  # requests whose caller went away first

    def run(self, batch: PreparedBatch, gone: Callable[[], bool] = _never_gone) -> np.ndarray:
        """(9, rows, V, horizon) float32 for `batch`; raises CallerGone or MergedCallFailed."""
        ticket = _Ticket(batch, gone)
        with self._cond:
            self._queue.append(ticket)
            self._queued.notify_all()
            while not ticket.done:
                if self._busy:
                    self._cond.wait()
                    continue
                round_ = self._take_round()
                if round_:
                    self._busy = True
                    outcome: list[np.ndarray] | BaseException = RuntimeError("the model call was interrupted")
                    self._cond.release()
                    try:
                        outcome = self._run_round(round_)
                    finally:
                        self._cond.acquire()
                        self._settle(round_, outcome)
                        self._busy = False
                self._cond.notify_all()  # answered or dropped waiters return; one of the rest leads
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result

    def wait_until_waiting(self, n: int, timeout_s: float) -> bool:
        """Block until at least `n` requests are queued (tests and drains synchronise on this)."""
        with self._queued:
            return self._queued.wait_for(lambda: len(self._queue) >= n, timeout_s)

    # -- under the lock -------------------------------------------------------------------
    def _take_round(self) -> list[_Ticket]:
        """Drop waiters whose caller left; take the oldest and its mergeable company (FIFO)."""
        kept: list[_Ticket] = []
        for t in self._queue:
            if t.gone():
                t.error, t.done = CallerGone("the caller went away before the model ran"), True
                self.dropped += 1
            else:
                kept.append(t)
        if not kept:
            self._queue = []
            return []
        key, rows = merge_key(kept[0].batch), 0
        round_: list[_Ticket] = []
        rest: list[_Ticket] = []
        for t in kept:
            if merge_key(t.batch) == key and (not round_ or rows + t.batch.rows <= self.max_rows_per_call):
                round_.append(t)
                rows += t.batch.rows
            else:
                rest.append(t)
        self._queue = rest
        return round_

    def _settle(self, round_: list[_Ticket], outcome: list[np.ndarray] | BaseException) -> None:
        self.rounds += 1
        self.requests_run += len(round_)
        for i, t in enumerate(round_):
            if isinstance(outcome, BaseException):
                t.error = MergedCallFailed(outcome, len(round_))
            else:
                t.result = outcome[i]
            t.done = True

    # -- outside the lock -----------------------------------------------------------------
    def _run_round(self, round_: list[_Ticket]) -> list[np.ndarray] | BaseException:
        try:
            return run_merged(self.engine, [t.batch for t in round_])
        except Exception as exc:
            log.exception("model call failed", extra={"kv": {"requests": len(round_)}})
            return exc
