"""torch.compile on the plain serving engine: `serve-model` with TOTO_COMPILE=0 vs 1, one run.

Two `toto-datasource serve-model` processes on 127.0.0.1 load the same checkpoint (default: the
22m-shaped random one, `toto-datasource tiny-model --size 22m`), one with TOTO_COMPILE=0 and one
with TOTO_COMPILE=1. The load is the plugin's own: its scheduler (BatchingForecaster) in front of
a RemoteRunner, as many calls in flight as the engine advertises (1 for serve-model), C clients
each sending jobs of S series back to back. Only one server is loaded at a time; the other idles.

Warm-up first: both servers get every load once; the compiling one compiles the shape buckets
those loads need in its background thread (engine/compiled.py: after 3 calls of a bucket). The
bench then waits until that server's CPU time stops growing while no load runs (its compile queue
is empty) and repeats until a whole round of loads queues no new compile. Only then are the
windows measured: per load, `--rounds` rounds of one window per server, the order alternating
(ABBA…) so that the VM's drift cancels. The ratio is compiled / eager series per second per
round; the table shows the median of each and the per-round ratios. When a bucket first needed
while measuring was compiled meanwhile, the measurement is repeated (at most 3 times; the notes
say so).

    .venv/bin/python bench/serving_compile.py [--checkpoint DIR] [--seconds 8] [--rounds 3] [--results]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT)]

from results_file import heading, publish  # noqa: E402
from toto_datasource.core.config import ProcessConfig  # noqa: E402
from toto_datasource.core.request import background  # noqa: E402
from toto_datasource.engine.remote import RemoteRunner, RemoteSettings, probe  # noqa: E402
from toto_datasource.engine.remote.runtime import calls_in_flight  # noqa: E402
from toto_datasource.engine.scheduler import BatchingForecaster, BatchLimits  # noqa: E402
from toto_datasource.engine.types import ForecastJob  # noqa: E402

CHECKPOINT = ROOT / "var/checkpoints/toto-2.0-22m-random"
# (series per request, clients, context length, horizon): dashboards of one series and bulk
# queries, at bench/remote.py's short context and at the query default (2048 points).
LOADS = ((1, 16, 512, 64), (64, 16, 512, 64), (1, 16, 2048, 256), (16, 16, 2048, 256))
MAX_CELLS = 256 * 2048  # the remote runtime's request size (engine/remote/runtime.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime, and the waited-for children's (the C++ compiler inductor runs)
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, checkpoint: str, compile_: bool, log: Path) -> None:
        self.compile = compile_
        self.port = free_port()
        env = {**os.environ, "TOTO_COMPILE": "1" if compile_ else "0",
               "PYTHONPATH": f"{ROOT / 'server'}:{os.environ.get('PYTHONPATH', '')}"}
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "toto_datasource", "serve-model", "--device=cpu",
             f"--checkpoint={checkpoint}", f"--address=127.0.0.1:{self.port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),  # noqa: SIM115
        )
        self.runner = RemoteRunner(RemoteSettings(f"127.0.0.1:{self.port}"))
        self.name = "TOTO_COMPILE=1" if compile_ else "TOTO_COMPILE=0"

    def wait_ready(self, seconds: float = 600) -> None:
        give_up = time.monotonic() + seconds
        while not probe(self.runner, background(), timeout_s=2).ready:
            if self.process.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError(f"{self.name} never became ready; see {self.log}")
            time.sleep(1)

    def wait_idle(self, quiet_s: float = 3.0, give_up_s: float = 900) -> float:
        """Seconds until the process used < 5 % of a core over `quiet_s` (no compile running)."""
        started = time.monotonic()
        while time.monotonic() - started < give_up_s:
            before = cpu_seconds(self.process.pid)
            time.sleep(quiet_s)
            if cpu_seconds(self.process.pid) - before < 0.05 * quiet_s:
                return time.monotonic() - started
        raise RuntimeError(f"{self.name} kept computing for {give_up_s} s with no load")

    def compiled_buckets(self) -> list[str]:
        return [line.split("bucket ", 1)[1].split(" in ")[0] for line in self.log.read_text().splitlines()
                if "compiled Toto bucket" in line]

    def stop(self) -> None:
        self.runner.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def run_load(forecaster: BatchingForecaster, load: tuple[int, int, int, int], seconds: float) -> dict:
    series, clients, length, horizon = load
    rng = np.random.default_rng(0)
    context = np.sin(np.arange(length) / 9.0)[None, :] * 10 + rng.normal(0, 1, (series, length))
    latencies: list[float] = []
    calls0, rows0 = forecaster.calls, forecaster.rows_run
    stop = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            forecaster.submit(ForecastJob(context, horizon)).result()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    calls = forecaster.calls - calls0
    return {"series_s": len(latencies) * series / wall, "p50_ms": 1000 * float(np.median(latencies)),
            "rows_per_call": (forecaster.rows_run - rows0) / max(1, calls)}


def forecaster_for(server: Server) -> BatchingForecaster:
    in_flight = calls_in_flight(probe(server.runner, background()), ProcessConfig.from_environment())
    limits = BatchLimits(max_cells=MAX_CELLS, concurrency=in_flight)
    return BatchingForecaster(server.name, server.runner, limits=limits)


def warm_up(servers: list[Server], forecasters: dict[str, BatchingForecaster], seconds: float) -> list[str]:
    """Every load on every server until a round queues no new compile; the log of what happened."""
    notes = []
    compiling = next(s for s in servers if s.compile)
    for attempt in range(1, 9):
        before = set(compiling.compiled_buckets())
        for server in servers:
            for load in LOADS:
                run_load(forecasters[server.name], load, seconds)
        waited = compiling.wait_idle()
        after = set(compiling.compiled_buckets())
        notes.append(f"warm-up round {attempt}: compiled {sorted(after - before) or 'nothing new'}, "
                     f"then idle after {waited:.0f} s")
        print(notes[-1], file=sys.stderr, flush=True)
        if after == before and attempt >= 2:
            return notes
    notes.append("warm-up gave up after 8 rounds: buckets were still being compiled")
    return notes


def measure(servers: list[Server], forecasters: dict[str, BatchingForecaster], seconds: float,
            rounds: int) -> list[dict]:
    rows = []
    for load in LOADS:
        results: dict[str, list[dict]] = {s.name: [] for s in servers}
        for r in range(rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            for server in order:
                results[server.name].append(run_load(forecasters[server.name], load, seconds))
        eager, compiled = (results[s.name] for s in servers)
        ratios = [c["series_s"] / e["series_s"] for e, c in zip(eager, compiled, strict=True)]
        rows.append({"load": load, "eager": eager, "compiled": compiled, "ratios": ratios})
        print(load, [round(x, 2) for x in ratios], file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| series/req | clients | context | horizon | series/s TOTO_COMPILE=0 | series/s TOTO_COMPILE=1 "
           "| × (median of rounds) | × per round | p50 ms 0 / 1 | rows/call 0 / 1 |", "|" + "---|" * 10]
    for r in rows:
        series, clients, length, horizon = r["load"]

        def med(key: str, side: str, row: dict = r) -> float:
            return float(np.median([x[key] for x in row[side]]))

        out.append(
            f"| {series} | {clients} | {length} | {horizon} | {med('series_s', 'eager'):.1f} "
            f"| {med('series_s', 'compiled'):.1f} | {np.median(r['ratios']):.2f} "
            f"| {' / '.join(f'{x:.2f}' for x in r['ratios'])} "
            f"| {med('p50_ms', 'eager'):.0f} / {med('p50_ms', 'compiled'):.0f} "
            f"| {med('rows_per_call', 'eager'):.1f} / {med('rows_per_call', 'compiled'):.1f} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=str(CHECKPOINT))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", action="store_true")
    parser.add_argument("--log-dir", default="", help="where the servers' logs go (default: a temp dir)")
    args = parser.parse_args()
    if not Path(args.checkpoint, "config.json").exists():
        sys.exit(f"no checkpoint at {args.checkpoint}: run "
                 f"`toto-datasource tiny-model --size 22m --output {args.checkpoint}`")
    import tempfile

    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="serving-compile-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    servers = [Server(args.checkpoint, False, log_dir / "eager.log"),
               Server(args.checkpoint, True, log_dir / "compiled.log")]
    forecasters: dict[str, BatchingForecaster] = {}
    try:
        for s in servers:
            s.wait_ready()
            forecasters[s.name] = forecaster_for(s)
        notes = warm_up(servers, forecasters, args.seconds)
        for attempt in range(1, 4):  # a bucket first needed while measuring compiles: measure again
            before = set(servers[1].compiled_buckets())
            rows = measure(servers, forecasters, args.seconds, args.rounds)
            servers[1].wait_idle()
            new = sorted(set(servers[1].compiled_buckets()) - before)
            notes.append(f"measurement {attempt}: " + (f"{new} compiled meanwhile" if new else "no compile"))
            print(notes[-1], file=sys.stderr, flush=True)
            if not new:
                break
        buckets = servers[1].compiled_buckets()
        failed = [line for line in servers[1].log.read_text().splitlines() if "failed" in line]
    finally:
        for f in forecasters.values():
            f.close()
        for s in servers:
            s.stop()
    import torch

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU, "
               f"torch {torch.__version__}, shared with other work")
    command = (f"bench/serving_compile.py --seconds {args.seconds:g} --rounds {args.rounds}"
               f" --checkpoint {Path(args.checkpoint).name}")
    lines = heading(command, machine)
    lines += [
        "",
        f"Two `serve-model` processes (plain grpcio, one model call at a time, queued requests merged), "
        f"TOTO_COMPILE=0 and =1, loaded one at a time by the plugin's scheduler + RemoteRunner "
        f"({MAX_CELLS // 2048} × 2048 cells per request, calls in flight as the engine advertises). "
        f"{'; '.join(notes)}. Compiled buckets: {', '.join(buckets) or 'none'}"
        f"{'; failures: ' + '; '.join(failed) if failed else ''}. Windows of {args.seconds:g} s, "
        f"{args.rounds} rounds alternating which server goes first; load average at end "
        f"{os.getloadavg()[0]:.1f}; total {time.time() - started:.0f} s.",
        "",
        table(rows),
    ]
    publish("\n".join(lines), args.results)


if __name__ == "__main__":
    main()
