"""Synthetic history with known shape, written as OpenMetrics for `promtool` backfilling.

Everything the tests assert is derived from the arrays kept here, so a test can compute the
exact values a range query must return (including Prometheus's 5-minute lookback).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DAY = 86_400
WEEK = 7 * DAY
LOOKBACK_S = 300  # Prometheus's default --query.lookback-delta
# Prometheus 2.x selects samples in [t - 5m, t]; 3.x made the window left-open, (t - 5m, t].
LOOKBACK_INCLUSIVE = True


@dataclass
class SynthSeries:
    name: str
    labels: dict[str, str]
    ts: np.ndarray  # int64 unix seconds, increasing
    values: np.ndarray  # float64; NaN is a real NaN sample

    @property
    def all_labels(self) -> dict[str, str]:
        return {"__name__": self.name, **self.labels}


@dataclass
class Synthetic:
    """The generated data set plus the instants the tests look for."""

    end_s: int
    step_s: int
    days: int
    series: dict[str, SynthSeries] = field(default_factory=dict)
    gap: tuple[int, int] = (0, 0)  # [start, end) without samples in load{instance="b"}
    spike_s: int = 0  # load{instance="c"} jumps by SPIKE here
    spike: float = 500.0
    nan_s: tuple[int, ...] = ()  # load{instance="a"} has NaN samples here
    reset_s: int = 0  # the counter resets to 0 here
    late_s: int = 0  # toto_test_late starts here
    many: int = 0  # number of toto_test_many series

    @property
    def start_s(self) -> int:
        return self.end_s - self.days * DAY


def expected_on_grid(s: SynthSeries, start_s: int, step_s: int, count: int) -> np.ndarray:
    """What a range query returns for a raw selector: at each step the newest sample within the
    5-minute lookback window, else nothing (NaN)."""
    grid = start_s + step_s * np.arange(count, dtype=np.int64)
    idx = np.searchsorted(s.ts, grid, side="right") - 1
    age = grid - s.ts[np.clip(idx, 0, None)]
    ok = (idx >= 0) & ((age <= LOOKBACK_S) if LOOKBACK_INCLUSIVE else (age < LOOKBACK_S))
    out = np.full(count, np.nan)
    out[ok] = s.values[idx[ok]]
    return out


def generate(end_s: int, days: int = 21, step_s: int = 60, many: int = 300, seed: int = 7) -> Synthetic:
    """Weeks of 1-minute history ending at `end_s` (a multiple of an hour)."""
    rng = np.random.default_rng(seed)
    start = end_s - days * DAY
    ts = np.arange(start, end_s + 1, step_s, dtype=np.int64)
    t = (ts - start).astype(np.float64)
    syn = Synthetic(end_s=end_s, step_s=step_s, days=days, many=many)

    def seasonal(base: float, trend_per_day: float, phase: float) -> np.ndarray:
        daily = 20.0 * np.sin(2 * np.pi * (ts % DAY) / DAY + phase)
        weekly = 10.0 * np.sin(2 * np.pi * (ts % WEEK) / WEEK)
        noise = rng.normal(0.0, 1.0, ts.size).round(3)
        return np.round(base + daily + weekly + trend_per_day * t / DAY + noise, 3)

    load = {"a": seasonal(100, 0.5, 0.0), "b": seasonal(200, -0.2, 1.0), "c": seasonal(150, 1.0, 2.0)}
    # a: three NaN samples two days before the end (NaN values, not gaps).
    syn.nan_s = tuple(end_s - 2 * DAY + step_s * i for i in range(3))
    load["a"][np.isin(ts, syn.nan_s)] = np.nan
    # c: one spike three days before the end.
    syn.spike_s = end_s - 3 * DAY
    load["c"][ts == syn.spike_s] += syn.spike
    for inst, values in load.items():
        keep = np.ones(ts.size, dtype=bool)
        if inst == "b":  # b: six hours without samples, five days before the end
            syn.gap = (end_s - 5 * DAY, end_s - 5 * DAY + 6 * 3600)
            keep = (ts < syn.gap[0]) | (ts >= syn.gap[1])
        syn.series[f"load_{inst}"] = SynthSeries(
            "toto_test_load", {"env": "prod", "instance": inst, "job": "app"}, ts[keep], values[keep]
        )

    # A counter at ~5/s with a daily swing that resets to zero four days before the end.
    syn.reset_s = end_s - 4 * DAY
    per_step = step_s * (5.0 + 2.0 * np.sin(2 * np.pi * (ts % DAY) / DAY))
    counter = np.cumsum(per_step)
    after = ts >= syn.reset_s
    counter[after] -= counter[np.argmax(after)]
    syn.series["requests"] = SynthSeries(
        "toto_test_requests_total", {"instance": "a", "job": "app"}, ts, np.round(counter, 3)
    )

    syn.late_s = end_s - 2 * DAY
    late = ts >= syn.late_s
    syn.series["late"] = SynthSeries(
        "toto_test_late", {"instance": "late", "job": "app"}, ts[late], np.round(50 + 0.01 * t[late], 3)
    )

    # Six samples an hour apart: far fewer than 32 points on any grid.
    sparse_ts = np.arange(end_s - 5 * 3600, end_s + 1, 3600, dtype=np.int64)
    syn.series["sparse"] = SynthSeries(
        "toto_test_sparse", {"job": "app"}, sparse_ts, np.arange(sparse_ts.size, dtype=np.float64)
    )

    # Hundreds of series over the last two days at 5-minute resolution.
    many_ts = np.arange(end_s - 2 * DAY, end_s + 1, 300, dtype=np.int64)
    for i in range(many):
        vals = np.round(10 + i + 5 * np.sin(2 * np.pi * (many_ts % DAY) / DAY + i / 10), 3)
        syn.series[f"many_{i:03d}"] = SynthSeries(
            "toto_test_many", {"idx": f"{i:03d}", "job": "fleet"}, many_ts, vals
        )
    return syn


def _fmt_labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


def _fmt_value(v: float) -> str:
    return "NaN" if np.isnan(v) else repr(float(v))


def openmetrics_lines(series: Iterable[SynthSeries], types: dict[str, str] | None = None) -> Iterable[str]:
    """OpenMetrics text: one family at a time, one series at a time in time order, then # EOF."""
    by_name: dict[str, list[SynthSeries]] = {}
    for s in series:
        by_name.setdefault(s.name, []).append(s)
    for name, members in by_name.items():
        kind = (types or {}).get(name, "gauge")
        family = name.removesuffix("_total") if kind == "counter" else name
        yield f"# TYPE {family} {kind}\n"
        for s in members:
            prefix = f"{name}{{{_fmt_labels(s.labels)}}} "
            yield "".join(
                f"{prefix}{_fmt_value(v)} {t}\n"
                for t, v in zip(s.ts.tolist(), s.values.tolist(), strict=True)
            )
    yield "# EOF\n"


def write_openmetrics(
    path: Path, syn_series: Iterable[SynthSeries], types: dict[str, str] | None = None
) -> None:
    with path.open("w") as f:
        f.writelines(openmetrics_lines(syn_series, types))
