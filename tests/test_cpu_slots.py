"""CPU slots (core/cpu.py): request threads hold one while computing and give it up to wait."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest
from toto_datasource.core import cpu
from toto_datasource.engine.types import ForecastOutput
from toto_datasource.querytypes.base import await_output

WAIT = 30


@pytest.fixture()
def one_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "_slots", threading.Semaphore(1))


def test_a_second_thread_waits_for_the_slot_and_nesting_shares_it(one_slot: None) -> None:
    entered = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with cpu.cpu_slot(), cpu.cpu_slot():  # nested: the same slot
            order.append("holder")
            entered.set()
            assert release.wait(WAIT)

    t = threading.Thread(target=holder)
    t.start()
    assert entered.wait(WAIT)
    assert not cpu._slots.acquire(blocking=False)  # the only slot is taken
    release.set()
    t.join(WAIT)
    with cpu.cpu_slot():
        assert cpu.holds_slot()
    assert not cpu.holds_slot() and order == ["holder"]


def test_waiting_for_a_forecast_gives_the_slot_to_another_request(one_slot: None) -> None:
    """A request blocked on the model must not keep others from parsing and encoding."""
    future: Future[ForecastOutput] = Future()
    waiting = threading.Event()
    result: list[ForecastOutput] = []

    def request() -> None:
        with cpu.cpu_slot():
            waiting.set()
            result.append(await_output(future, WAIT))
            assert cpu.holds_slot()  # back after the wait

    t = threading.Thread(target=request)
    t.start()
    assert waiting.wait(WAIT)
    with cpu.cpu_slot():  # got the slot while the other request waits on its forecast
        assert cpu.holds_slot()
    future.set_result(ForecastOutput(None, "test"))  # type: ignore[arg-type]
    t.join(WAIT)
    assert result and result[0].model == "test"


def test_a_slot_held_across_an_unwrapped_wait_only_delays_others(one_slot: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "MAX_SLOT_WAIT_S", 0.01)
    assert cpu._slots.acquire()  # someone blocked somewhere holds the only slot
    try:
        with cpu.cpu_slot():  # runs anyway, without a slot, after the valve
            assert not cpu.holds_slot()
    finally:
        cpu._slots.release()
