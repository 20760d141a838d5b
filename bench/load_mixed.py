"""Mixed dashboard load against a plugin process: do 1-series interactive queries wait behind bulk?

The plugin is started as Grafana starts it (PluginProcess, GF_PLUGIN_MODEL = the 4m random-weight
checkpoint by default). Clients, each a thread with one request in flight at a time, for
`--seconds`:
  * interactive — one demo series, horizon 1h at 1m (what a single panel sends);
  * bulk        — inline 32 series x 2048 points, horizon 256 (a big "all hosts" panel);
  * anomaly     — demo, queryType anomaly over 6 h (rolling windows).
Mix by `--clients` and `--bulk-share` / `--anomaly-share`; `--panels N` lets the interactive
clients share N panel queries (a dashboard many people watch), else every request is distinct and
costs a model row. `--refresh S` paces each client like a dashboard on auto-refresh: it sends its
query on its own tick every S seconds (ticks offset at random; a tick missed while the previous
answer was still out is skipped, as a browser does), instead of the closed loop's next request the
moment the last one returns — Grafana's smallest auto-refresh is 5 s. Reported: p50/p99 of
interactive latency idle (alone, cold cache, before the burst) and under load, status counts, the
model's busy share, rows per call and rows/s during the burst with the Little's-law floor they put
under a closed loop of interactive clients, the plugin's RSS and thread count before, at peak, and
10, 30 and 60 s after the burst (from /proc/<pid>/status), and the load average (numbers are only
comparable within one run). `--memory-limit MB` runs the plugin in a cgroup of its own with that
memory limit (v1 `memory.limit_in_bytes` or v2 `memory.max`; root), as a container would: the
plugin's batch cap then follows the limit (engine/local_toto.py).

    .venv/bin/python bench/load_mixed.py --clients 200 --seconds 30 [--memory-limit 2048] [--results]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

import grpc  # noqa: E402
from results_file import publish  # noqa: E402  (bench/, the script's own directory)
from toto_datasource._proto.pluginv2 import backend_pb2 as pb  # noqa: E402
from toto_datasource.plugin.host import PluginProcess  # noqa: E402

HOUR = 3_600_000
STEP = 60_000


def ctx() -> pb.PluginContext:
    s = pb.DataSourceInstanceSettings(uid="bench", name="bench", jsonData=b"{}")
    return pb.PluginContext(pluginId="toto-forecast-datasource", dataSourceInstanceSettings=s)


def request(kind: str, now_ms: int, salt: int) -> pb.QueryDataRequest:
    if kind == "interactive":
        # a context length per request: the 30 s result cache must not answer for the model
        body = {"source": "demo", "scenario": "cpu", "horizon": "1h", "contextLength": 256 + salt % 3000}
        frm, to = now_ms - 6 * HOUR, now_ms + HOUR
    elif kind == "bulk":
        ts = [now_ms - (2048 - i) * STEP for i in range(2048)]
        series = [{"name": f"host{j}", "labels": {"host": f"h{j}"}, "timestamps": ts,
                   "values": [float((i * (j + 1) + salt) % 97) for i in range(2048)]} for j in range(32)]
        body = {"source": "inline", "series": series, "horizon": 256, "contextLength": 2048}
        frm, to = now_ms - 2048 * STEP, now_ms
    else:
        body = {"source": "demo", "queryType": "anomaly", "scenario": "postgres-load",
                "contextLength": 256 + salt % 3000}
        frm, to = now_ms - 6 * HOUR, now_ms
    q = pb.DataQuery(refId="A", json=json.dumps(body).encode(), intervalMS=STEP, maxDataPoints=1000,
                     timeRange=pb.TimeRange(fromEpochMS=frm, toEpochMS=to))
    return pb.QueryDataRequest(pluginContext=ctx(), queries=[q])


AFTER_S = (10, 30, 60)  # RSS and threads this long after the burst


@contextlib.contextmanager
def memory_cgroup(limit_mb: int):  # type: ignore[no-untyped-def]
    """A fresh cgroup with a memory limit (v1 memory controller, else v2); → its cgroup.procs."""
    v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
    if (v1 / "cgroup.procs").exists():
        directory, limit_file = v1 / f"toto-bench-{uuid.uuid4().hex[:8]}", "memory.limit_in_bytes"
    elif "memory" in (v2 / "cgroup.subtree_control").read_text():
        directory, limit_file = v2 / f"toto-bench-{uuid.uuid4().hex[:8]}", "memory.max"
    else:
        raise SystemExit("--memory-limit: no writable memory cgroup here (root and the memory controller)")
    directory.mkdir()
    try:
        (directory / limit_file).write_text(str(limit_mb << 20))
        yield directory / "cgroup.procs"
    finally:
        with contextlib.suppress(OSError):
            directory.rmdir()


def proc_status(pid: int) -> tuple[float, int]:
    """(RSS MB, threads) of a process, from /proc."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss / 1024, threads


