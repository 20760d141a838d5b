"""CPU slots: at most one request thread per core runs Python at a time; waiting gives the slot up.

Why: the model's inference thread needs the GIL between every torch op of Toto's eager forward,
and CPython hands the GIL to whichever waiting thread the OS wakes. Under 200 concurrent clients
dozens of request threads were parsing, fetching and encoding at once, and one 16-row model call
that takes 0.06 s alone took 4.6 s (bench/load_mixed.py). With a slot per core, a request thread
holds its slot while it computes and gives it back whenever it blocks — on a forecast
(querytypes/base.await_output), an upstream fetch (sources/http_budget, sources/grafana) or a fetch
slot — so few threads contend for the GIL and none is stuck behind a waiter. The inference thread
and the health/diagnostics RPCs never take a slot.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

_local = threading.local()
# A safety valve, not a timeout: a thread that waited this long for a slot runs without one, so a
# slot held across a wait nobody wrapped in `released()` can delay others but never stall them.
MAX_SLOT_WAIT_S = 0.5


def _slots_from_environment() -> int:
    raw = os.environ.get("TOTO_CPU_SLOTS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else max(1, os.cpu_count() or 1)


_slots = threading.Semaphore(_slots_from_environment())


@contextlib.contextmanager
def cpu_slot() -> Iterator[None]:
    """Hold a CPU slot for this thread's Python work (re-entrant: nested uses share it)."""
    if getattr(_local, "held", False):
        yield
        return
    got = _slots.acquire(timeout=MAX_SLOT_WAIT_S)
    _local.held = got
    try:
        yield
    finally:
        if _local.held:
            _local.held = False
            _slots.release()


@contextlib.contextmanager
def released() -> Iterator[None]:
    """Give this thread's slot back while it blocks (a future, a socket, a lock); no-op without one."""
    if not getattr(_local, "held", False):
        yield
        return
    _local.held = False
    _slots.release()
    try:
        yield
    finally:
        _local.held = _slots.acquire(timeout=MAX_SLOT_WAIT_S)


def holds_slot() -> bool:
    return bool(getattr(_local, "held", False))
