"""The batching scheduler and the result cache, with fake runners (fast) and the real 4m model.

Synchronisation is by events: a gated runner holds the inference thread inside a call so the
test can queue work behind it deterministically. No sleeps, no timing asserts.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, Future
from pathlib import Path

import numpy as np
import pytest
from toto_datasource import metrics
from toto_datasource.core.cancel import Cancellation
from toto_datasource.core.errors import BackendError
from toto_datasource.engine.batch import PreparedBatch
from toto_datasource.engine.cache import CachingForecaster
from toto_datasource.engine.scheduler import BatchingForecaster, BatchLimits, DeadlineExceeded
from toto_datasource.engine.types import ForecastJob, ForecastOutput

WAIT = 30  # generous bound on any single wait: a hang fails instead of blocking the suite


def sample(name: str) -> float:
    """A counter's value as the plugin's CollectMetrics exposes it."""
    return metrics.REGISTRY.get_sample_value(name) or 0.0


def expected(context_row: np.ndarray, horizon: int) -> np.ndarray:
    """What FakeRunner returns for one univariate row: (9, horizon)."""
    finite = context_row[np.isfinite(context_row)]
    last = finite[-1] if finite.size else 0.0
    return last + np.arange(9)[:, None] + 0.01 * np.arange(horizon)[None, :]


class FakeRunner:
    """Deterministic stand-in for a model: quantile k at step t = last value of the row + k + t/100.

    Records every call; `gate` (when set) makes the first call wait until released."""

    def __init__(self, gate: bool = False, oom_above: int | None = None, fail: bool = False) -> None:
        self.calls: list[dict] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not gate:
            self.release.set()
        self.oom_above = oom_above
        self.fail = fail

    def __call__(self, batch: PreparedBatch) -> np.ndarray:
        values, mask, horizon = batch.values, batch.mask, batch.horizon
        has_missing, block = batch.has_missing_values, batch.decode_block_size
        self.entered.set()
        assert self.release.wait(WAIT)
        b, v, length = values.shape
        self.calls.append(
            {
                "rows": b,
                "variates": v,
                "length": length,
                "horizon": horizon,
                "has_missing": has_missing,
                "block": block,
                "last": values[:, :, -1].tolist(),
            }
        )
        if self.fail:
            raise ValueError("boom")
        if self.oom_above is not None and b > self.oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        assert values.dtype == np.float32 and mask.dtype == bool and length % 32 == 0
        last = values[:, :, -1].astype(np.float64)  # the last patch is always filled
        return (
            last[None, :, :, None]
            + np.arange(9)[:, None, None, None]
            + 0.01 * np.arange(horizon)[None, None, None, :]
        )


def series(n: int, length: int, start: float = 0.0) -> np.ndarray:
    return start + np.arange(n)[:, None] * 10.0 + np.sin(np.arange(length) / 7.0)[None, :]


@pytest.fixture()
def engines():
    made: list[BatchingForecaster] = []

    def make(runner, **limits) -> BatchingForecaster:  # type: ignore[no-untyped-def]
        f = BatchingForecaster("fake", runner, limits=BatchLimits(**limits))
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def test_lone_request_runs_at_once_in_one_call(engines) -> None:
    runner = FakeRunner()
    engine = engines(runner)
    ctx = series(2, 100)
    out = engine.submit(ForecastJob(ctx, 5)).result(timeout=WAIT)
    assert out.quantiles.shape == (9, 2, 5)
    np.testing.assert_allclose(out.quantiles[:, 1, :], expected(ctx[1], 5), atol=1e-5)
    assert len(runner.calls) == 1


def test_concurrent_jobs_are_grouped_by_bucket_and_sliced_back(engines) -> None:
    runner = FakeRunner(gate=True)
    engine = engines(runner)
    first = engine.submit(ForecastJob(series(1, 64), 8))
    assert runner.entered.wait(WAIT)  # the device is busy with `first`: the rest queue up
    jobs = {
        "a": ForecastJob(series(3, 2048), 256),
        "b": ForecastJob(series(2, 1500, start=100.0), 200),  # same buckets as a (1500 → 2048 padded)
        "c": ForecastJob(series(1, 2048, start=5.0), 16),  # other horizon bucket
        "d": ForecastJob(series(3, 600), 32, joint=True),  # one 3-variate row
    }
    futures = {k: engine.submit(j) for k, j in jobs.items()}
    runner.release.set()
    outs = {k: f.result(timeout=WAIT) for k, f in futures.items()}
    first.result(timeout=WAIT)
    shapes = sorted((c["rows"], c["variates"], c["length"], c["horizon"]) for c in runner.calls[1:])
    assert shapes == [(1, 1, 2048, 16), (1, 3, 608, 32), (5, 1, 2048, 256)]
    for k in "abc":
        job = jobs[k]
        assert outs[k].quantiles.shape == (9, job.context.shape[0], job.horizon)
        for i, row in enumerate(job.context):
            np.testing.assert_allclose(outs[k].quantiles[:, i, :], expected(row, job.horizon), atol=1e-5)
    assert outs["d"].quantiles.shape == (9, 3, 32)
    assert engine.describe()["calls"] == 4


def test_complete_batches_use_the_fast_path_and_padded_ones_do_not(engines) -> None:
    runner = FakeRunner()
    engine = engines(runner)
    engine.submit(ForecastJob(series(2, 256), 8)).result(timeout=WAIT)
    engine.submit(ForecastJob(series(1, 250), 8)).result(timeout=WAIT)  # padded to 256
    gappy = series(1, 256)
    gappy[0, 10] = np.nan
    engine.submit(ForecastJob(gappy, 8)).result(timeout=WAIT)
    assert [c["has_missing"] for c in runner.calls] == [False, True, True]


def test_full_queue_is_refused_with_503(engines) -> None:
    runner = FakeRunner(gate=True)
    engine = engines(runner, max_queue=2)
    running = engine.submit(ForecastJob(series(1, 64), 4))
    assert runner.entered.wait(WAIT)
    queued = [engine.submit(ForecastJob(series(1, 64), 4)) for _ in range(2)]
    rejected_before = sample("toto_jobs_rejected_total")
    with pytest.raises(BackendError) as err:
        engine.submit(ForecastJob(series(1, 64), 4))
    assert err.value.status == 503 and "queue is full" in str(err.value)
    assert sample("toto_jobs_rejected_total") == rejected_before + 1
    runner.release.set()
    for f in [running, *queued]:
        f.result(timeout=WAIT)


def test_cancelled_and_expired_jobs_are_dropped_unrun(engines) -> None:
    runner = FakeRunner(gate=True)
    engine = engines(runner)
    running = engine.submit(ForecastJob(series(1, 64), 4))
    assert runner.entered.wait(WAIT)
    cancelled = engine.submit(ForecastJob(series(7, 64), 4))
    expired = engine.submit(ForecastJob(series(5, 64), 4, deadline=time.monotonic() - 1))
    request = Cancellation()  # what the gRPC servicer makes for a call that goes away
    scoped = request.track(engine.submit(ForecastJob(series(3, 64), 4)))
    alive = engine.submit(ForecastJob(series(2, 64), 4))
    assert cancelled.cancel()
    request.cancel()
    assert scoped.cancelled()
    runner.release.set()
    assert alive.result(timeout=WAIT).quantiles.shape == (9, 2, 4)
    with pytest.raises(DeadlineExceeded):
        expired.result(timeout=WAIT)
    running.result(timeout=WAIT)
    assert [c["rows"] for c in runner.calls] == [1, 2]  # only `running` and `alive` were computed


def test_a_query_past_its_deadline_is_a_504_naming_the_model_and_its_job_is_dropped(engines) -> None:
    from toto_datasource.core.request import RequestContext
    from toto_datasource.frames.forecast import QueryMeta
    from toto_datasource.querytypes.base import SubmitRequest

    runner = FakeRunner(gate=True)
    engine = engines(runner)
    engine.submit(ForecastJob(series(1, 64), 4))
    assert runner.entered.wait(WAIT)
    ctx = RequestContext(deadline=time.monotonic() - 1)
    request = SubmitRequest(None, None, None, engine, QueryMeta(""), ctx)  # type: ignore[arg-type]
    waiting = request.forecast(ForecastJob(series(4, 64), 4))
    with pytest.raises(BackendError) as err:
        request.wait(waiting)
    assert err.value.status == 504 and engine.name in err.value.message
    assert waiting.cancelled()
    with pytest.raises(BackendError) as err:
        request.wait(waiting)
    assert err.value.status == 499
    runner.release.set()


def test_grpc_cancellation_reaches_the_engine(engines) -> None:
    """DataServicer makes the call's RequestContext and registers its cancellation with
    context.add_callback: a client that hangs up drops the forecasts its query queued."""
    from toto_datasource._proto.pluginv2 import backend_pb2 as pb
    from toto_datasource.core.config import ProcessConfig
    from toto_datasource.plugin.servicers import DataServicer, Edge

    runner = FakeRunner(gate=True)
    engine = engines(runner)
    engine.submit(ForecastJob(series(1, 64), 4))
    assert runner.entered.wait(WAIT)
    submitted: list[Future] = []

    class Context:
        def __init__(self) -> None:
            self.callbacks: list = []

        def add_callback(self, cb) -> bool:  # type: ignore[no-untyped-def]
            self.callbacks.append(cb)
            return True

        def time_remaining(self) -> None:
            return None

    context = Context()

    class Instances:
        def get(self, key, version, raw):  # type: ignore[no-untyped-def]
            return None

    class DataSource:
        config = ProcessConfig()
        instances = Instances()

        def query_data(self, instance, queries, ctx):  # type: ignore[no-untyped-def]
            submitted.append(ctx.track(engine.submit(ForecastJob(series(2, 64), 4))))
            for cb in context.callbacks:  # the client hangs up while we wait
                cb()
            return {}

    DataServicer(Edge(DataSource())).QueryData(pb.QueryDataRequest(), context)  # type: ignore[arg-type]
    assert submitted[0].cancelled()
    runner.release.set()


def test_memory_cap_splits_calls(engines) -> None:
    runner = FakeRunner()
    engine = engines(runner, max_cells=3 * 256)
    ctx = series(7, 256)
    out = engine.submit(ForecastJob(ctx, 4)).result(timeout=WAIT)
    rows = [c["rows"] for c in runner.calls]
    assert max(rows) <= 3 and sum(rows) == 7  # no call over the cap, every row computed once
    for i, row in enumerate(ctx):
        np.testing.assert_allclose(out.quantiles[:, i, :], expected(row, 4), atol=1e-5)


def test_out_of_memory_splits_and_retries(engines) -> None:
    runner = FakeRunner(oom_above=2)
    engine = engines(runner)
    ctx = series(7, 128)
    out = engine.submit(ForecastJob(ctx, 4)).result(timeout=WAIT)
    for i, row in enumerate(ctx):
        np.testing.assert_allclose(out.quantiles[:, i, :], expected(row, 4), atol=1e-5)
    assert max(c["rows"] for c in runner.calls if c["rows"] <= 2) <= 2
    assert sum(c["rows"] for c in runner.calls if c["rows"] <= 2) == 7
    # a single row that does not fit fails clearly, and the engine carries on
    runner.oom_above = 0
    with pytest.raises(BackendError) as err:
        engine.submit(ForecastJob(series(1, 128), 4)).result(timeout=WAIT)
    assert err.value.status == 503 and "out of memory" in str(err.value)
    runner.oom_above = None
    assert engine.submit(ForecastJob(series(1, 128), 4)).result(timeout=WAIT).quantiles.shape == (9, 1, 4)


def test_model_errors_fail_the_job_not_the_engine(engines) -> None:
    runner = FakeRunner(fail=True)
    engine = engines(runner)
    with pytest.raises(BackendError) as err:
        engine.submit(ForecastJob(series(1, 64), 4)).result(timeout=WAIT)
    assert err.value.status == 500 and "boom" in str(err.value)
    runner.fail = False
    assert engine.submit(ForecastJob(series(1, 64), 4)).result(timeout=WAIT).quantiles.shape == (9, 1, 4)


def test_close_fails_what_is_still_queued() -> None:
    runner = FakeRunner(gate=True)
    engine = BatchingForecaster("fake", runner)
    engine.submit(ForecastJob(series(1, 64), 4))
    assert runner.entered.wait(WAIT)
    queued = engine.submit(ForecastJob(series(1, 64), 4))
    closer = threading.Thread(target=engine.close)
    closer.start()
    runner.release.set()
    closer.join(WAIT)
    with pytest.raises(BackendError):
        queued.result(timeout=WAIT)
    with pytest.raises(BackendError):
        engine.submit(ForecastJob(series(1, 64), 4))


# -- result cache ---------------------------------------------------------------------------
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


# -- the real model ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint: Path):  # type: ignore[no-untyped-def]
    from toto_datasource.core.settings import ModelSettings
    from toto_datasource.engine.toto import load_toto

    return load_toto(ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu"))


def test_batched_and_unbatched_results_are_equal(tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Concurrent jobs of different lengths, gaps and horizons batched together equal each run alone."""
    from toto_datasource.engine.toto import run_forecast

    gate = threading.Event()
    entered = threading.Event()

    def runner(batch):  # type: ignore[no-untyped-def]
        values, mask, ids, horizon = batch.values, batch.mask, batch.series_ids, batch.horizon
        has_missing, block = batch.has_missing_values, batch.decode_block_size
        entered.set()
        assert gate.wait(WAIT)
        return run_forecast(
            tiny_model, values, mask, ids, horizon, has_missing_values=has_missing, decode_block_size=block
        )

    rng = np.random.default_rng(0)

    def make(n: int, length: int, level: float) -> np.ndarray:
        t = np.arange(length)
        x = (
            level
            + level * 0.1 * np.sin(t[None, :] / (5.0 + np.arange(n)[:, None]))
            + rng.normal(0, 1, (n, length))
        )
        return x

    gappy = make(2, 1800, 50.0)
    gappy[0, 100:400] = np.nan
    gappy[1, -5:] = np.nan
    jobs = [
        ForecastJob(make(3, 2048, 100.0), 256),
        ForecastJob(make(1, 1300, 1e4), 200),
        ForecastJob(gappy, 240),
        ForecastJob(make(2, 2000, 3.0), 256),
    ]
    batched_engine = BatchingForecaster("toto", runner)
    alone_engine = BatchingForecaster("toto", runner)
    try:
        warm = batched_engine.submit(ForecastJob(make(1, 64, 1.0), 8))
        assert entered.wait(WAIT)
        futures = [batched_engine.submit(j) for j in jobs]
        gate.set()
        warm.result(timeout=WAIT)
        batched = [f.result(timeout=120) for f in futures]
        assert batched_engine.calls == 2  # all four jobs (8 rows) in one forecast() call
        for job, out in zip(jobs, batched, strict=True):
            alone = np.concatenate(
                [
                    alone_engine.submit(ForecastJob(row[None, :], job.horizon)).result(timeout=120).quantiles
                    for row in job.context
                ],
                axis=1,
            )
            assert np.isfinite(out.quantiles).all()
            scale = np.abs(alone).max(axis=(0, 2), keepdims=True)  # per-series magnitude
            rel = np.abs(out.quantiles - alone) / scale
            assert rel.max() <= 1e-5, rel.max()
    finally:
        batched_engine.close()
        alone_engine.close()


