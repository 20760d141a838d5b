"""CPU slots: at most one request per core runs Python at a time; a request that waits gives its
slot up.

Why: the model's inference thread needs the GIL between every torch op of Toto's eager forward,
and CPython hands the GIL to whichever waiting thread the OS wakes. Under 200 concurrent clients
dozens of request threads were parsing, fetching and encoding at once, and one 16-row model call
that takes 0.06 s alone took 4.6 s (bench/load_mixed.py). With a slot per core, a request holds
its slot while it computes and gives it back whenever it blocks — on a forecast, an upstream
fetch or a fetch permit (`RequestContext.released()`) — so few threads contend for the GIL and
none is stuck behind a waiter. The inference thread and the health/diagnostics RPCs never take
a slot.

The slot is the request's (a `CpuSlot` in its RequestContext), not the thread's: no
thread-local state, so a pool thread reused by the next RPC starts with nothing held.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

# A safety valve, not a timeout: a request that waited this long for a slot runs without one, so
# a slot held across a wait nobody released can delay others but never stall them.
MAX_SLOT_WAIT_S = 0.5


class CpuSlots:
    """The process's slots: one per core the process may use (ProcessConfig.cpu_slots)."""

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self._free = threading.Semaphore(self.count)

    def acquire(self) -> bool:
        return self._free.acquire(timeout=MAX_SLOT_WAIT_S)

    def release(self) -> None:
        self._free.release()

    def slot(self) -> CpuSlot:
        """A request's hold on one of these slots (taken by `CpuSlot.held()`)."""
        return CpuSlot(self)


class CpuSlot:
    """One request's CPU slot: taken for its Python work, given back while it blocks.

    A request's work runs on the thread that took the slot; `released()` and `held()` nest."""

    def __init__(self, slots: CpuSlots | None) -> None:
        self._slots = slots
        self._held = False
        self._depth = 0

    @property
    def is_held(self) -> bool:
        return self._held

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the slot for the request's Python work (re-entrant)."""
        if self._slots is None or self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        self._held = self._slots.acquire()
        try:
            yield
        finally:
            self._depth = 0
            if self._held:
                self._held = False
                self._slots.release()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Give the slot back while the request blocks (a future, a socket, a lock)."""
        if self._slots is None or not self._held:
            yield
            return
        self._held = False
        self._slots.release()
        try:
            yield
        finally:
            self._held = self._slots.acquire()


NO_SLOT = CpuSlot(None)  # for work that is not an RPC: nothing to take, nothing to give back
