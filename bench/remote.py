"""Remote inference benchmark: the plugin's scheduler in front of in-process Toto vs OIP engines.

Runtimes, all behind the same BatchingForecaster (the plugin's own scheduler): in-process with
one call at a time, remote ones with `concurrency` calls in flight as the remote runtime runs
them (engine/remote/runtime.py, default 4):
  * in-process      — the Toto runner in this process (the reference);
  * plain grpc      — `toto-datasource serve-model` (one grpcio process, one model call at a time,
                      requests that queue meanwhile merged into the next: serving/merging.py);
  * ray N replicas  — the Serve app (serving/ray_app.py) on a local Ray head, 1 replica × 2 CPUs
                      or 2 replicas × 1 CPU; with P plugins (P forecasters sharing one RemoteRunner,
                      as P Grafana instances would) so two replicas can have work at once;
  * ray direct      — the same replica called on its own port (Serve's direct ingress), no proxy;
                      with --only direct also 2 replicas × 1 CPU, the URL listing both ports.
Loads: C concurrent clients, each sending jobs of S series (context 512, horizon 64) back to back.
Reports requests/s, series/s, ratio to in-process, p50 latency, rows per call (plugin side, and
the engine's own count from its ModelMetadata, which is what merging raises), and the 1-series
latency overhead over in-process (median of sequential requests).

The in-process reference runs before and after each engine (in-process, plain, in-process, Ray,
in-process, Ray direct, in-process), and each engine's ratios and overhead are against the mean of
the two runs around it:
this VM's speed drifts 10–30 % within minutes, and a reference measured once at the start made the
same engine 0.78× or 0.92× (2026-12-02).

Everything runs inside one loopback-only network namespace (the script re-executes itself
there with `ip netns exec`, as root), so Ray binds nothing beyond `lo` and no bridge hop is
measured. Appends a Markdown section to bench/RESULTS.md with --results.

    .venv/bin/python bench/remote.py [--seconds 6] [--results] [--only quick|plain|ray2|direct]
                                     [--concurrency 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT)]

from results_file import publish  # noqa: E402
from toto_datasource.core.config import ProcessConfig  # noqa: E402
from toto_datasource.core.request import RequestContext  # noqa: E402
from toto_datasource.engine.remote import RemoteRunner, RemoteSettings, probe  # noqa: E402
from toto_datasource.engine.scheduler import BatchingForecaster, BatchLimits  # noqa: E402
from toto_datasource.engine.toto_runner import CPU_MAX_BATCH_CELLS  # noqa: E402
from toto_datasource.engine.types import ForecastJob  # noqa: E402

from tests.serving import netns  # noqa: E402
from tests.serving.ray_cluster import RayServeCluster  # noqa: E402

CHECKPOINT = str(ROOT / "var/checkpoints/toto-2.0-4m-random")
LENGTH, HORIZON, PLAIN_PORT = 512, 64, 8101
MAX_CELLS = CPU_MAX_BATCH_CELLS  # the plugin's CPU default


def engine_counters(runner) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(model calls, rows) the engine itself counted (ModelMetadata properties); (0, 0) in-process."""
    if not isinstance(runner, RemoteRunner):
        return 0, 0
    from toto_datasource._proto.inference import grpc_predict_v2_pb2 as pb
    from toto_datasource.engine.remote.client import call_metadata

    request = pb.ModelMetadataRequest(name=runner.settings.model)
    meta = runner.stub.ModelMetadata(request, timeout=10, metadata=call_metadata(runner.settings))
    props = meta.properties
    return int(props.get("model_calls", 0)), int(props.get("model_rows", 0))


def load(  # type: ignore[no-untyped-def]
    forecasters: list[BatchingForecaster], series: int, clients: int, seconds: float, runner=None
) -> dict:
    rng = np.random.default_rng(0)
    context = np.sin(np.arange(LENGTH) / 9.0)[None, :] * 10 + rng.normal(0, 1, (series, LENGTH))
    latencies: list[float] = []
    calls0 = sum(f.calls for f in forecasters)
    rows0 = sum(f.rows_run for f in forecasters)
    engine0 = engine_counters(runner)
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        f = forecasters[k % len(forecasters)]
        while time.monotonic() < stop:
            started = time.perf_counter()
            f.submit(ForecastJob(context, HORIZON)).result()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    calls = sum(f.calls for f in forecasters) - calls0
    engine1 = engine_counters(runner)
    engine_calls = engine1[0] - engine0[0]
    return {
        "req_s": len(latencies) / wall,
        "series_s": len(latencies) * series / wall,
        "p50_ms": 1000 * float(np.median(latencies)),
        "rows_per_call": (sum(f.rows_run for f in forecasters) - rows0) / max(1, calls),
        # rows per model call on the engine (one replica's view; Ray routes by replica): "-" in-process
        "engine_rows_per_call": (engine1[1] - engine0[1]) / engine_calls if engine_calls else None,
    }


