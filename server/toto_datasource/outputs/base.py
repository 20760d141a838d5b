"""The interface every query type implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..engine.types import Forecaster
from ..frames.forecast import FrameContext
from ..frames.model import Frame
from ..query import ForecastQuery, Plan
from ..sources.base import History


@dataclass
class OutputRequest:
    query: ForecastQuery
    history: History
    plan: Plan
    forecaster: Forecaster
    ctx: FrameContext
    deadline: float | None  # time.monotonic() value


class PendingOutput(Protocol):
    def frames(self, timeout: float | None) -> list[Frame]: ...


class OutputKind(Protocol):
    def submit(self, request: OutputRequest) -> PendingOutput: ...