def test_a_small_job_waits_one_call_behind_a_bulk_job_not_all_of_it(engines) -> None:
    """Smallest job first between calls: a one-series panel arriving while a 10-row bulk job runs
    (one row per call under this memory cap) gets the very next call."""
    runner = FakeRunner(gate=True)
    engine = engines(runner, max_cells=256)
    bulk = engine.submit(ForecastJob(series(10, 256), 4))
    assert runner.entered.wait(WAIT)  # the bulk job's first row is running
    small = engine.submit(ForecastJob(series(1, 256, start=1000.0), 4))
    runner.release.set()
    small_row = series(1, 256, start=1000.0)[0]
    out = small.result(timeout=WAIT)
    bulk.result(timeout=WAIT)
    np.testing.assert_allclose(out.quantiles[:, 0, :], expected(small_row, 4), atol=1e-5)
    assert runner.calls[1]["last"] == [[pytest.approx(small_row[-1])]]  # the very next call
    assert out.queue_wait_s >= 0 and bulk.result().queue_wait_s >= 0


def test_one_series_jobs_of_other_lengths_share_the_call(engines) -> None:
    """Room under the cap goes to compatible rows of other length buckets (left-padded, exact), so
    one-series panels with different context lengths do not take turns call by call."""
    runner = FakeRunner(gate=True)
    engine = engines(runner)
    first = engine.submit(ForecastJob(series(1, 64), 8))
    assert runner.entered.wait(WAIT)
    contexts = {n: series(1, n, start=float(n)) for n in (100, 600, 2048)}
    futures = {n: engine.submit(ForecastJob(ctx, 8)) for n, ctx in contexts.items()}
    other = engine.submit(ForecastJob(series(1, 600), 300))  # another horizon bucket: not mixed in
    runner.release.set()
    for n, f in futures.items():
        np.testing.assert_allclose(f.result(timeout=WAIT).quantiles[:, 0, :], expected(contexts[n][0], 8),
                                   atol=1e-5)
    first.result(timeout=WAIT)
    other.result(timeout=WAIT)
    shapes = [(c["rows"], c["length"], c["horizon"]) for c in runner.calls[1:]]
    assert shapes == [(3, 2048, 8), (1, 608, 300)]


