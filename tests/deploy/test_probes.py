"""The sidecar's HTTP probes (plugin/probes.py): each answer comes from a real gRPC health check
of the plugin server, readiness never waits for the model."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from toto_datasource.plugin.probes import ProbeEndpoint


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture()
def served() -> Iterator[tuple[grpc.Server, ProbeEndpoint, threading.Event, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stopping = threading.Event()
    models = [{"checkpoint": "/models/Toto-2.0-22m", "runtime": "local", "state": "loading"}]
    probes = ProbeEndpoint("127.0.0.1:0", f"127.0.0.1:{port}", stopping, lambda: models).start()
    yield server, probes, stopping, f"http://127.0.0.1:{probes.port}"
    probes.stop()
    server.stop(0)


def test_live_and_ready_while_the_model_still_loads(served) -> None:  # type: ignore[no-untyped-def]
    _, _, _, url = served
    assert get(f"{url}/livez") == (200, {"status": "ok"})
    status, body = get(f"{url}/readyz")
    assert status == 200 and body["models"][0]["state"] == "loading"
    assert get(f"{url}/metrics")[0] == 404


def test_stopping_is_unready_but_alive(served) -> None:  # type: ignore[no-untyped-def]
    _, _, stopping, url = served
    stopping.set()
    status, body = get(f"{url}/readyz")
    assert status == 503 and body["problem"] == "the plugin server is stopping"
    assert get(f"{url}/livez")[0] == 200


def test_a_grpc_server_that_does_not_answer_fails_both(served) -> None:  # type: ignore[no-untyped-def]
    server, _, _, url = served
    server.stop(0).wait()
    for path in ("/livez", "/readyz"):
        status, body = get(url + path)
        assert status == 503 and "does not answer" in body["problem"]
