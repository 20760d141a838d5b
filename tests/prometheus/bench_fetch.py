"""Benchmark (not a test): fetch + prepare time of PrometheusSource against a real Prometheus.

Backfills SERIES series of POINTS 1-minute points, then times `fetch` (HTTP, JSON, grid
placement, hygiene checks) for 100 series × 2048 points and for growing queries up to the whole
data set, next to the raw HTTP time of the same request so the source's own overhead shows.

    .venv/bin/python tests/prometheus/bench_fetch.py [--series 200] [--points 22000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the helpers live in the `prometheus` test package
try:
    import toto_datasource  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(HERE.parents[1] / "server"))

import httpx  # noqa: E402
from toto_datasource.sources.prometheus import PrometheusSource  # noqa: E402

from prometheus import prom_server  # noqa: E402
from prometheus.prom_synthetic import DAY, SynthSeries, write_openmetrics  # noqa: E402
from prometheus.prom_testkit import grid, request, settings  # noqa: E402

CONFIG = "global:\n  scrape_interval: 1m\nscrape_configs: []\n"


def synth(n_series: int, n_points: int, end_s: int) -> list[SynthSeries]:
    ts = np.arange(end_s - (n_points - 1) * 60, end_s + 1, 60, dtype=np.int64)
    rng = np.random.default_rng(1)
    out = []
    for i in range(n_series):
        vals = 100 + i + 20 * np.sin(2 * np.pi * (ts % DAY) / DAY + i) + rng.normal(0, 1, ts.size)
        out.append(SynthSeries("bench_load", {"host": f"h{i:04d}"}, ts, np.round(vals, 3)))
    return out


def timed(fn: object, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--points", type=int, default=22_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    prometheus, promtool = prom_server.ensure_binaries()
    end = (int(time.time()) // 3600) * 3600 - 3600
    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        write_openmetrics(work / "in.om", synth(args.series, args.points, end))
        t1 = time.perf_counter()
        prom_server.backfill(promtool, work / "in.om", work / "data")
        t2 = time.perf_counter()
        (work / "in.om").unlink()
        print(
            f"backfill: {args.series} series x {args.points} points "
            f"({args.series * args.points / 1e6:.1f} M samples): "
            f"openmetrics {t1 - t0:.1f} s, promtool {t2 - t1:.1f} s"
        )
        server = prom_server.start(prometheus, work, work / "data", CONFIG)
        try:
            run(server.url, end, args)
        finally:
            server.stop()


def run(url: str, end: int, args: argparse.Namespace) -> None:
    src = PrometheusSource(settings(url, timeout_s=120), max_series=10_000)
    raw = httpx.Client(timeout=120, headers={"Accept-Encoding": "identity"})  # as the source sends
    ladder = [(100, 2048), (100, 8192), (args.series, 2048), (args.series, 8192), (args.series, args.points)]
    ladder = sorted(set(ladder), key=lambda sp: (sp[0] * sp[1], sp))
    largest = ""
    print(f"{'series':>6} {'points':>6} {'requests':>8} {'fetch s':>8} {'raw http s':>10} {'M points/s':>10}")
    for n_series, n_points in ladder:
        if n_series > args.series or n_points > args.points:
            continue
        expr = 'bench_load{host=~"h00.."}' if n_series == 100 else "bench_load"  # h0000-h0099
        g = grid(end, 60, n_points)
        fetch_s, history = timed(lambda g=g, expr=expr: src.fetch(request(expr, g)), args.repeat)
        assert len(history.series) == n_series and all(s.observed == n_points for s in history.series)
        requests = -(-n_points // 11_000)
        http_s = 0.0
        if requests == 1:
            params = {"query": expr, "start": g.start_ms / 1000, "end": end, "step": 60}
            http_s, _ = timed(
                lambda p=params: raw.post(f"{url}/api/v1/query_range", data=p).content, args.repeat
            )
        print(
            f"{n_series:>6} {n_points:>6} {requests:>8} {fetch_s:>8.3f} "
            f"{(f'{http_s:.3f}' if http_s else '-'):>10} {n_series * n_points / fetch_s / 1e6:>10.2f}"
        )
        largest = f"{n_series} series x {n_points} points ({requests} range requests) in {fetch_s:.2f} s"
    print(f"largest query handled: {largest}")
    src.close()
    raw.close()


if __name__ == "__main__":
    main()