def test_bulk_calls_are_sliced_only_while_panels_are_being_looked_at(engines, monkeypatch) -> None:
    """A model call cannot be preempted: while one-series panels keep arriving, a call that
    carries only bulk rows is cut to `slice_cells`, so the next panel waits for a slice, not for
    the whole bulk call. Without panel traffic bulk runs in full calls; a call that carries a
    panel's row is filled up to the full cap. Sliced or not, every row's answer is the same."""
    from toto_datasource.engine import scheduler

    monkeypatch.setattr(scheduler, "INTERACTIVE_RECENT_S", 3600.0)  # "recent" must not depend on speed
    bulk_rows = series(16, 256, start=500.0)

    quiet = FakeRunner()
    engine = engines(quiet, max_cells=16 * 256, slice_cells=4 * 256)
    out = engine.submit(ForecastJob(bulk_rows, 4)).result(timeout=WAIT)
    assert [c["rows"] for c in quiet.calls] == [16]  # no panel seen: bulk runs in one full call

    busy = FakeRunner(gate=True)
    engine = engines(busy, max_cells=16 * 256, slice_cells=4 * 256)
    panel = engine.submit(ForecastJob(series(1, 256), 4))
    assert busy.entered.wait(WAIT)  # the panel's call runs; bulk arrives behind it
    bulk = engine.submit(ForecastJob(bulk_rows, 4))
    busy.release.set()
    panel.result(timeout=WAIT)
    sliced = bulk.result(timeout=WAIT)
    bulk_calls = [c["rows"] for c in busy.calls[1:]]
    assert max(bulk_calls) <= 4 and sum(bulk_calls) == 16  # sliced while a panel was seen
    np.testing.assert_allclose(sliced.quantiles, out.quantiles, atol=1e-6)

    mixed = FakeRunner(gate=True)
    engine = engines(mixed, max_cells=16 * 256, slice_cells=4 * 256)
    first = engine.submit(ForecastJob(series(1, 256), 4))
    assert mixed.entered.wait(WAIT)
    bulk = engine.submit(ForecastJob(bulk_rows, 4))
    late_panel = engine.submit(ForecastJob(series(1, 256, start=9.0), 4))
    mixed.release.set()
    for f in (first, bulk, late_panel):
        f.result(timeout=WAIT)
    # the late panel goes first and its call is filled up to the full cap with bulk rows
    assert mixed.calls[1]["rows"] == 16 and sum(c["rows"] for c in mixed.calls) == 18


