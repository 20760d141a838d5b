"""Start the plugin exactly as Grafana does and talk to it: for `demo`, tests and benchmarks.

The child gets the magic cookie and PLUGIN_PROTOCOL_VERSIONS, its first stdout line is parsed
as go-plugin's handshake, and the gRPC channel goes to the address it names.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from .._proto.goplugin import grpc_controller_pb2 as ctl
from .._proto.goplugin import grpc_controller_pb2_grpc as ctl_grpc
from .._proto.pluginv2 import backend_pb2 as pb
from .._proto.pluginv2 import backend_pb2_grpc as pb_grpc


@dataclass
class Handshake:
    core: str
    app: str
    network: str
    address: str
    protocol: str

    @classmethod
    def parse(cls, line: str) -> Handshake:
        parts = line.strip().split("|")
        if len(parts) < 5:
            raise RuntimeError(f"unrecognised plugin handshake line: {line!r}")
        return cls(*parts[:5])

    @property
    def target(self) -> str:
        return f"unix:{self.address}" if self.network == "unix" else self.address


@dataclass
class PluginProcess:
    """A running plugin child; use as a context manager."""

    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "toto_datasource"])
    env: dict[str, str] = field(default_factory=dict)
    # a file object to keep the plugin's hclog lines; None: discard (or TOTO_PLUGIN_STDERR=1)
    stderr: Any = None
    start_seconds: float = 0.0

    def __enter__(self) -> PluginProcess:
        env = {**os.environ, **self.env, "grafana_plugin_type": "datasource", "PLUGIN_PROTOCOL_VERSIONS": "2",
               "PLUGIN_MIN_PORT": "0", "PLUGIN_MAX_PORT": "0"}
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command, env=env, stdout=subprocess.PIPE, stderr=self._stderr(), text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.start_seconds = time.perf_counter() - started
        if not line:
            self.proc.wait(5)
            raise RuntimeError(f"the plugin exited with {self.proc.returncode} before its handshake")
        self.handshake_line = line
        self.handshake = Handshake.parse(line)
        self.channel = grpc.insecure_channel(
            self.handshake.target,
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )
        self.data = pb_grpc.DataStub(self.channel)
        self.diagnostics = pb_grpc.DiagnosticsStub(self.channel)
        self.resource = pb_grpc.ResourceStub(self.channel)
        self.controller = ctl_grpc.GRPCControllerStub(self.channel)
        return self

    def wait_until_loaded(self, ctx: pb.PluginContext, timeout_s: float = 120) -> pb.CheckHealthResponse:
        """CheckHealth, repeated while its details say the model is loading (it loads in the
        background after the handshake and no event tells a client when it is done), for at most
        timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            health = self.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=120)
            details = json.loads(health.jsonDetails or b"{}")
            if details.get("model", {}).get("state") != "loading" or time.monotonic() > deadline:
                return health
            time.sleep(0.2)  # a poll interval under a deadline

    def _stderr(self) -> Any:
        if self.stderr is not None:
            return self.stderr
        return None if os.environ.get("TOTO_PLUGIN_STDERR") == "1" else subprocess.DEVNULL

    def shutdown(self, timeout: float = 2.0) -> int:
        """go-plugin's Kill(): Shutdown, wait up to 2 s, then SIGKILL. Returns the exit code."""
        with contextlib.suppress(grpc.RpcError):
            self.controller.Shutdown(ctl.Empty(), timeout=timeout)
        self.channel.close()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.shutdown()
