"""A real Ray head in its own loopback-only network namespace, with the Toto Serve app on it.

    with RayServeCluster(replicas=1) as cluster:   # ray start + serve-model --ray --detach
        RemoteRunner(RemoteSettings(cluster.address))  # through the LoopbackBridge

Lifecycle: create namespace → `ray start --head` inside it (own --temp-dir, so other users'
Ray sessions on a shared machine are never touched) → `toto-datasource serve-model --ray
--detach` inside it, which returns once the replicas are ready → bridge. `stop()` (also on any
failure, and from `__exit__`) kills exactly the processes inside the namespace — never `ray
stop`, which would kill every Ray on the machine — then deletes it and the temp dir.
Cold start measured on 2 shared cores: ray start 18–36 s, serve start + 1 replica ~30 s.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import netns

RAY = str(Path(sys.executable).with_name("ray"))
GCS_PORT, GRPC_PORT, HTTP_PORT = 6390, 9000, 8000


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class RayServeCluster:
    def __init__(
        self,
        checkpoint: str,
        replicas: int = 1,
        num_cpus: float = 2.0,
        cluster_cpus: int = 2,
        token: str = "",
        batch_wait_ms: float = 0.0,
        log_dir: Path | None = None,
        netns_name: str = "",
        direct_ingress: bool = False,
    ) -> None:
        # netns_name: run in an existing namespace the caller is already inside (bench/remote.py
        # re-executes itself there to measure without the bridge); "" = make and own one.
        self.name = netns_name or f"totoray{os.getpid()}"
        self.own_netns = not netns_name
        self.temp_dir = Path(f"/tmp/totoray-{os.getpid()}")
        self.checkpoint, self.replicas, self.num_cpus, self.cluster_cpus = (
            checkpoint,
            replicas,
            num_cpus,
            cluster_cpus,
        )
        self.token, self.batch_wait_ms = token, batch_wait_ms
        self.direct_ingress = direct_ingress
        self.direct_ports: list[int] = []  # each replica's own OIP port (direct ingress), per deploy
        self.log_dir = log_dir or self.temp_dir
        self.bridge: netns.LoopbackBridge | None = None
        self.direct_bridge: netns.LoopbackBridge | None = None
        self.timings: dict[str, float] = {}
        self.keep_pids: tuple[int, ...] = ()  # processes in a shared namespace that are not Ray's

    @property
    def address(self) -> str:
        if not self.own_netns:
            return f"127.0.0.1:{GRPC_PORT}"
        assert self.bridge is not None
        return self.bridge.address

    @property
    def direct_address(self) -> str:
        """The first replica's own OIP port (direct ingress), reached without Serve's proxy."""
        if not self.direct_ports:
            raise RuntimeError("direct ingress is off, or the deploy printed no replica address")
        if not self.own_netns:
            return f"127.0.0.1:{self.direct_ports[0]}"
        if self.direct_bridge is None:
            self.direct_bridge = netns.LoopbackBridge(self.name, self.direct_ports[0])
        return self.direct_bridge.address

    def _env(self) -> dict[str, str]:
        from toto_datasource.serving.ray_tuning import DIRECT_INGRESS_ENV, PROXY_ENV

        node = {**PROXY_ENV, **(DIRECT_INGRESS_ENV if self.direct_ingress else {})}
        env = {**node, **os.environ}  # the node's env reaches Serve's controller and proxy; the caller's wins
        env.update(
            RAY_AUTH_MODE="disabled",
            RAY_USAGE_STATS_ENABLED="0",
            HF_HUB_OFFLINE="1",
            TOTO_INFERENCE_TOKEN=self.token,
        )
        return env

    def _inside(self, *argv: str, timeout: float, what: str) -> None:
        started = time.perf_counter()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{what}.log", "w") as log:
            result = subprocess.run(
                ["ip", "netns", "exec", self.name, *argv],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        self.timings[what] = round(time.perf_counter() - started, 1)
        if result.returncode != 0:
            tail = (self.log_dir / f"{what}.log").read_text()[-3000:]
            raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{tail}")

    def start(self) -> RayServeCluster:
        try:
            if self.own_netns:
                netns.create(self.name)
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            self._ray_start()
            if self.replicas:  # 0: only the Ray head (the caller deploys, e.g. from serve_config.yaml)
                self.deploy(self.replicas, self.num_cpus)
            if self.own_netns:
                self.bridge = netns.LoopbackBridge(self.name, GRPC_PORT)
        except BaseException:
            self.stop()
            raise
        return self

    def _ray_start(self, attempts: int = 3) -> None:
        """`ray start` gives the raylet a fixed 30 s to register; on an overloaded shared machine
        (load 16 on 2 cores, measured) it misses that now and then: kill what it left, retry."""
        for attempt in range(attempts):
            try:
                self._start_head()
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self._kill_inside()

    def _start_head(self) -> None:
        self._inside(
            RAY,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={GCS_PORT}",
            "--include-dashboard=false",
            f"--num-cpus={self.cluster_cpus}",
            "--num-gpus=0",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
            "--object-store-memory=200000000",
            timeout=180,
            what="ray-start",
        )

    def deploy(self, replicas: int, num_cpus: float) -> None:
        """(Re)deploy the app with this many replicas; returns once they are ready."""
        self._inside(
            sys.executable,
            "-m",
            "toto_datasource",
            "serve-model",
            "--ray",
            "--detach",
            f"--ray-address=127.0.0.1:{GCS_PORT}",
            f"--checkpoint={self.checkpoint}",
            "--device=cpu",
            f"--replicas={replicas}",
            f"--num-cpus={num_cpus}",
            f"--grpc-port={GRPC_PORT}",
            f"--http-port={HTTP_PORT}",
            f"--batch-wait-ms={self.batch_wait_ms}",
            *(["--direct-ingress"] if self.direct_ingress else []),
            timeout=300,
            what=f"deploy-{replicas}",
        )
        self.replicas = replicas
        if self.direct_ingress:
            log = (self.log_dir / f"deploy-{replicas}.log").read_text()
            printed = log.split("direct ingress (", 1)[-1].split("\n", 1)[0]  # the line serve-model printed
            self.direct_ports = [int(p) for p in re.findall(r"\d+\.\d+\.\d+\.\d+:(\d+)", printed)]

    def stop(self) -> None:
        for bridge in (self.bridge, self.direct_bridge):
            if bridge is not None:
                bridge.close()
        self.bridge = self.direct_bridge = None
        self._kill_inside()
        if self.own_netns:
            netns.delete(self.name)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _kill_inside(self) -> None:
        """Every process in our namespace is one we started (ray's daemons, workers, drivers)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [p for p in netns.pids(self.name) if p not in (os.getpid(), *self.keep_pids)]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while pids and time.monotonic() < deadline and any(_alive(p) for p in pids):
                time.sleep(0.2)  # teardown only: waiting for our own processes to exit

    def __enter__(self) -> RayServeCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