def one_series_ms(f: BatchingForecaster, n: int = 15) -> float:
    context = np.sin(np.arange(LENGTH) / 9.0)[None, :]
    times = []
    for _ in range(n):
        started = time.perf_counter()
        f.submit(ForecastJob(context, HORIZON)).result()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def measure(name: str, runner, plugins: int, seconds: float, rows: list,  # type: ignore[no-untyped-def]
            concurrency: int = 1) -> None:
    limits = BatchLimits(max_cells=MAX_CELLS, concurrency=concurrency)
    forecasters = [BatchingForecaster(f"{name}-{p}", runner, limits=limits) for p in range(plugins)]
    try:
        single = one_series_ms(forecasters[0])
        for series, clients in ((1, 16), (1, 64), (64, 16), (64, 64)):
            r = load(forecasters, series, clients, seconds, runner)
            rows.append(
                {
                    "runtime": name if concurrency == 1 else f"{name} ×{concurrency} in flight",
                    "plugins": plugins,
                    "series": series,
                    "clients": clients,
                    "single_ms": single,
                    **r,
                }
            )
            print(rows[-1], file=sys.stderr, flush=True)
    finally:
        for f in forecasters:
            f.close()


def in_flight(runner: RemoteRunner) -> int:
    """Calls in flight as the remote runtime picks them: what the engine advertises, else 4."""
    from toto_datasource.engine.remote.runtime import calls_in_flight

    return calls_in_flight(probe(runner, RequestContext()),
                                                              ProcessConfig.from_environment())


def wait_ready(runner: RemoteRunner, seconds: float = 300) -> None:
    give_up = time.monotonic() + seconds
    while not probe(runner, RequestContext(), timeout_s=2).ready:
        if time.monotonic() > give_up:
            raise RuntimeError(f"{runner.address} never became ready")
        time.sleep(1)


def inside(args: argparse.Namespace) -> list[dict]:
    from toto_datasource.serving.engine import ServingEngine, ServingOptions

    rows: list[dict] = []
    if "ray2" in args.only:
        return ray_two_replicas(args, rows)
    engine = ServingEngine(ServingOptions(CHECKPOINT, device="cpu")).load()
    measure("in-process", engine.run, 1, args.seconds, rows)  # idle between its runs
    if "direct" in args.only:
        return ray_direct(args, rows, engine)

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toto_datasource",
            "serve-model",
            "--device=cpu",
            f"--checkpoint={CHECKPOINT}",
            f"--address=127.0.0.1:{PLAIN_PORT}",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        plain = RemoteRunner(RemoteSettings(f"127.0.0.1:{PLAIN_PORT}"))
        wait_ready(plain)
        measure("plain grpc", plain, 1, args.seconds, rows, args.concurrency or in_flight(plain))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    measure("in-process", engine.run, 1, args.seconds, rows)
    if "plain" in args.only:
        return rows

    cluster = RayServeCluster(
        CHECKPOINT,
        replicas=1,
        num_cpus=2,
        cluster_cpus=4,  # see above
        netns_name=args.inside,
        batch_wait_ms=args.batch_wait_ms,
        direct_ingress=True,  # the proxy still answers on its port: both paths on one cluster
    )
    try:
        cluster.start()
        ray = RemoteRunner(RemoteSettings(cluster.address, application="toto"))
        wait_ready(ray)
        args.concurrency = args.concurrency or in_flight(ray)
        measure("ray 1×2cpu", ray, 1, args.seconds, rows, args.concurrency)
        measure("in-process", engine.run, 1, args.seconds, rows)  # Ray up and idle
        direct = RemoteRunner(RemoteSettings(cluster.direct_address, application="toto"))
        wait_ready(direct)
        measure("ray direct 1×2cpu", direct, 1, args.seconds, rows, args.concurrency)
        if "quick" not in args.only:
            measure("ray 1×2cpu", ray, 2, args.seconds, rows, args.concurrency)
            cluster.deploy(2, 1.0)
            wait_ready(ray)
            measure("ray 2×1cpu", ray, 2, args.seconds, rows, args.concurrency)
        print(f"ray timings: {cluster.timings}", file=sys.stderr)
    finally:
        cluster.stop()
    measure("in-process", engine.run, 1, args.seconds, rows)  # once Ray's processes are gone
    return rows


def ray_two_replicas(args: argparse.Namespace, rows: list[dict]) -> list[dict]:
    """--only ray2: 2 replicas × 1 CPU deployed directly (no redeploy), 2 plugins."""
    cluster = RayServeCluster(
        CHECKPOINT, replicas=2, num_cpus=1, netns_name=args.inside, batch_wait_ms=args.batch_wait_ms
    )
    try:
        cluster.start()
        ray = RemoteRunner(RemoteSettings(cluster.address, application="toto"))
        wait_ready(ray)
        args.concurrency = args.concurrency or in_flight(ray)
        measure("ray 2×1cpu", ray, 2, args.seconds, rows, args.concurrency)
        print(f"ray timings: {cluster.timings}", file=sys.stderr)
    finally:
        cluster.stop()
    return rows