@dataclass
class Samples:
    latency: dict[str, list[float]] = field(
        default_factory=lambda: {"interactive": [], "bulk": [], "anomaly": []}
    )
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, status: str) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.statuses[f"{kind}:{status}"] += 1


def one(p: PluginProcess, kind: str, salt: int, samples: Samples, timeout: float) -> None:
    started = time.monotonic()
    try:
        r = p.data.QueryData(request(kind, int(time.time() * 1000), salt), timeout=timeout)
        status = str(r.responses["A"].status)
    except grpc.RpcError as exc:
        status = exc.code().name
    samples.add(kind, time.monotonic() - started, status)


def engine_counters(p: PluginProcess) -> dict[str, float]:
    """The plugin's own model counters (CollectMetrics): seconds inside model calls, calls, rows."""
    text = p.diagnostics.CollectMetrics(pb.CollectMetricsRequest()).metrics.prometheus.decode()
    out = {}
    for line in text.splitlines():
        for key in ("toto_inference_seconds_sum", "toto_inference_seconds_count", "toto_batch_rows_sum"):
            if line.startswith(key + " "):
                out[key] = float(line.split()[1])
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--bulk-share", type=float, default=0.1)
    ap.add_argument("--anomaly-share", type=float, default=0.1)
    ap.add_argument("--idle-requests", type=int, default=20)
    ap.add_argument("--memory-limit", type=int, default=0, metavar="MB",
                    help="run the plugin in a cgroup with this memory limit (root)")
    ap.add_argument("--timeout", type=float, default=30, help="gRPC deadline per request (Grafana: 30 s)")
    ap.add_argument("--panels", type=int, default=0,
                    help="interactive clients share this many distinct panel queries (dashboards viewed by "
                         "many: result-cache hits and coalescing); 0 = every request distinct (worst case)")
    ap.add_argument("--refresh", type=float, default=0,
                    help="seconds between a client's queries (dashboard auto-refresh, ticks offset at "
                         "random); 0 = closed loop, the next query as soon as the last returns")
    ap.add_argument("--model", default=str(ROOT / "var/checkpoints/toto-2.0-4m-random"))
    ap.add_argument("--results", action="store_true", help="append the table to bench/RESULTS.md")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the plugin (e.g. MALLOC_ARENA_MAX=2, TOTO_NO_TRIM=1)")
    args = ap.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)

    cgroup = memory_cgroup(args.memory_limit) if args.memory_limit else contextlib.nullcontext()
    with cgroup as procs, PluginProcess(env={"GF_PLUGIN_MODEL": args.model, **extra}) as p:
        if procs is not None:  # in its cgroup before its model loads (the batch cap reads the limit then)
            procs.write_text(str(p.proc.pid))
        health = p.wait_until_loaded(ctx())
        assert health.status == pb.CheckHealthResponse.OK, health.message
        idle = Samples()
        for i in range(args.idle_requests):
            one(p, "interactive", 100_000 + i * 17, idle, args.timeout)
        rss_before, threads_before = proc_status(p.proc.pid)
        load_before = os.getloadavg()[0]
        engine_before = engine_counters(p)

        n_bulk = round(args.clients * args.bulk_share)
        n_anomaly = round(args.clients * args.anomaly_share)
        n_interactive = args.clients - n_bulk - n_anomaly
        kinds = ["bulk"] * n_bulk + ["anomaly"] * n_anomaly + ["interactive"] * n_interactive
        load = Samples()
        stop = time.monotonic() + args.seconds
        peak = [rss_before, threads_before]

        pacing = np.random.default_rng(7).uniform(0, args.refresh or 1, len(kinds))
        begin = time.monotonic()

        def client(kind: str, k: int) -> None:
            i = 0
            tick = begin + pacing[k] if args.refresh else begin
            while time.monotonic() < stop:
                if args.refresh:
                    now = time.monotonic()
                    while tick < now:  # a tick missed while the last answer was out is skipped
                        tick += args.refresh
                    if tick >= stop:
                        return
                    time.sleep(tick - now)  # pacing the load generator, not synchronisation
                shared = kind == "interactive" and args.panels > 0
                one(p, kind, (k % args.panels) * 101 if shared else k * 7919 + i * 13, load, args.timeout)
                i += 1

        workers = [threading.Thread(target=client, args=(kind, n), daemon=True)
                   for n, kind in enumerate(kinds)]
        for w in workers:
            w.start()
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.5):  # a sampling interval, not synchronisation
                rss, threads = proc_status(p.proc.pid)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], threads)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for w in workers:
            w.join()
        burst_end = time.monotonic()
        load_peak = os.getloadavg()[0]
        engine_after = engine_counters(p)
        burst_s = burst_end - (stop - args.seconds)
        done.set()
        watcher.join()
        after = []
        for seconds in AFTER_S:
            time.sleep(max(0.0, seconds - (time.monotonic() - burst_end)))  # the "n s after" samples
            after.append(proc_status(p.proc.pid))

    rows = [
        ("interactive, idle", idle.latency["interactive"]),
        ("interactive, under load", load.latency["interactive"]),
        ("bulk, under load", load.latency["bulk"]),
        ("anomaly, under load", load.latency["anomaly"]),
    ]
    idle_p99 = pct(idle.latency["interactive"], 99)
    d = {k: engine_after.get(k, 0.0) - engine_before.get(k, 0.0) for k in engine_after}
    calls = d.get("toto_inference_seconds_count", 0.0)
    model_rows = d.get("toto_batch_rows_sum", 0.0)
    busy = d.get("toto_inference_seconds_sum", 0.0) / burst_s
    served = len(load.latency["interactive"]) / burst_s
    # Little's law for a closed loop: N clients each with one request in flight see a mean latency
    # of N / throughput, so the interactive latency under load cannot be below this floor.
    floor = n_interactive / served if served else float("nan")
    # ... and even if every model row of the burst went to them (an interactive query is one row),
    # no scheduler could bring the mean under N / rows-per-second: what 2 cores can answer.
    best_floor = n_interactive / (model_rows / burst_s) if model_rows else float("nan")
    loop = (f"paced: each client queries every {args.refresh:g} s (dashboard auto-refresh)" if args.refresh
            else "closed loop: each client's next query as soon as its last returns")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    lines = [
        f"### {stamp} — `bench/load_mixed.py --clients {args.clients} --seconds {args.seconds:g} "
        f"{f' --memory-limit {args.memory_limit}' if args.memory_limit else ''}"
        f"{f' --panels {args.panels}' if args.panels else ''}"
        f"{f' --refresh {args.refresh:g}' if args.refresh else ''}`",
        "",
        f"Machine: {os.cpu_count()} cores"
        f"{f', plugin in a cgroup with a {args.memory_limit} MB memory limit' if args.memory_limit else ''}"
        f", load average {load_before:.1f} before / {load_peak:.1f} at the "
        f"end of the burst (shared). Model {Path(args.model).name}. Env {extra or '-'}. "
        f"Clients: {n_interactive} interactive "
        f"({f'sharing {args.panels} panel queries' if args.panels else 'every request distinct'}), "
        f"{n_bulk} bulk, {n_anomaly} anomaly; {loop}; "
        f"gRPC deadline {args.timeout:g} s.",
        "",
        "| queries | n | p50 (s) | p99 (s) | p99 / idle p99 |",
        "|---|---|---|---|---|",
        *(f"| {name} | {len(v)} | {pct(v, 50):.3f} | {pct(v, 99):.3f} | {pct(v, 99) / idle_p99:.1f} |"
          for name, v in rows),
        "",
        f"Statuses: {dict(sorted(load.statuses.items()))}",
        "",
        f"Model during the burst: busy {busy:.0%} of the time, {calls:.0f} calls, "
        f"{model_rows / calls if calls else float('nan'):.1f} rows per call, "
        f"{model_rows / burst_s:.1f} rows/s. "
        f"Interactive answered {served:.1f}/s"
        + (f"; with {n_interactive} closed-loop clients Little's law puts their mean latency at "
           f"{floor:.2f} s at that rate; if the model ran nothing but their rows, {best_floor:.2f} s "
           f"({best_floor / idle_p99:.0f}× the idle p99)." if not args.refresh else "."),
        "",
        "| plugin process | before | peak | " + " | ".join(f"+{s} s" for s in AFTER_S) + " |",
        "|---|---|---|" + "---|" * len(AFTER_S),
        f"| RSS (MB) | {rss_before:.0f} | {peak[0]:.0f} | " + " | ".join(f"{r:.0f}" for r, _ in after) + " |",
        f"| threads | {threads_before} | {peak[1]} | " + " | ".join(str(t) for _, t in after) + " |",
        "",
    ]
    publish("\n".join(lines), args.results)


if __name__ == "__main__":
    main()
