"""Small shared helpers for the Prometheus source tests (importable, unlike conftest)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from toto_datasource.core.request import RequestContext
from toto_datasource.core.settings import Secret
from toto_datasource.sources.base import HistoryRequest, TimeGrid
from toto_datasource.sources.prometheus import PrometheusSettings, PrometheusSpec

from . import prom_server, prom_synthetic

BASIC_USER = "toto"
BASIC_PASSWORD = "toto-test-pass"
# bcrypt (cost 4, cheap for the server to check on every request) of BASIC_PASSWORD.
BASIC_HASH = "$2b$04$XjCyrKSEO2xLt3b3HAVjleQtF2S1K5cKQR8bbaSADK6uC/YZxPZAq"
MAX_SAMPLES = 1000  # on the auth server: lets a small query hit Prometheus's own sample limit


@dataclass
class PromEnv:
    url: str
    data: prom_synthetic.Synthetic
    server: prom_server.PromServer


@dataclass
class AuthEnv:
    url: str
    ca_pem: str  # the self-signed certificate the server presents
    server: prom_server.PromServer


@dataclass(frozen=True)
class FakeQuery:
    """The one field of a ForecastQuery that a source reads: its own spec."""

    source: PrometheusSpec


def request(expr: str, grid: TimeGrid, ctx: RequestContext | None = None, legend: str = "") -> HistoryRequest:
    return HistoryRequest(grid=grid, query=FakeQuery(PrometheusSpec(expr, legend)),  # type: ignore[arg-type]
                          ctx=ctx or RequestContext())


def grid(end_s: int, step_s: float, count: int) -> TimeGrid:
    return TimeGrid(end_ms=int(end_s * 1000), step_ms=int(step_s * 1000), count=count)


def settings(url: str, **kw: object) -> PrometheusSettings:
    for key in ("basic_password", "bearer_token"):
        if isinstance(kw.get(key), str):
            kw[key] = Secret(kw[key])  # type: ignore[arg-type]
    if "headers" in kw:
        kw["headers"] = tuple((k, Secret(v)) for k, v in kw["headers"])  # type: ignore[attr-defined]
    kw.setdefault("timeout_s", 10.0)
    return PrometheusSettings(url=url, **kw)  # type: ignore[arg-type]


def poll[T](fn: Callable[[], T | None], deadline_s: float, interval_s: float = 0.2) -> T:
    """Call fn until it returns a value (not None) or the deadline passes (then AssertionError)."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = fn()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {deadline_s}s")
        time.sleep(interval_s)  # a poll interval with a bounded deadline, not a synchronising sleep