def test_a_job_queued_too_long_goes_ahead_of_smaller_ones(engines, monkeypatch) -> None:
    """Smallest first, but not forever: a job queued over STARVATION_S is served before smaller
    newcomers, oldest first, so a bulk or alert query under a stream of panels still finishes
    inside Grafana's deadline."""
    from toto_datasource.engine import scheduler
    from toto_datasource.engine.pending import PendingJob
    from toto_datasource.engine.prepare import prepare_context

    def pending(rows: int, enqueued: float, deadline: float | None = None) -> PendingJob:
        ctx = series(rows, 64)
        return PendingJob(ForecastJob(ctx, 4, deadline=deadline),
                          [prepare_context(r[None, :], 64) for r in ctx], Future(), enqueued=enqueued)

    monkeypatch.setattr(scheduler, "STARVATION_S", 5.0)
    bulk, early, late = pending(10, 0.0), pending(1, 4.0), pending(1, 6.0)
    assert scheduler.serving_order([bulk, early], now=4.5) == [early, bulk]
    assert scheduler.serving_order([bulk, late, early], now=5.5) == [bulk, early, late]
    assert scheduler.serving_order([bulk, late, early], now=10.0) == [bulk, early, late]  # FIFO once starved
    alert = pending(8, 0.0, deadline=4.0)  # half of its 4 s deadline is gone at 2 s, before STARVATION_S
    assert scheduler.serving_order([alert, early], now=2.5) == [alert, early]

    # through the engine: with every job "starved" at once, the bulk job queued first runs first
    monkeypatch.setattr(scheduler, "STARVATION_S", 0.0)
    runner = FakeRunner(gate=True)
    engine = engines(runner, max_cells=256)
    big = engine.submit(ForecastJob(series(10, 256), 4))
    assert runner.entered.wait(WAIT)
    small = engine.submit(ForecastJob(series(1, 256, start=1000.0), 4))
    runner.release.set()
    small.result(timeout=WAIT)
    big.result(timeout=WAIT)
    assert runner.calls[-1]["last"] == [[pytest.approx(series(1, 256, start=1000.0)[0][-1])]]
