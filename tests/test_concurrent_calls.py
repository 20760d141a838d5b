"""BatchLimits.concurrency: a runtime whose runner is safe to call concurrently (an inference server)
gets several model calls in flight; the in-process model keeps one. Synchronised by a barrier
(two calls must be inside the runner at once to pass it), never by sleeps."""

from __future__ import annotations

import threading

import numpy as np
from toto_datasource.engine.batch import PreparedBatch
from toto_datasource.engine.scheduler import BatchingForecaster, BatchLimits
from toto_datasource.engine.types import ForecastJob

WAIT = 30


class CountingRunner:
    """quantile k at step t = last value + k + t/100; records the most calls inside at once."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.barrier = barrier
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.calls = 0

    def __call__(self, batch: PreparedBatch) -> np.ndarray:
        with self.lock:
            self.inside += 1
            self.calls += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            if self.barrier is not None:
                self.barrier.wait(WAIT)
            last = batch.values[:, :, -1]
            steps = np.arange(batch.horizon)
            return last[None, :, :, None] + np.arange(9)[:, None, None, None] + 0.01 * steps
        finally:
            with self.lock:
                self.inside -= 1


def expected(rows: np.ndarray, horizon: int) -> np.ndarray:
    return rows[None, :, -1, None] + np.arange(9)[:, None, None] + 0.01 * np.arange(horizon)


def jobs_of_distinct_shapes(n: int) -> list[ForecastJob]:
    """One call each: different horizon buckets never share a call."""
    return [ForecastJob(np.full((1, 64), float(i)), 32 * 2**i) for i in range(n)]


def test_two_calls_in_flight_with_concurrency_two() -> None:
    runner = CountingRunner(threading.Barrier(2))
    model = BatchingForecaster("remote-fake", runner, limits=BatchLimits(concurrency=2))
    try:
        jobs = jobs_of_distinct_shapes(6)
        futures = [model.submit(j) for j in jobs]
        for job, f in zip(jobs, futures, strict=True):
            np.testing.assert_allclose(f.result(WAIT).quantiles, expected(job.context, job.horizon))
        assert runner.most_inside == 2  # the barrier needs two; the pool allows no more
        assert runner.calls == 6
    finally:
        model.close()


def test_jobs_that_arrive_during_a_call_share_the_next_one_by_default() -> None:
    """The in-process model runs one call at a time, so jobs queued behind a running call are
    batched into the next one instead of each starting a call of its own."""
    gate = threading.Event()
    entered = threading.Event()

    class Gated(CountingRunner):
        def __call__(self, batch: PreparedBatch) -> np.ndarray:
            if self.calls == 0:
                entered.set()
                assert gate.wait(WAIT)
            return super().__call__(batch)

    runner = Gated()
    model = BatchingForecaster("local-fake", runner)
    try:
        first = model.submit(ForecastJob(np.full((1, 64), 1.0), 32))
        assert entered.wait(WAIT)
        queued = [ForecastJob(np.full((2, 64), float(i)), 32) for i in range(3)]
        futures = [model.submit(j) for j in queued]
        gate.set()
        first.result(WAIT)
        for job, f in zip(queued, futures, strict=True):
            np.testing.assert_allclose(f.result(WAIT).quantiles, expected(job.context, job.horizon))
        assert runner.calls == 2 and runner.most_inside == 1  # the running call, then one for all three
    finally:
        model.close()


def test_one_job_split_over_concurrent_calls_is_assembled_in_order() -> None:
    """Rows of one job finish on different pool threads; the job resolves once, in row order."""
    runner = CountingRunner()
    model = BatchingForecaster("remote-fake", runner, limits=BatchLimits(max_cells=4 * 64, concurrency=3))
    try:
        context = np.arange(40 * 64, dtype=float).reshape(40, 64)
        out = model.submit(ForecastJob(context, 48)).result(WAIT)
        np.testing.assert_allclose(out.quantiles, expected(context, 48))
        assert runner.calls >= 10  # 40 rows, at most 4 per call (the memory cap)
    finally:
        model.close()
