"""The result cache in front of any forecaster: shared in-flight work, expiry, bounds, failures.

Synchronisation is by events and an injected clock; no sleeps, no timing asserts.
"""

from __future__ import annotations

import time
from concurrent.futures import CancelledError, Future

import numpy as np
import pytest
from engine_fakes import WAIT, FakeRunner, expected, sample, series
from toto_datasource.core.cancel import Cancellation
from toto_datasource.core.errors import BackendError
from toto_datasource.engine.cache import CachingForecaster
from toto_datasource.engine.scheduler import DeadlineExceeded
from toto_datasource.engine.types import ForecastJob, ForecastOutput


class CountingForecaster:
    name = "counting"

    def __init__(self, hold: bool = False) -> None:
        self.jobs: list[ForecastJob] = []
        self.futures: list[Future] = []
        self.hold = hold

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        self.jobs.append(job)
        f: Future[ForecastOutput] = Future()
        self.futures.append(f)
        if not self.hold:
            self.finish(f, job)
        return f

    @staticmethod
    def finish(f: Future, job: ForecastJob) -> None:
        q = np.stack([np.stack([expected(r, job.horizon)[k] for r in job.context]) for k in range(9)])
        f.set_result(ForecastOutput(q, "counting"))

    def describe(self) -> dict:
        return {"name": self.name, "randomWeights": True}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_hits_within_ttl_and_expires_after() -> None:
    inner, clock = CountingForecaster(), Clock()
    cache = CachingForecaster(inner, ttl_s=30, max_entries=8, clock=clock)
    ctx = series(2, 300)
    hits_before = sample("toto_cache_hits_total")
    a = cache.submit(ForecastJob(ctx, 16)).result(timeout=WAIT)
    b = cache.submit(ForecastJob(ctx.copy(), 16)).result(timeout=WAIT)  # same bytes, new array
    assert len(inner.jobs) == 1 and sample("toto_cache_hits_total") == hits_before + 1
    np.testing.assert_array_equal(a.quantiles, b.quantiles)
    b.quantiles[:] = 0  # a caller scribbling on its answer does not corrupt the cache
    clock.now += 29.9
    c = cache.submit(ForecastJob(ctx, 16)).result(timeout=WAIT)
    assert len(inner.jobs) == 1
    np.testing.assert_array_equal(a.quantiles, c.quantiles)
    clock.now += 0.2  # past the TTL
    cache.submit(ForecastJob(ctx, 16)).result(timeout=WAIT)
    assert len(inner.jobs) == 2
    assert cache.describe()["cache"]["hits"] == 2 and cache.describe()["randomWeights"]


def test_cache_misses_on_any_difference_in_the_key() -> None:
    inner = CountingForecaster()
    cache = CachingForecaster(inner, ttl_s=30, max_entries=8, clock=Clock())
    ctx = series(2, 300)
    moved = ctx.copy()
    moved[1, -1] += 1e-9  # one new point of history
    nan = ctx.copy()
    nan[0, 5] = np.nan
    for job in (
        ForecastJob(ctx, 16),
        ForecastJob(moved, 16),
        ForecastJob(nan, 16),
        ForecastJob(ctx, 17),
        ForecastJob(ctx, 16, joint=True),
        ForecastJob(ctx[:, 1:], 16),
    ):
        cache.submit(job).result(timeout=WAIT)
    assert len(inner.jobs) == 6
    cache.submit(ForecastJob(nan.copy(), 16)).result(timeout=WAIT)  # NaN at the same place: same bytes
    assert len(inner.jobs) == 6


