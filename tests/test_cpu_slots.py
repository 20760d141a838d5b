"""CPU slots (core/cpu.py): a request holds one while computing and gives it up to wait."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest
from toto_datasource.core import cpu
from toto_datasource.core.request import RequestContext
from toto_datasource.engine.types import ForecastOutput
from toto_datasource.frames.forecast import QueryMeta
from toto_datasource.querytypes.base import SubmitRequest

WAIT = 30


class Named:
    name = "test-model"


def hold_in_thread(slot: cpu.CpuSlot) -> tuple[threading.Thread, threading.Event, threading.Event]:
    """A request on another thread that takes `slot` and keeps it until released."""
    entered, release = threading.Event(), threading.Event()

    def run() -> None:
        with slot.held(), slot.held():  # nested: the same slot
            entered.set()
            assert release.wait(WAIT)

    t = threading.Thread(target=run)
    t.start()
    assert entered.wait(WAIT)
    return t, entered, release


def test_a_second_request_waits_for_the_only_slot() -> None:
    slots = cpu.CpuSlots(1)
    first, second = slots.slot(), slots.slot()
    t, _, release = hold_in_thread(first)
    assert first.is_held
    got: list[bool] = []

    def run_second() -> None:
        with second.held():
            got.append(second.is_held)

    waiter = threading.Thread(target=run_second)
    waiter.start()
    release.set()  # the first request ends; the second gets the slot it waited for
    t.join(WAIT)
    waiter.join(WAIT)
    assert got == [True] and not first.is_held and not second.is_held


def test_waiting_for_a_forecast_gives_the_slot_to_another_request() -> None:
    """A request blocked on the model must not keep others from parsing and encoding."""
    slots = cpu.CpuSlots(1)
    ctx = RequestContext(cpu=slots.slot())
    request = SubmitRequest(None, None, None, Named(), QueryMeta(""), ctx)  # type: ignore[arg-type]
    future: Future[ForecastOutput] = Future()
    waiting = threading.Event()
    result: list[ForecastOutput] = []

    def run() -> None:
        with ctx.cpu.held():
            waiting.set()
            result.append(request.wait(future))
            assert ctx.cpu.is_held  # back after the wait

    t = threading.Thread(target=run)
    t.start()
    assert waiting.wait(WAIT)
    other = slots.slot()
    with other.held():  # got the slot while the first request waits on its forecast
        assert other.is_held
    future.set_result(ForecastOutput(None, "test", queue_wait_s=0.25))  # type: ignore[arg-type]
    t.join(WAIT)
    assert result and result[0].model == "test"
    assert request.meta.custom["queueWaitMs"] == 250.0  # what the frames' meta shows


def test_a_slot_held_across_an_unreleased_wait_only_delays_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "MAX_SLOT_WAIT_S", 0.01)
    slots = cpu.CpuSlots(1)
    t, _, release = hold_in_thread(slots.slot())  # someone blocked somewhere holds the only slot
    try:
        late = slots.slot()
        with late.held():  # runs anyway, without a slot, after the valve
            assert not late.is_held
    finally:
        release.set()
        t.join(WAIT)


def test_work_that_is_not_an_rpc_takes_no_slot() -> None:
    ctx = RequestContext()
    with ctx.cpu.held(), ctx.released():
        assert not ctx.cpu.is_held
