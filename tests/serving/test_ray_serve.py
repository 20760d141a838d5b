"""The real thing: a Ray head in a loopback-only network namespace, the Toto Serve app on the
random 4m checkpoint, and the RemoteRunner talking to Serve's gRPC proxy through the bridge.

One replica (2 CPUs) keeps the added CI time to ~1.5–2 min on 2 cores: ray start ~35 s, deploy
~40 s, replica restart after the kill ~30 s. Ray is stopped in the fixture's teardown, also when
a test fails. Skips only where network namespaces cannot be made (not root): CI runs as root.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
from toto_datasource._proto.inference import grpc_predict_v2_pb2 as pb
from toto_datasource.backend.errors import BackendError
from toto_datasource.engine.remote import RemoteRunner, RemoteSettings, probe

from . import netns
from .conftest import prepared_batch
from .ray_cluster import RayServeCluster
from .test_oip_server import in_process

pytest.importorskip("ray.serve", reason="the `serving` extra (ray[serve]) is installed by `make install`")
pytestmark = pytest.mark.skipif(bool(netns.available()), reason=netns.available() or "ok")
TOKEN = "ray-test-token"


@pytest.fixture(scope="module")
def cluster(tiny_checkpoint, tmp_path_factory) -> Iterator[RayServeCluster]:  # type: ignore[no-untyped-def]
    logs = tmp_path_factory.mktemp("ray")
    with RayServeCluster(
        str(tiny_checkpoint.resolve()), replicas=1, num_cpus=2, token=TOKEN, log_dir=logs
    ) as c:
        yield c


def runner(cluster: RayServeCluster, **kw) -> RemoteRunner:  # type: ignore[no-untyped-def]
    kw.setdefault("token", TOKEN)
    return RemoteRunner(RemoteSettings(cluster.address, application="toto", **kw))


def test_ray_serve_equals_in_process_and_batches_across_requests(cluster, serving_engine) -> None:
    r = runner(cluster)
    batch = prepared_batch(rows=16, length=1024, seed=5)
    np.testing.assert_allclose(r(batch), in_process(serving_engine, batch), rtol=0, atol=1e-6)
    # 8 concurrent one-row requests: @serve.batch merges them; each row still gets its own answer.
    rows = [prepared_batch(rows=1, length=512, seed=10 + i) for i in range(8)]
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, r(rows[i]))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, b in enumerate(rows):  # padding/merging changes the summation order: ~1e-7 relative
        np.testing.assert_allclose(results[i], in_process(serving_engine, b), rtol=1e-5, atol=1e-5)


def test_health_reports_the_remote_model(cluster) -> None:
    health = probe(runner(cluster))
    assert health.ready, health.error
    assert health.message.startswith(f"remote model toto at {cluster.address}: ready, checkpoint /")
    assert health.info["device"] == "cpu" and health.info["platform"] == "toto-2/ray-serve"
    assert not probe(runner(cluster, token="wrong")).ready


def test_deadline_shorter_than_the_answer_gives_504(cluster) -> None:
    batch = replace(prepared_batch(rows=64, length=2048), deadline=time.monotonic() + 0.02)
    with pytest.raises(BackendError) as err:
        runner(cluster)(batch)
    assert err.value.status == 504 and cluster.address in err.value.message


def _properties(r: RemoteRunner) -> dict[str, str]:
    md = (("authorization", f"Bearer {TOKEN}"), ("application", "toto"))
    return dict(
        r.stub.ModelMetadata(pb.ModelMetadataRequest(name="toto"), metadata=md, timeout=10).properties
    )


def test_replica_killed_mid_stream_gives_clear_errors_then_recovers(cluster, serving_engine) -> None:
    r = runner(cluster)
    long_batch = prepared_batch(rows=128, length=4096, seed=7)
    errors: list[BackendError] = []

    def stream() -> None:
        try:
            r(long_batch)
        except BackendError as exc:
            errors.append(exc)

    worker = threading.Thread(target=stream)
    worker.start()
    pid = 0
    for _ in range(200):  # until the replica reports the request in flight (its own counter)
        props = _properties(r)
        if int(props["in_flight"]) > 0:
            pid = int(props["pid"])
            break
    assert pid, "the long request never reached the replica"
    os.kill(pid, signal.SIGKILL)
    worker.join(120)
    assert errors, "a request in flight on a killed replica must fail"
    err = errors[0]
    assert err.status in (502, 503, 504) and err.source == "downstream"
    assert cluster.address in err.message
    # Serve restarts the replica; queries fail clearly (never hang past their deadline) until then.
    batch = prepared_batch(rows=2, seed=8)
    recovered = None
    give_up = time.monotonic() + 150
    while recovered is None and time.monotonic() < give_up:
        try:
            recovered = r(replace(batch, deadline=time.monotonic() + 5))
        except BackendError as exc:
            assert exc.status in (502, 503, 504) and cluster.address in exc.message
            time.sleep(1)  # poll for the restarted replica
    assert recovered is not None, "Serve did not bring the replica back"
    np.testing.assert_allclose(recovered, in_process(serving_engine, batch), rtol=0, atol=1e-6)
    assert int(_properties(r)["pid"]) != pid
