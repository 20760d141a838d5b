"""Does serve_config.yaml's autoscaling work with the Toto app? The shipped config, deployed as
`serve deploy` / `serve run` deploy it (ServeDeploySchema → deploy_apps), on a local Ray head in a
loopback-only network namespace, with the plugin's scheduler in front.

Overrides for a 2-core CPU machine, and nothing else: the random 4m checkpoint, device cpu,
1 CPU and 0 GPUs per replica, max_replicas 2 (what 2 CPUs hold), and upscale/downscale delays of
2 s / 10 s instead of 30 s / 300 s so the check takes minutes. Phases: idle (1 replica, min_replicas)
→ load (16 clients × 64 series, the plugin keeping the advertised `client_concurrency` calls in
flight) until Serve runs 2 replicas → idle again until it is back to 1. Prints when each happened
and the throughput before and after the scale-up; --results appends it to bench/RESULTS.md.

    .venv/bin/python bench/ray_autoscaling.py [--results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT)]

from results_file import publish  # noqa: E402
from toto_datasource.core.config import ProcessConfig  # noqa: E402
from toto_datasource.core.request import RequestContext  # noqa: E402
from toto_datasource.engine.remote import RemoteRunner, RemoteSettings, probe  # noqa: E402
from toto_datasource.engine.remote.runtime import calls_in_flight  # noqa: E402
from toto_datasource.engine.scheduler import BatchingForecaster, BatchLimits  # noqa: E402
from toto_datasource.engine.types import ForecastJob  # noqa: E402

from tests.serving import netns  # noqa: E402
from tests.serving.ray_cluster import GCS_PORT, GRPC_PORT, RayServeCluster  # noqa: E402

CHECKPOINT = str(ROOT / "var/checkpoints/toto-2.0-4m-random")
CONFIG = ROOT / "server/toto_datasource/serving/serve_config.yaml"
LENGTH, HORIZON, SERIES, CLIENTS = 512, 64, 64, 16


def config_for_this_machine() -> dict:
    cfg = yaml.safe_load(CONFIG.read_text())
    app = cfg["applications"][0]
    app["args"].update(checkpoint=CHECKPOINT, device="cpu", max_cells=32 * 2048)
    dep = app["deployments"][0]
    dep["ray_actor_options"].update(num_cpus=1, num_gpus=0)
    dep["autoscaling_config"].update(max_replicas=2, upscale_delay_s=2, downscale_delay_s=10)
    cfg["http_options"]["host"] = "127.0.0.1"
    return cfg


def replicas_running() -> int:
    from ray import serve

    app = serve.status().applications.get("toto")
    if app is None or "TotoOIP" not in app.deployments:
        return 0
    return int(app.deployments["TotoOIP"].replica_states.get("RUNNING", 0))


def wait_for(replicas: int, seconds: float) -> float | None:
    """Seconds until Serve runs exactly `replicas` replicas, or None when it did not in time."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if replicas_running() == replicas:
            return time.monotonic() - started
        time.sleep(1)  # polling Serve's status, as an operator would
    return None


def inside() -> dict:
    import ray
    from ray.serve._private.api import serve_start
    from ray.serve.config import gRPCOptions
    from ray.serve.schema import ServeDeploySchema

    cfg = config_for_this_machine()
    ray.init(address=f"127.0.0.1:{GCS_PORT}", log_to_driver=False)
    schema = ServeDeploySchema(**cfg)
    client = serve_start(http_options=schema.http_options.model_dump(),
                         grpc_options=gRPCOptions(**schema.grpc_options.model_dump()))
    client.deploy_apps(schema, _blocking=False)
    out: dict = {"deployed_1_s": wait_for(1, 300)}
    runner = RemoteRunner(RemoteSettings(f"127.0.0.1:{GRPC_PORT}", application="toto"))
    out["client_concurrency"] = concurrency = calls_in_flight(probe(runner, RequestContext()),
                                                              ProcessConfig.from_environment())
    forecaster = BatchingForecaster("auto", runner, limits=BatchLimits(max_cells=32 * 2048,
                                                                       concurrency=concurrency))
    noise = np.random.default_rng(0).normal(0, 1, (SERIES, LENGTH))
    context = np.sin(np.arange(LENGTH) / 9.0)[None, :] * 10 + noise
    done: list[float] = []  # completion times of requests
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            forecaster.submit(ForecastJob(context, HORIZON)).result()
            done.append(time.monotonic())

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    load_started = time.monotonic()
    for t in threads:
        t.start()
    out["scaled_to_2_s"] = up = wait_for(2, 180)
    scaled_at = time.monotonic()
    time.sleep(15)  # throughput with both replicas (a measurement window, not synchronisation)
    stop.set()
    for t in threads:
        t.join(60)
    load_ended = time.monotonic()
    before = [x for x in done if x < scaled_at]
    after = [x for x in done if x >= scaled_at]
    out["series_s_one_replica"] = SERIES * len(before) / max(1e-9, scaled_at - load_started)
    out["series_s_two_replicas"] = SERIES * len(after) / max(1e-9, load_ended - scaled_at)
    out["scaled_back_to_1_s"] = wait_for(1, 180) if up is not None else None
    forecaster.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", action="store_true")
    ap.add_argument("--inside", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        import json

        cluster = RayServeCluster(CHECKPOINT, replicas=0, cluster_cpus=2, netns_name=args.inside)
        try:
            cluster.start()
            print("RESULT " + json.dumps(inside()), flush=True)
        finally:
            cluster.stop()
        return
    if why := netns.available():
        sys.exit(f"bench/ray_autoscaling.py needs a loopback-only network namespace: {why}")
    name = f"totoauto{os.getpid()}"
    netns.create(name)
    started = time.time()
    try:
        out = subprocess.run(["ip", "netns", "exec", name, sys.executable, __file__, "--inside", name],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
    finally:
        netns.delete(name)
    import json

    r = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])

    def s(x: float | None) -> str:
        return "never (within the wait)" if x is None else f"{x:.0f} s"

    section = (
        f"\n### {dt.datetime.now():%Y-%m-%d %H:%M} — `bench/ray_autoscaling.py`\n\n"
        f"Machine: {os.cpu_count()} cores, no GPU; load average {os.getloadavg()[0]:.1f} at the end. "
        f"serve_config.yaml deployed as `serve deploy` does, with the overrides in the script's docstring "
        f"(1 CPU per replica, max_replicas 2, upscale/downscale delay 2 s / 10 s); "
        f"{CLIENTS} clients × {SERIES} series, {r['client_concurrency']} calls in flight (the app's "
        f"client_concurrency). Total {time.time() - started:.0f} s.\n\n"
        f"| phase | result |\n|---|---|\n"
        f"| deploy → 1 replica running (min_replicas) | {s(r['deployed_1_s'])} |\n"
        f"| load → 2 replicas running | {s(r['scaled_to_2_s'])} |\n"
        f"| series/s with 1 replica / with 2 | {r['series_s_one_replica']:.0f} / "
        f"{r['series_s_two_replicas']:.0f} |\n"
        f"| load stopped → back to 1 replica | {s(r['scaled_back_to_1_s'])} |\n"
    )
    publish(section.strip("\n"), args.results)


if __name__ == "__main__":
    main()