def ray_direct(args: argparse.Namespace, rows: list[dict], engine) -> list[dict]:  # type: ignore[no-untyped-def]
    """--only direct: Serve's direct ingress, the plugin calling each replica's own port (the URL
    lists them; round robin): 1 replica × 2 CPUs, then a fresh cluster with 2 replicas × 1 CPU, each
    followed by an in-process run (one before the first: inside())."""
    for replicas, cpus in ((1, 2.0), (2, 1.0)):
        cluster = RayServeCluster(CHECKPOINT, replicas=replicas, num_cpus=cpus, cluster_cpus=4,
                                  netns_name=args.inside, batch_wait_ms=args.batch_wait_ms,
                                  direct_ingress=True)
        try:
            cluster.start()
            listed = ",".join(f"127.0.0.1:{port}" for port in cluster.direct_ports)
            direct = RemoteRunner(RemoteSettings(listed, application="toto"))
            wait_ready(direct)
            concurrency = args.concurrency or in_flight(direct)
            measure(f"ray direct {replicas}×{cpus:g}cpu", direct, 1, args.seconds, rows, concurrency)
            print(f"ray timings: {cluster.timings}", file=sys.stderr)
        finally:
            cluster.stop()
        measure("in-process", engine.run, 1, args.seconds, rows)
    return rows


def reference(rows: list[dict], i: int) -> tuple[float, float]:
    """(series/s, 1-series ms) of in-process for row i's load: the mean of the nearest in-process
    runs before and after it (one of them at the ends; row i itself for in-process rows)."""
    r = rows[i]
    if r["runtime"] == "in-process":
        return r["series_s"], r["single_ms"]
    same = [j for j, x in enumerate(rows) if x["runtime"] == "in-process"
            and (x["series"], x["clients"]) == (r["series"], r["clients"])]
    around = [j for j in (max((j for j in same if j < i), default=None),
                          min((j for j in same if j > i), default=None)) if j is not None]
    if not around:  # --only ray2: no reference in this run
        return r["series_s"], r["single_ms"]
    return (float(np.mean([rows[j]["series_s"] for j in around])),
            float(np.mean([rows[j]["single_ms"] for j in around])))


def table(rows: list[dict]) -> str:
    out = [
        "| runtime | plugins | series/req | clients | req/s | series/s | × in-process (runs around) "
        "| p50 (ms) | rows/call | engine rows/call | 1-series latency (ms) | overhead (ms) |",
        "|" + "---|" * 12,
    ]
    for i, r in enumerate(rows):
        series_s, single = reference(rows, i)
        engine_rows = "–" if r.get("engine_rows_per_call") is None else f"{r['engine_rows_per_call']:.1f}"
        out.append(
            f"| {r['runtime']} | {r['plugins']} | {r['series']} | {r['clients']} | {r['req_s']:.1f} "
            f"| {r['series_s']:.1f} | {r['series_s'] / series_s:.2f} | {r['p50_ms']:.0f} "
            f"| {r['rows_per_call']:.1f} | {engine_rows} | {r['single_ms']:.1f} "
            f"| {r['single_ms'] - single:+.1f} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--batch-wait-ms", type=float, default=0.0)
    parser.add_argument("--results", action="store_true")
    parser.add_argument("--only", default="",
                        help="ray2: only the 2-replica Ray run (no reference rows); quick: in-process, "
                             "plain grpc and one Ray replica with one plugin; plain: in-process and "
                             "plain grpc only (no Ray); direct: Ray's direct ingress, 1 replica × 2 CPUs "
                             "and 2 × 1 (every replica's port listed), each between in-process runs")
    parser.add_argument("--concurrency", type=int, default=0,
                        help="remote calls in flight per plugin; 0 = as the remote runtime picks them "
                             "(the engine's max_concurrency, else 4)")
    parser.add_argument("--inside", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        import json

        print("ROWS " + json.dumps(inside(args)), flush=True)
        return
    if why := netns.available():
        sys.exit(f"bench/remote.py needs a loopback-only network namespace: {why}")
    name = f"totobench{os.getpid()}"
    netns.create(name)
    started, load0 = time.time(), os.getloadavg()
    try:
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                name,
                sys.executable,
                __file__,
                "--inside",
                name,
                f"--seconds={args.seconds}",
                f"--batch-wait-ms={args.batch_wait_ms}",
                f"--only={args.only}",
                f"--concurrency={args.concurrency}",
            ],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        ).stdout
    finally:
        netns.delete(name)
    import json

    rows = json.loads(next(line for line in out.splitlines() if line.startswith("ROWS "))[5:])
    load1 = os.getloadavg()
    only = f" --only {args.only}" if args.only else ""
    section = (
        f"\n### {dt.datetime.now():%Y-%m-%d %H:%M} — `bench/remote.py --seconds {args.seconds:g}{only}`\n\n"
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU; shared: "
        f"load average {load0[0]:.1f} at start, {load1[0]:.1f} at end (1-min). 4m random checkpoint, "
        f"context {LENGTH}, horizon {HORIZON}, Serve batch wait {args.batch_wait_ms:g} ms, "
        f"remote calls in flight per plugin {args.concurrency or 'as the engine advertises'}, "
        f"total {time.time() - started:.0f} s.\n\n{table(rows)}\n"
    )
    publish(section.strip("\n"), args.results)


if __name__ == "__main__":
    main()
