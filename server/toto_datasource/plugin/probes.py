"""HTTP liveness and readiness for a plugin server that runs on its own (the sidecar).

Why HTTP beside gRPC: a kubelet probes the pod's IP, but the sidecar's pluginv2 port listens on
127.0.0.1 only — it has no authentication, and anything that reaches it can query with any
settings. So `serve --health-address 0.0.0.0:8081` opens this small endpoint, which answers
nothing but two paths, each from a real gRPC health check of the server over loopback (a wedged
gRPC server fails the probe even while this thread still answers):

- GET /livez: 200 while the gRPC server answers its health service; 503 otherwise.
- GET /readyz: the same, and 503 once the server is stopping. The model's state is in the body
  but never fails the probe: the sidecar shares Grafana's pod, and an unready container takes the
  whole pod (Grafana's UI) out of its Service; a model that is loading or failed is each query's
  503/400 and CheckHealth's message instead.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 2.0


class ProbeEndpoint:
    def __init__(self, address: str, grpc_target: str, stopping: threading.Event,
                 models: Callable[[], list[dict[str, Any]]]) -> None:
        host, _, port = address.rpartition(":")
        self._grpc_target = grpc_target
        self._stopping = stopping
        self._models = models
        self._channel = grpc.insecure_channel(grpc_target)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                status, body = endpoint.answer(self.path.split("?", 1)[0])
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
                return

        self._server = ThreadingHTTPServer((host.strip("[]") or "0.0.0.0", int(port)), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="probes", daemon=True)

    def start(self) -> ProbeEndpoint:
        self._thread.start()
        return self

    def grpc_serving(self) -> str | None:
        """None when the gRPC server answers SERVING, else what is wrong."""
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=CHECK_TIMEOUT_S)
        except grpc.RpcError as exc:
            return f"the plugin server at {self._grpc_target} does not answer: {exc.code().name}"
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            return f"the plugin server reports {status}"
        return None

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        if path not in ("/livez", "/readyz"):
            return 404, {"error": "not found: GET /livez or /readyz"}
        problem = self.grpc_serving()
        if problem is None and path == "/readyz" and self._stopping.is_set():
            problem = "the plugin server is stopping"
        body: dict[str, Any] = {"status": "ok" if problem is None else "failing"}
        if problem is not None:
            body["problem"] = problem
        if path == "/readyz":
            body["models"] = self._models()
        return (200 if problem is None else 503), body

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._channel.close()