def test_cache_is_bounded_and_never_keeps_failures() -> None:
    inner = CountingForecaster(hold=True)
    cache = CachingForecaster(inner, ttl_s=30, max_entries=2, clock=Clock())
    jobs = [ForecastJob(series(1, 64, start=float(i)), 4) for i in range(3)]
    futures = [cache.submit(j) for j in jobs]
    for f, j in zip(inner.futures, jobs, strict=True):
        CountingForecaster.finish(f, j)
    [f.result(timeout=WAIT) for f in futures]
    cache.submit(jobs[0])  # the oldest was evicted
    assert len(inner.jobs) == 4
    CountingForecaster.finish(inner.futures[-1], jobs[0])
    failing = ForecastJob(series(1, 64, start=99.0), 4)
    f = cache.submit(failing)
    inner.futures[-1].set_exception(BackendError("model failed", 500))
    with pytest.raises(BackendError):
        f.result(timeout=WAIT)
    cache.submit(failing)
    assert len(inner.jobs) == 6  # the failure was not cached


def test_cache_shares_in_flight_work_and_cancels_only_when_nobody_waits() -> None:
    inner = CountingForecaster(hold=True)
    cache = CachingForecaster(inner, ttl_s=30, max_entries=8, clock=Clock())
    job = ForecastJob(series(3, 128), 8)
    dashboard, alert = cache.submit(job), cache.submit(job)  # e.g. a panel and an alert rule
    assert len(inner.jobs) == 1
    assert dashboard.cancel()
    assert not inner.futures[0].cancelled()  # the alert still waits for it
    CountingForecaster.finish(inner.futures[0], job)
    assert alert.result(timeout=WAIT).quantiles.shape == (9, 3, 8)
    with pytest.raises(CancelledError):
        dashboard.result(timeout=0)
    # a lone waiter that goes away cancels the computation itself
    other = ForecastJob(series(3, 128, start=7.0), 8)
    request = Cancellation()
    gone = request.track(cache.submit(other))
    request.cancel()
    assert gone.cancelled() and inner.futures[-1].cancelled()
    cache.submit(other)
    assert len(inner.jobs) == 3  # the cancelled computation was not cached


def test_later_deadlines_join_in_flight_work_and_resubmit_if_it_is_dropped() -> None:
    """Under load identical panels must share one job even though each later arrival has a later
    deadline; if the shared job is dropped at the first caller's deadline (504), the others, whose
    deadlines have not passed, get a job of their own instead of that 504."""
    inner = CountingForecaster(hold=True)
    cache = CachingForecaster(inner, ttl_s=30, max_entries=8, clock=Clock())
    ctx = series(1, 128)
    now = time.monotonic()
    first = cache.submit(ForecastJob(ctx, 8, deadline=now + 0.5))
    later = [cache.submit(ForecastJob(ctx, 8, deadline=now + 30 + i)) for i in range(3)]
    assert len(inner.jobs) == 1  # all four share the one in flight
    inner.futures[0].set_exception(DeadlineExceeded())  # the engine dropped it at first's deadline
    with pytest.raises(DeadlineExceeded):
        first.result(timeout=WAIT)
    assert len(inner.jobs) == 2  # the three later callers resubmitted once, together
    assert not any(f.done() for f in later)
    CountingForecaster.finish(inner.futures[1], inner.jobs[1])
    for f in later:
        np.testing.assert_allclose(f.result(timeout=WAIT).quantiles[:, 0, :], expected(ctx[0], 8), atol=1e-9)
    other = cache.submit(ForecastJob(ctx, 8, deadline=now + 60))
    assert other.result(timeout=WAIT) is not None and len(inner.jobs) == 2  # then a plain cache hit


def test_cache_over_the_batching_engine(engines) -> None:
    runner = FakeRunner()
    cache = CachingForecaster(engines(runner), ttl_s=30, max_entries=8, clock=Clock())
    ctx = series(4, 512)
    a = cache.submit(ForecastJob(ctx, 32)).result(timeout=WAIT)
    b = cache.submit(ForecastJob(ctx, 32)).result(timeout=WAIT)
    assert len(runner.calls) == 1
    np.testing.assert_array_equal(a.quantiles, b.quantiles)
