"""One RPC's state — deadline, cancellation, CPU slot, caller — as one value passed explicitly.

The gRPC edge (`plugin/servicers.py`) creates a RequestContext for every call and hands it to
the service, which passes it to sources (`HistoryRequest.ctx`), query types (`SubmitRequest`)
and every upstream call. Why explicit, not thread-locals or contextvars: RPCs run on reused pool
threads and forecasts move to the scheduler's thread, so neither carries per-request state
safely, and a parameter cannot be forgotten by new code that waits or reads for a user.

Deadlines follow one rule (`answer_deadline`): the edge keeps back min(1 s, 10 %) of Grafana's
deadline for encoding and sending the answer; every upstream call's budget is then
min(its own timeout, what is left of that deadline) (`RequestContext.budget`), so a slow query
is its own 504 before the call's DEADLINE_EXCEEDED. Health probes apply the same rule once more
inside the check's deadline, so a probe's own words arrive before the check's cut-off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from .cancel import Cancellation
from .cpu import NO_SLOT, CpuSlot
from .identity import NO_CALLER, Caller

MARGIN_S = 1.0  # kept back from a deadline at most: encoding and sending what is due by it
MARGIN_FRACTION = 0.1  # with less than 10 s left, keep back this fraction instead

Clock = Callable[[], float]


def answer_deadline(remaining_s: float | None, clock: Clock = time.monotonic) -> float | None:
    """When answers must be ready, `remaining_s` before a caller's deadline: less the margin."""
    if remaining_s is None:
        return None
    return clock() + remaining_s - min(MARGIN_S, MARGIN_FRACTION * max(0.0, remaining_s))


@dataclass(frozen=True)
class Budget:
    """Seconds one upstream call may take in total, its deadline on `clock`, and why that much."""

    seconds: float
    deadline: float
    reason: str
    clock: Clock = time.monotonic

    def remaining(self) -> float:
        return self.deadline - self.clock()

    @property
    def capped_by_request(self) -> bool:
        """True when the request's deadline, not the upstream's own timeout, set the budget."""
        return self.reason.startswith("what was left")


@dataclass(eq=False)
class RequestContext:
    """Everything one RPC carries through the stages. `clock` (time.monotonic unless a test
    drives time) measures `deadline` and every budget made from it."""

    deadline: float | None = None
    caller: Caller = NO_CALLER
    cancellation: Cancellation = field(default_factory=Cancellation)
    cpu: CpuSlot = NO_SLOT
    clock: Clock = time.monotonic
    # A CallResource (an editor's lookup or preview): made from a person's browser, never by an
    # alert rule, so a source that reads for the caller has no "no user" allow-list to fall back to.
    resource_call: bool = False

    @property
    def from_alert(self) -> bool:
        return self.caller.from_alert

    def left(self) -> float | None:
        """Seconds until the deadline (never negative), or None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - self.clock())

    def budget(self, timeout_s: float) -> Budget:
        """The one budget rule: min(`timeout_s`, what is left of the request's deadline)."""
        now = self.clock()
        seconds, reason = timeout_s, f"the data source's timeout of {timeout_s:g}s"
        if self.deadline is not None and self.deadline - now < timeout_s:
            seconds = max(0.0, self.deadline - now)
            reason = f"what was left ({seconds:.1f}s) of Grafana's deadline for the request"
        return Budget(seconds, now + seconds, reason, self.clock)

    def with_deadline(self, deadline: float | None) -> RequestContext:
        """The same request, due earlier (a health probe's own deadline inside the check's)."""
        if deadline is None or (self.deadline is not None and self.deadline <= deadline):
            return self
        return RequestContext(deadline, self.caller, self.cancellation, self.cpu, self.clock,
                              self.resource_call)

    def released(self) -> AbstractContextManager[None]:
        """Give the request's CPU slot back while it blocks."""
        return self.cpu.released()

    def track[F: Future[Any]](self, future: F) -> F:
        """Drop `future`'s work when the request is cancelled."""
        return self.cancellation.track(future)

    @property
    def cancelled(self) -> bool:
        return self.cancellation.cancelled


def background(timeout_s: float | None = None, caller: Caller = NO_CALLER) -> RequestContext:
    """A request context for work no RPC asked for (the demo, the CLI, a warm-up): no CPU slot,
    its own deadline `timeout_s` from now (None: no deadline)."""
    return RequestContext(None if timeout_s is None else time.monotonic() + timeout_s, caller)
