"""The plugin's gRPC server in process, with a data source that blocks: data calls over the
limit are answered 503 per refId at once, health answers while they are stuck, every outgoing
message is redacted, and idle RPC threads end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource._proto.pluginv2 import backend_pb2_grpc as pb_grpc
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.errors import BackendError
from toto_datasource.core.redact import KNOWN_SECRETS
from toto_datasource.core.types import HealthResult, QueryResult
from toto_datasource.plugin.executor import ElasticThreadPool
from toto_datasource.plugin.server import RESERVED_THREADS, build_server

THREADS = 12
SECRET = "AdmissionSecret-42"


class NoInstances:
    def get(self, key, version, raw):  # type: ignore[no-untyped-def]
        return None


@dataclass
class BlockingSource:
    release: threading.Event = field(default_factory=threading.Event)
    entered: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    config: ProcessConfig = field(default_factory=lambda: ProcessConfig(max_rpc_threads=THREADS))
    instances: NoInstances = field(default_factory=NoInstances)

    def query_data(self, instance, queries, ctx):  # type: ignore[no-untyped-def]
        self.entered.release()
        self.release.wait(30)
        error = BackendError(f"upstream said Bearer {SECRET}", 502)
        return {q.ref_id: QueryResult(error=error) for q in queries}

    def check_health(self, instance, ctx):  # type: ignore[no-untyped-def]
        return HealthResult(False, f"Prometheus at http://u:{SECRET}@h/?token={SECRET} failed")


@pytest.fixture
def server() -> Iterator[tuple[grpc.Channel, BlockingSource]]:
    KNOWN_SECRETS.remember([SECRET])
    ds = BlockingSource()
    srv = build_server(ds, threading.Event(), honour_shutdown=False)  # type: ignore[arg-type]
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, ds
    finally:
        ds.release.set()
        channel.close()
        srv.stop(0).wait(5)


def test_stuck_data_calls_cannot_starve_health(server: tuple[grpc.Channel, BlockingSource]) -> None:
    channel, ds = server
    data = pb_grpc.DataStub(channel)
    request = pb.QueryDataRequest(queries=[pb.DataQuery(refId="A"), pb.DataQuery(refId="B")])
    limit = THREADS - RESERVED_THREADS
    answered = threading.Semaphore(0)
    calls: list[Future] = [data.QueryData.future(request, timeout=30) for _ in range(limit + 6)]
    for c in calls:
        c.add_done_callback(lambda _: answered.release())
    for _ in range(limit):
        assert ds.entered.acquire(timeout=30)
    for _ in range(6):  # the calls over the limit are answered while the others are still stuck
        assert answered.acquire(timeout=30)
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    check = pb_grpc.DiagnosticsStub(channel).CheckHealth(pb.CheckHealthRequest(), timeout=10)
    assert SECRET not in check.message and "http://***@h/?***" in check.message
    stuck = [c for c in calls if not c.done()]
    assert len(stuck) == limit  # health and CheckHealth answered while these were stuck
    ds.release.set()
    answers = [c.result(timeout=30) for c in calls]
    busy_answers = [a for a in answers if a.responses["A"].status == 503]
    assert len(busy_answers) == 6
    for a in busy_answers:
        assert {r.status for r in a.responses.values()} == {503} and "busy" in a.responses["B"].error
    for a in answers:
        assert all(SECRET not in r.error for r in a.responses.values())


def test_idle_threads_end() -> None:
    settled = threading.Event()
    pool = ElasticThreadPool(8, min_workers=1, idle_s=0.05, on_idle=settled.set)
    gate = threading.Event()
    futures = [pool.submit(gate.wait, 10) for _ in range(6)]
    assert pool.threads == 6
    gate.set()
    assert all(f.result(timeout=10) for f in futures)
    done = threading.Event()
    for _ in range(500):  # bounded wait for the idle timeout to pass (50 ms per worker)
        if pool.threads == 1:
            break
        done.wait(0.01)
    assert pool.threads == 1
    assert settled.wait(5)  # the burst is over: the server trims the heap here
    assert pool.submit(lambda: 7).result(timeout=5) == 7
    pool.shutdown()
