"""Latency of the alerting query types, in-process, on whatever device the checkpoint loads to.

    .venv/bin/python bench/alerting_latency.py [--checkpoint DIR] [--device cpu] [--runs 3]

- threshold: one query over 100 series (2048 points of 1 m history each, horizon 1 h), once from
  a source that hands over 100 series (as Prometheus does) and once as inline series in the query
  JSON (which adds parsing and schema validation of ~5 MB of JSON);
- anomaly: one query over a 24 h range of a demo series at 1 m steps (1440 scored points,
  23 rolling windows of 64 steps, each forecast from the 2048 points before it), and the same
  for the five demo series together.

Every run shifts the clock by a day so the result cache never answers; the model is loaded and
warmed up before timing. Prints one JSON line per measurement (median and all runs, seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from toto_datasource.core.request import background
from toto_datasource.core.settings import DataSourceSettings, ModelSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.query import ForecastQuery
from toto_datasource.service import DataQueryInput, ForecastDataSource
from toto_datasource.sources.base import History, HistoryRequest, HistorySource, Series

ROOT = Path(__file__).resolve().parents[1]
BASE_NOW = 498_611 * 3_600_000  # a whole hour
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def inline_series(n: int, points: int, now: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    t = now - MINUTE * np.arange(points)[::-1]
    phase = rng.uniform(0, 2 * np.pi, n)
    out = []
    for i in range(n):
        daily = np.sin(2 * np.pi * np.arange(points) / 1440 + phase[i])
        y = 300 + 80 * daily + rng.normal(0, 5, points)
        out.append({"name": f"db_qps_{i}", "labels": {"instance": f"pg-{i}"}, "timestamps": t.tolist(),
                    "values": np.round(y, 3).tolist()})
    return out


class ManySeries:
    """A source that returns `n` seasonal series on the requested grid (a stand-in for Prometheus)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def fetch(self, request: HistoryRequest) -> History:
        grid = request.grid
        minutes = grid.timestamps_ms() / MINUTE
        rng = np.random.default_rng(grid.end_ms % 2**32)
        series = [Series(f"db_qps_{i}", {"instance": f"pg-{i}"},
                         300 + 80 * np.sin(2 * np.pi * minutes / 1440 + i) + rng.normal(0, 5, grid.count))
                  for i in range(self.n)]
        return History(grid, series, executed_query=f"synthetic: {self.n} series")


class ManySeriesDataSource(ForecastDataSource):
    def __init__(self, *args, n: int, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.n = n

    def source_for(self, query: ForecastQuery, settings: DataSourceSettings) -> HistorySource:
        return ManySeries(self.n)


def timed(ds: ForecastDataSource, settings: DataSourceSettings, body: dict, from_ms: int,
          to_ms: int) -> float:
    raw = json.dumps(body).encode()
    started = time.perf_counter()
    queries = [DataQueryInput("A", "", raw, from_ms, to_ms, MINUTE, 1440)]
    result = ds.query_data(ds.instance(settings), queries, background())["A"]
    elapsed = time.perf_counter() - started
    if result.error is not None:
        raise SystemExit(f"query failed: {result.error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(ROOT / "var" / "checkpoints" / "toto-2.0-4m-random"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--series", type=int, default=100)
    args = parser.parse_args()

    settings = DataSourceSettings(model=ModelSettings(checkpoint=args.checkpoint, device=args.device))
    registry = ModelRegistry(warmup=True)
    slot = registry.ensure(settings.model)
    slot.ready.wait()
    if slot.state != "ready":
        raise SystemExit(slot.error)
    clock = {"now": BASE_NOW}
    ds = ForecastDataSource(registry, clock=lambda: clock["now"] / 1000)

    many = ManySeriesDataSource(registry, clock=lambda: clock["now"] / 1000, n=args.series)

    def measure(name: str, make: callable, source: ForecastDataSource = ds) -> None:  # type: ignore[valid-type]
        runs = []
        for i in range(args.runs + 1):  # the first run warms this shape up and is not counted
            clock["now"] = BASE_NOW + i * DAY
            body, from_ms, to_ms = make(clock["now"], i)
            elapsed = timed(source, settings, body, from_ms, to_ms)
            if i:
                runs.append(round(elapsed, 3))
        print(json.dumps({"measure": name, "model": slot.info.get("checkpoint"),
                          "device": slot.info.get("device"), "median_s": statistics.median(runs),
                          "runs_s": runs}), flush=True)

    measure(f"threshold {args.series} series from a source, 2048 x 1m history, horizon 1h", lambda now, i: (
        {"queryType": "threshold", "source": "demo", "threshold": 450, "horizon": "1h", "step": "1m"},
        now - HOUR, now), many)
    measure(f"threshold {args.series} inline series, 2048 x 1m history, horizon 1h", lambda now, i: (
        {"queryType": "threshold", "source": "inline", "series": inline_series(args.series, 2048, now, i),
         "threshold": 450, "direction": "above", "horizon": "1h"}, now - HOUR, now))
    measure("anomaly 24h range, 1 demo series, 1m steps, 64-step windows", lambda now, i: (
        {"queryType": "anomaly", "source": "demo", "scenario": "postgres-load"}, now - DAY + MINUTE, now))
    measure("anomaly 24h range, 5 demo series, 1m steps, 64-step windows", lambda now, i: (
        {"queryType": "anomaly", "source": "demo", "scenario": "all"}, now - DAY + MINUTE, now))
    forecaster = slot.forecaster
    print(json.dumps({"model_calls": forecaster.calls, "rows": forecaster.rows_run}))
    registry.close()


if __name__ == "__main__":
    main()
