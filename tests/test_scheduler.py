"""The batching scheduler, with fake runners (fast) and the real 4m model.

Synchronisation is by events: a gated runner holds the inference thread inside a call so the
test can queue work behind it deterministically. No sleeps, no timing asserts.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest
from engine_fakes import WAIT, FakeRunner, expected, sample, series
from toto_datasource.core.cancel import Cancellation
from toto_datasource.core.errors import BackendError
from toto_datasource.engine.scheduler import BatchingForecaster, DeadlineExceeded
from toto_datasource.engine.types import ForecastJob


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
