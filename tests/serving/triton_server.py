"""NVIDIA Triton (PyTriton's `tritonserver`) with the Toto model (serving/triton_model.py), on
127.0.0.1, started from the Triton venv (tests/serving/triton_venv.py).

    with TritonServer(python, checkpoint, workdir) as server:
        RemoteRunner(RemoteSettings(server.address))

No network namespace: Triton binds the address it is given (`--grpc-address`/`--http-address`
127.0.0.1; metrics off), and `listening()` lets the test check that every listening socket of
the server's processes is on loopback. Lifecycle: the model process (its own session: it loads
and warms the model, then PyTriton starts `tritonserver`, which starts one Python-backend stub
per model instance, and binds the model) → ready once the model process logs that the model is
bound (PyTriton has waited for Triton to load it) and Triton answers ServerReady and
ModelReady. `stop()` (also on a failed start) sends SIGTERM to the model process (it stops
Triton as on Ctrl-C), then SIGKILL to whatever of its session is left, and waits until none is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import grpc
from toto_datasource._proto.inference import grpc_predict_v2_pb2 as pb
from toto_datasource._proto.inference import grpc_predict_v2_pb2_grpc as pb_grpc

from . import server_log, triton_venv

SERVER_DIR = Path(__file__).resolve().parents[2] / "server"
READY_LINE = "on Triton: gRPC"  # serving/triton_model.py, after PyTriton's bind() returned


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                # fields after the ")" closing the command: state ppid pgrp session ...
                if int(stat.rsplit(")", 1)[1].split()[3]) == sid:
                    pids.append(int(entry))
    return pids


class TritonServer:
    def __init__(self, python: Path, checkpoint: str, workdir: Path, model: str = "toto",
                 max_rows: int = 256, instances: int = 4, start_timeout_s: float = 240.0) -> None:
        # max_rows 256: the plugin splits at 256 rows when the engine does not say (Triton never does)
        self.python, self.checkpoint, self.workdir = python, checkpoint, workdir
        self.model, self.max_rows, self.instances = model, max_rows, instances
        self.start_timeout_s = start_timeout_s
        self.log_path = workdir / "server.log"
        self.grpc_port, self.http_port = _free_port(), _free_port()
        self.process: subprocess.Popen[str] | None = None
        self._bound = threading.Event()
        self.timings: dict[str, float] = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _argv(self) -> list[str]:
        return [
            str(self.python), "-m", "toto_datasource.serving.triton_model",
            f"--checkpoint={self.checkpoint}", f"--model_name={self.model}", "--device=cpu",
            f"--max_rows={self.max_rows}", f"--instances={self.instances}", "--address=127.0.0.1",
            f"--grpc_port={self.grpc_port}", f"--http_port={self.http_port}",
            f"--workspace={self.workdir / 'workspace'}",
        ]

    def pids(self) -> list[int]:
        return _session_pids(self.process.pid) if self.process is not None else []

    def listening(self) -> list[str]:
        """`address:port` of every TCP socket the server's processes listen on."""
        mine = set(self.pids())
        out = subprocess.run(["ss", "-H", "-ltnp"], capture_output=True, text=True, check=True).stdout
        found = []
        for line in out.splitlines():
            fields = line.split()
            if any(f"pid={pid}," in line for pid in mine) and len(fields) >= 4:
                found.append(fields[3])
        return sorted(found)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text()[-chars:] if self.log_path.exists() else ""

    def start(self) -> TritonServer:
        started = time.perf_counter()
        try:
            env = {**os.environ, "PYTHONPATH": str(SERVER_DIR), "HF_HUB_OFFLINE": "1",
                   "PYTHONUNBUFFERED": "1"}
            env["LD_LIBRARY_PATH"] = ":".join(
                p for p in (triton_venv.libpython_dir(), env.get("LD_LIBRARY_PATH", "")) if p)
            env.pop("PYTHONHOME", None)
            self.process = subprocess.Popen(self._argv(), env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
            server_log.tee(self.process, self.log_path, READY_LINE, self._bound, "triton-log")
            if not self._bound.wait(self.start_timeout_s) or self.process.poll() is not None:
                raise RuntimeError(f"Triton did not start (exit {self.process.poll()}):\n{self.log_tail()}")
            self.timings["model bound"] = round(time.perf_counter() - started, 1)
            with grpc.insecure_channel(self.address) as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                server = stub.ServerReady(pb.ServerReadyRequest(), timeout=60, wait_for_ready=True)
                model = stub.ModelReady(pb.ModelReadyRequest(name=self.model), timeout=60)
            if not (server.ready and model.ready):
                raise RuntimeError(f"Triton says server ready {server.ready}, model ready {model.ready}:\n"
                                   f"{self.log_tail()}")
            self.timings["ready"] = round(time.perf_counter() - started, 1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        # SIGTERM to the model process: PyTriton stops Triton, its stubs and helpers; then SIGKILL
        # whatever of the session is left (the model process, tritonserver, stubs, helpers).
        for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            for pid in [self.process.pid] if sig == signal.SIGTERM else self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(wait_s)
            deadline = time.monotonic() + wait_s
            while self.pids() and time.monotonic() < deadline:  # children that outlive the leader
                time.sleep(0.1)
            if not self.pids():
                break

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
