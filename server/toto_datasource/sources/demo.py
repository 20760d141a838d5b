"""Built-in demo telemetry: deterministic synthetic series on the query's grid.

Makes the product run with nothing else installed: `make demo`, first-time users and tests.
Values depend only on the grid (timestamps, step, end), so the same query gives the same
series. The PostgreSQL load follows the seed scenario: base ~300 QPS, daily and hourly
seasonality, an upward trend, noise and overload spikes of +250…500 QPS lasting
30 steps (four in the last 34 h).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.request import RequestContext
from ..core.settings import DataSourceSettings
from .base import History, HistoryRequest, Series, SimpleProvider, StaticSource, TimeGrid, spec_of

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
GB = 1e9


def _uniform(t: np.ndarray, salt: float) -> np.ndarray:
    """Stateless pseudo-random numbers in [0, 1) keyed by timestamp (reproducible anywhere)."""
    x = np.sin((t / 1000.0 % 1e7) * 12.9898 + salt * 78.233) * 43758.5453
    return x - np.floor(x)


def _normal(t: np.ndarray, salt: float) -> np.ndarray:
    u1 = np.clip(_uniform(t, salt), 1e-12, 1.0)
    u2 = _uniform(t, salt + 17.0)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)


def _daily(t: np.ndarray, peak_hour_utc: float = 14.0) -> np.ndarray:
    return np.cos(2 * np.pi * ((t % DAY_MS) / DAY_MS - peak_hour_utc / 24.0))


def _hourly(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * (t % HOUR_MS) / HOUR_MS)


def postgres_load(grid: TimeGrid) -> Series:
    t = grid.timestamps_ms().astype(np.float64)
    days_before_end = (t - grid.end_ms) / DAY_MS
    # The daily peak is anchored 90 minutes after the grid end, so "now" always shows the climb
    # towards the evening peak that the seed scenario is about.
    daily = np.cos(2 * np.pi * (days_before_end - 1.5 / 24))
    qps = 370 + 25 * days_before_end + 95 * daily + 20 * _hourly(t) + 9 * _normal(t, 1.0)
    # Overload spikes of +250…500 QPS for 30 steps, one in each 7-hour period counted back from the
    # grid end except the latest: the ~34 h that `make demo` plots always show four of them, and
    # the forecast starts from a calm stretch (the last spike ends at least 7 h before "now").
    period = 7 * HOUR_MS
    k = np.floor((grid.end_ms - t) / period)  # 0 for the latest period, 1 before it, ...
    key = k * 1000.0 + np.floor(grid.end_ms / period)  # the same picture for the same "now"
    room = max(period - 30 * grid.step_ms, 0)
    start = grid.end_ms - (k + 1) * period + _uniform(key, 3.0) * room
    active = (k >= 1) & (t >= start) & (t < start + 30 * grid.step_ms)
    qps = qps + active * (250 + 250 * _uniform(key, 7.0))
    labels = {"__name__": "db_qps", "db": "orders", "instance": "pg-primary"}
    return Series("db_qps", labels, np.maximum(qps, 0), unit="reqps")


def cpu(grid: TimeGrid) -> Series:
    t = grid.timestamps_ms().astype(np.float64)
    value = 45 + 20 * _daily(t, 15.0) + 5 * _hourly(t) + 3 * _normal(t, 2.0)
    labels = {"__name__": "cpu_utilisation", "instance": "web-1"}
    return Series("cpu_utilisation", labels, np.clip(value, 0, 100), unit="percent")


def memory_leak(grid: TimeGrid) -> Series:
    t = grid.timestamps_ms().astype(np.float64)
    since_restart = (t % (3 * DAY_MS)) / HOUR_MS  # the process restarts every 3 days
    value = 1.2 * GB + 0.05 * GB * since_restart + 0.02 * GB * _normal(t, 3.0)
    labels = {"__name__": "process_resident_memory_bytes", "job": "api"}
    return Series("process_resident_memory_bytes", labels, value, unit="bytes")


DISK_CAPACITY = 500 * GB
DISK_FILL_PER_DAY = 5 * GB
DISK_FREE_AT_END = 46 * GB  # → full in 9.2 days at the fill rate: the seed's Kafka volume


def disk_fill(grid: TimeGrid) -> Series:
    t = grid.timestamps_ms().astype(np.float64)
    days_before_end = (t - grid.end_ms) / DAY_MS
    free = DISK_FREE_AT_END - DISK_FILL_PER_DAY * days_before_end + 0.3 * GB * _daily(t, 3.0)
    labels = {
        "__name__": "node_filesystem_avail_bytes", "mountpoint": "/var/lib/kafka", "instance": "kafka-1"
    }
    return Series("node_filesystem_avail_bytes", labels, np.clip(free, 0, DISK_CAPACITY), unit="decbytes")


def latency_p99(grid: TimeGrid) -> Series:
    t = grid.timestamps_ms().astype(np.float64)
    value = 0.25 + 0.06 * _daily(t) + 0.01 * np.abs(_normal(t, 4.0))
    return Series("http_request_duration_seconds_p99", {"__name__": "http_request_duration_seconds_p99",
                                                         "service": "checkout"}, value, unit="s")


SCENARIOS: dict[str, Callable[[TimeGrid], Series]] = {
    "postgres-load": postgres_load,
    "cpu": cpu,
    "memory-leak": memory_leak,
    "disk-fill": disk_fill,
    "latency-p99": latency_p99,
}


@dataclass(frozen=True)
class DemoSpec:
    scenario: str


class DemoSource(StaticSource):
    def __init__(self, scenario: str | None = None) -> None:
        self.scenario = scenario  # fixed scenario (tests), else the query's

    def fetch(self, request: HistoryRequest) -> History:
        scenario = self.scenario or spec_of(request, DemoSpec).scenario
        names = list(SCENARIOS) if scenario == "all" else [scenario]
        return History(
            request.grid,
            [SCENARIOS[n](request.grid) for n in names],
            executed_query=f"demo scenario {scenario}",
        )

    def series_count(self, spec: Any, grid: TimeGrid, ctx: RequestContext) -> int:
        return len(SCENARIOS) if spec.scenario == "all" else 1


class DemoProvider(SimpleProvider):
    name = "demo"
    title = "Demo telemetry"
    description = "built-in demo telemetry"
    schema: Mapping[str, Any] = {
        "scenario": {
            "type": "string",
            "enum": [*SCENARIOS, "all"],
            "default": "postgres-load",
            "description": "Demo telemetry scenario (source=demo).",
        },
    }

    def parse_query(self, obj: Mapping[str, Any]) -> DemoSpec:
        return DemoSpec(obj.get("scenario", "postgres-load"))

    def open(self, settings: DataSourceSettings) -> DemoSource:
        return DemoSource()
