"""Benchmark (not a test): the latency the Grafana hop adds, for 1 and 64 series.

Starts the real Prometheus of the Prometheus tests (backfilled synthetic history) and the Go
stand-in for Grafana's /api/ds/query in front of it, then times, for the same expression and grid:

- direct: PrometheusSource.fetch (query_range, JSON, grid placement);
- hop:    GrafanaClient.query (POST /api/ds/query -> stand-in -> Prometheus -> SDK frame JSON,
          decode) + regular_grid.place onto the same grid.

    PYTHONPATH=server .venv/bin/python bench/grafana_hop.py [--repeat 30] [--points 512]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "server"))

from grafana import standin  # noqa: E402
from prometheus import prom_server, prom_synthetic  # noqa: E402
from prometheus.conftest import NO_SCRAPE  # noqa: E402
from toto_datasource.core.request import RequestContext  # noqa: E402
from toto_datasource.sources.base import HistoryRequest, TimeGrid  # noqa: E402
from toto_datasource.sources.grafana.client import GrafanaClient  # noqa: E402
from toto_datasource.sources.prometheus import PrometheusSource  # noqa: E402
from toto_datasource.sources.prometheus.settings import PrometheusSettings  # noqa: E402
from toto_datasource.sources.regular_grid import place  # noqa: E402

QUERIES = {1: 'toto_test_many{idx="000"}', 64: 'toto_test_many{idx=~"0[0-5][0-9]|06[0-3]"}'}


class _Spec:
    def __init__(self, expr: str) -> None:
        self.expr, self.legend_format = expr, ""


class _Query:
    def __init__(self, expr: str) -> None:
        self.source = _Spec(expr)


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm-up: connections, caches
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--points", type=int, default=512)
    args = ap.parse_args()
    prometheus, promtool = prom_server.ensure_binaries()
    end = (int(time.time()) // 3600) * 3600 - 3600
    data = prom_synthetic.generate(end, days=3, many=64)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prom_synthetic.write_openmetrics(
            work / "h.om", data.series.values(), {"toto_test_requests_total": "counter"}
        )
        prom_server.backfill(promtool, work / "h.om", work / "data")
        prom = prom_server.start(prometheus, work, work / "data", NO_SCRAPE)
        hop = standin.start(prom.url)
        try:
            grid = TimeGrid(end_ms=end * 1000, step_ms=300_000, count=args.points)
            direct = PrometheusSource(PrometheusSettings(url=prom.url, timeout_s=30.0), max_series=1000)
            client = GrafanaClient(hop.url, standin.TOKEN, timeout_s=30.0)
            rows = []
            for n, expr in QUERIES.items():
                req = HistoryRequest(grid=grid, query=_Query(expr))

                def via_grafana(expr: str = expr) -> int:
                    got = client.query(
                        {"uid": "prom", "type": "prometheus"}, {"expr": expr}, "A",
                        grid.start_ms, grid.end_ms, grid.step_ms, grid.count, RequestContext(),
                    )  # fmt: skip
                    place(grid, [(s.timestamps_ms, s.values) for s in got.series])
                    return len(got.series)

                assert len(direct.fetch(req).series) == n and via_grafana() == n
                d = timed(lambda req=req: direct.fetch(req), args.repeat)
                g = timed(via_grafana, args.repeat)
                rows.append((n, statistics.median(d), statistics.median(g), sorted(g)[int(0.9 * len(g))]))
            direct.close()
            client.close()
        finally:
            hop.stop()
            prom.stop()
    load = os.getloadavg()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    runs = f"{args.points} points every 5 min, {args.repeat} runs"
    print(f"Machine: {machine}, load {load[0]:.2f}/{load[1]:.2f}; {runs}")
    print(
        "| series | Prometheus direct (ms, median) | via Grafana stand-in (ms, median) "
        "| added (ms) | via p90 (ms) |"
    )
    print("|---|---|---|---|---|")
    for n, d, g, g90 in rows:
        print(f"| {n} | {d:.1f} | {g:.1f} | +{g - d:.1f} | {g90:.1f} |")


if __name__ == "__main__":
    main()
