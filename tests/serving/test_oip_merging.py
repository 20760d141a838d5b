"""The plain OIP server merges requests that queue behind a running model call (serving/merging.py).

The model is held at a gate (conftest's `oip_server`): one request enters the model, others are
sent and the test waits until the runner has queued them (`wait_until_waiting`, no sleeps), then
opens the gate. Counters on the real engine (random 4m checkpoint) show how many calls ran.

Exactness: a request merged with others gets bit for bit its slice of the merged model call,
and matches the request run alone up to float32 rounding (CPU kernels round a row a little
differently by batch shape: ~1 ulp, see merging.py), which is the tolerance used against "alone".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
from toto_datasource.core.errors import BackendError
from toto_datasource.engine.batch import PreparedBatch
from toto_datasource.engine.remote import RemoteRunner, RemoteSettings, contract
from toto_datasource.serving.engine import merge_key, run_merged
from toto_datasource.serving.merging import CallerGone, MergingRunner

from .conftest import TOKEN, prepared_batch

ALONE_RTOL, ALONE_ATOL = 1e-6, 1e-5  # float32 rounding on values up to ~100


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def target() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # the test inspects it
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    return t, out


def join(*threads: threading.Thread) -> None:
    for t in threads:
        t.join(60)
        assert not t.is_alive()


def hold_the_model(oip_server) -> None:  # type: ignore[no-untyped-def]
    oip_server.gate.open.clear()
    oip_server.gate.entered.clear()


def test_requests_queued_behind_a_call_share_the_next_one(oip_server, serving_engine) -> None:
    runner = RemoteRunner(RemoteSettings(oip_server.address, token=TOKEN, max_rows=8))
    first = prepared_batch(rows=1, seed=10)
    queued = [
        prepared_batch(rows=3, seed=11),
        prepared_batch(rows=2, seed=12, horizon=48, gaps=False),  # shorter horizon, same bucket
        prepared_batch(rows=1, seed=13, length=448),  # shorter context, same bucket: left-padded
    ]
    assert len({merge_key(b) for b in [first, *queued]}) == 1
    hold_the_model(oip_server)
    t0, out0 = in_thread(lambda: runner(first))
    assert oip_server.gate.entered.wait(30)  # `first` is in the model (not yet counted)
    calls, rows, rounds = serving_engine.calls, serving_engine.rows, oip_server.servicer.runner.rounds
    waiting = [in_thread(lambda b=b: runner(b)) for b in queued]
    assert oip_server.servicer.runner.wait_until_waiting(3, 30)
    oip_server.gate.open.set()
    join(t0, *(t for t, _ in waiting))

    assert serving_engine.calls - calls == 2  # `first` alone, then all three queued together
    assert serving_engine.rows - rows == 1 + 6
    assert oip_server.servicer.runner.rounds - rounds == 2
    np.testing.assert_array_equal(out0["result"], serving_engine.run(first))  # it ran alone
    merged = run_merged(serving_engine, queued)  # the same call again: deterministic
    for i, (batch, (_, out)) in enumerate(zip(queued, waiting, strict=True)):
        assert "error" not in out, out.get("error")
        result = out["result"]
        assert result.shape == (9, batch.rows, 1, batch.horizon)
        np.testing.assert_array_equal(result, merged[i])  # exactly its own slice
        alone = serving_engine.run(batch)
        np.testing.assert_allclose(result, alone, rtol=ALONE_RTOL, atol=ALONE_ATOL)


def test_a_lone_request_runs_at_once_in_its_own_call(oip_server, serving_engine) -> None:
    runner = RemoteRunner(RemoteSettings(oip_server.address, token=TOKEN, max_rows=8))
    batch = prepared_batch(rows=2, seed=14)
    calls = serving_engine.calls
    np.testing.assert_array_equal(runner(batch), serving_engine.run(batch))
    assert serving_engine.calls - calls == 2  # the request's call, then the reference's


@dataclass
class FakeContext:
    """A grpc.ServicerContext as ModelInfer uses it; `active` False = the caller went away."""

    active: bool = True
    aborted: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {TOKEN}"),)

    def is_active(self) -> bool:
        return self.active

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted.append((code, details))
        raise grpc.RpcError(details)


def test_a_waiter_whose_caller_left_is_dropped_not_run(oip_server, serving_engine) -> None:
    servicer = oip_server.servicer
    first, left, stays = (prepared_batch(rows=r, seed=20 + r) for r in (1, 2, 3))
    hold_the_model(oip_server)
    t0, _ = in_thread(lambda: servicer.runner.run(first))
    assert oip_server.gate.entered.wait(30)
    rows, dropped = serving_engine.rows, servicer.runner.dropped
    gone_context = FakeContext()
    t1, out1 = in_thread(lambda: servicer.ModelInfer(contract.encode_request(left, "toto"), gone_context))
    t2, out2 = in_thread(lambda: servicer.runner.run(stays))
    assert servicer.runner.wait_until_waiting(2, 30)
    gone_context.active = False  # the caller hung up while queued
    oip_server.gate.open.set()
    join(t0, t1, t2)

    assert serving_engine.rows - rows == first.rows + stays.rows  # `left` never reached the model
    assert servicer.runner.dropped - dropped == 1
    assert isinstance(out1["error"], grpc.RpcError)
    assert gone_context.aborted == [(grpc.StatusCode.CANCELLED, "the caller went away before the model ran")]
    np.testing.assert_array_equal(out2["result"], serving_engine.run(stays))
    with pytest.raises(CallerGone):
        servicer.runner.run(stays, gone=lambda: True)


def test_a_failing_merged_call_fails_each_of_its_requests(oip_server, serving_engine) -> None:
    gated_run = serving_engine.run

    def run_or_fail(batch: PreparedBatch) -> np.ndarray:
        if batch.rows == 5:  # the merged call of the two queued requests below
            raise RuntimeError("out of memory on purpose")
        return gated_run(batch)

    serving_engine.run = run_or_fail  # type: ignore[method-assign]
    try:
        runner = RemoteRunner(RemoteSettings(oip_server.address, token=TOKEN, max_rows=8))
        hold_the_model(oip_server)
        t0, out0 = in_thread(lambda: runner(prepared_batch(rows=1, seed=30)))
        assert oip_server.gate.entered.wait(30)
        waiting = [in_thread(lambda r=r: runner(prepared_batch(rows=r, seed=30 + r))) for r in (2, 3)]
        assert oip_server.servicer.runner.wait_until_waiting(2, 30)
        oip_server.gate.open.set()
        join(t0, *(t for t, _ in waiting))

        assert "result" in out0
        for _, out in waiting:
            err = out["error"]
            assert isinstance(err, BackendError) and err.status == 502
            assert "INTERNAL" in err.message and oip_server.address in err.message
            assert "RuntimeError: out of memory on purpose" in err.message
            assert "merged from 2 requests" in err.message
        batch = prepared_batch(rows=2, seed=39)  # the engine carries on
        np.testing.assert_array_equal(runner(batch), serving_engine.run(batch))
    finally:
        serving_engine.run = gated_run  # type: ignore[method-assign]


def test_a_round_takes_one_merge_key_and_at_most_max_rows_per_call(oip_server, serving_engine) -> None:
    gated_run = serving_engine.run
    call_rows: list[int] = []

    def recording_run(batch: PreparedBatch) -> np.ndarray:
        call_rows.append(batch.rows)
        return gated_run(batch)

    serving_engine.run = recording_run  # type: ignore[method-assign]
    try:
        merging = MergingRunner(serving_engine, max_rows_per_call=4)
        hold_the_model(oip_server)
        t0, _ = in_thread(lambda: merging.run(prepared_batch(rows=1, seed=40)))
        assert oip_server.gate.entered.wait(30)
        # Queued in this order: 3 rows, 2 rows, a long-horizon row (another key), 1 row.
        batches = [
            prepared_batch(rows=3, seed=41),
            prepared_batch(rows=2, seed=42),
            prepared_batch(rows=1, seed=43, horizon=256),
            prepared_batch(rows=1, seed=44),
        ]
        threads = []
        for n, b in enumerate(batches, start=1):  # one at a time, so the queue keeps this order
            threads.append(in_thread(lambda b=b: merging.run(b)))
            assert merging.wait_until_waiting(n, 30)
        oip_server.gate.open.set()
        join(t0, *(t for t, _ in threads))
    finally:
        serving_engine.run = gated_run  # type: ignore[method-assign]

    # first alone; then the oldest (3) + the 1-row of its key that fits under 4; then 2; then 256.
    assert call_rows == [1, 4, 2, 1]
    assert merging.rounds == 4 and merging.requests_run == 5
    for b, (_, out) in zip(batches, threads, strict=True):
        assert out["result"].shape == (9, b.rows, 1, b.horizon)
