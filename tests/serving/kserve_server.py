"""KServe's Python ModelServer with the Toto model (serving/kserve_model.py), in its own
loopback-only network namespace, reached from here through a LoopbackBridge.

    with KServeServer(python, checkpoint, log_path) as server:
        RemoteRunner(RemoteSettings(server.address))

Why a namespace: KServe 0.21 binds gRPC on `[::]:port` and HTTP (uvicorn) on `0.0.0.0:port`,
hard-coded (kserve/protocol/grpc/server.py, protocol/rest/server.py), so on the host it would
listen on every interface. Inside a namespace whose only interface is `lo` both reach nothing
beyond loopback. Lifecycle: namespace → the server process (loads and warms the model, then
KServe starts its servers) → bridge; ready once KServe logs that gRPC is starting and then
answers ServerReady. `stop()` (also on a failed start) ends exactly the processes inside our
namespace and deletes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc
from toto_datasource._proto.inference import grpc_predict_v2_pb2 as pb
from toto_datasource._proto.inference import grpc_predict_v2_pb2_grpc as pb_grpc

from . import netns, server_log

GRPC_PORT, HTTP_PORT = 8081, 8080
SERVER_DIR = Path(__file__).resolve().parents[2] / "server"
READY_LINE = "Starting gRPC server on"


class KServeServer:
    def __init__(self, python: Path, checkpoint: str, log_path: Path, model: str = "toto",
                 max_rows: int = 256, start_timeout_s: float = 240.0) -> None:
        # max_rows 256: the plugin splits at 256 rows when the engine does not say (KServe never does)
        self.python, self.checkpoint, self.log_path = python, checkpoint, log_path
        self.model, self.max_rows, self.start_timeout_s = model, max_rows, start_timeout_s
        self.name = f"totokserve{os.getpid()}"
        self.process: subprocess.Popen[str] | None = None
        self.bridge: netns.LoopbackBridge | None = None
        self._grpc_starting = threading.Event()
        self.timings: dict[str, float] = {}

    @property
    def address(self) -> str:
        assert self.bridge is not None, "not started"
        return self.bridge.address

    def _argv(self) -> list[str]:
        return [
            "ip", "netns", "exec", self.name, str(self.python), "-m", "toto_datasource.serving.kserve_model",
            f"--checkpoint={self.checkpoint}", f"--model_name={self.model}", "--device=cpu",
            f"--max_rows={self.max_rows}", f"--grpc_port={GRPC_PORT}", f"--http_port={HTTP_PORT}",
            "--workers=1", "--enable_latency_logging=false",
        ]

    def interfaces(self) -> list[str]:
        """The namespace's network interfaces (only `lo`: nothing KServe binds is reachable beyond it)."""
        out = subprocess.run(["ip", "netns", "exec", self.name, "ip", "-o", "link", "show"],
                             capture_output=True, text=True, check=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text()[-chars:] if self.log_path.exists() else ""

    def start(self) -> KServeServer:
        started = time.perf_counter()
        try:
            netns.create(self.name)
            env = {**os.environ, "PYTHONPATH": str(SERVER_DIR), "HF_HUB_OFFLINE": "1",
                   "PYTHONUNBUFFERED": "1"}
            env.pop("PYTHONHOME", None)
            self.process = subprocess.Popen(self._argv(), env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True)
            server_log.tee(self.process, self.log_path, READY_LINE, self._grpc_starting, "kserve-log")
            if not self._grpc_starting.wait(self.start_timeout_s) or self.process.poll() is not None:
                raise RuntimeError(f"KServe did not start (exit {self.process.poll()}):\n{self.log_tail()}")
            self.timings["model loaded, gRPC starting"] = round(time.perf_counter() - started, 1)
            self.bridge = netns.LoopbackBridge(self.name, GRPC_PORT)
            with grpc.insecure_channel(self.bridge.address) as channel:
                ready = pb_grpc.GRPCInferenceServiceStub(channel).ServerReady(
                    pb.ServerReadyRequest(), timeout=60, wait_for_ready=True)
            if not ready.ready:
                raise RuntimeError(f"KServe says it is not ready:\n{self.log_tail()}")
            self.timings["ready"] = round(time.perf_counter() - started, 1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            pids = [p for p in netns.pids(self.name) if p != os.getpid()]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if self.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(wait_s)
            if not netns.pids(self.name):
                break
        netns.delete(self.name)

    def __enter__(self) -> KServeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
