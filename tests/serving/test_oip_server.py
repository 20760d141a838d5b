"""The remote runtime against a plain grpcio OIP server on 127.0.0.1 (fast; no Ray).

What the plugin relies on: identical numbers to the in-process engine, the engine's row limit
honoured by splitting, the query's deadline as the gRPC deadline (→ 504), an engine that is not
there (→ 503 naming its address, never the token), a checked token, cancellation, and health.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import grpc
import numpy as np
import pytest
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.errors import BackendError
from toto_datasource.core.request import RequestContext
from toto_datasource.engine.remote import RemoteRunner, RemoteSettings, contract, probe
from toto_datasource.engine.toto import run_batch
from toto_datasource.engine.toto_runner import in_data_units, toto_runner
from toto_datasource.serving.oip import OIPServicer, build_server

from .conftest import TOKEN, assert_in_data_units, magnitudes_batch, prepared_batch


def runner_for(address: str, token: str = TOKEN, **kw) -> RemoteRunner:  # type: ignore[no-untyped-def]
    return RemoteRunner(RemoteSettings(address, token=token, **kw))


def in_process(engine, batch) -> np.ndarray:  # type: ignore[no-untyped-def]
    """What the in-process runtime computes for `batch`: its runner on the engine's checkpoint."""
    return toto_runner(engine.loaded)(batch)


def test_remote_equals_in_process_and_splits_over_the_row_limit(oip_server, serving_engine) -> None:
    runner = runner_for(oip_server.address)
    batch = prepared_batch(rows=8, seed=1)
    remote = runner(batch)
    assert remote.shape == (9, 8, 1, 64) and remote.dtype == np.float64
    np.testing.assert_allclose(remote, in_process(serving_engine, batch), rtol=0, atol=1e-6)
    # 20 rows over the engine's limit of 8 (advertised in ModelMetadata): 3 calls, same answer per row.
    big = prepared_batch(rows=20, seed=2)
    calls = runner.calls
    out = runner(big)
    assert runner.calls - calls == 3
    assert runner.max_rows() == 8
    first = replace(big, values=big.values[:8], mask=big.mask[:8], series_ids=big.series_ids[:8])
    np.testing.assert_allclose(out[:, :8], in_process(serving_engine, first), rtol=0, atol=1e-6)


def test_every_magnitude_equals_in_process_whichever_side_rescales(oip_server, serving_engine) -> None:
    """Rows below toto2's scale floor and a huge one: a caller that sends them raw (the server
    rescales) and the plugin's runner (it rescales before sending) both get the in-process numbers
    bit for bit, in data units."""
    batch = magnitudes_batch()
    expected = in_process(serving_engine, batch)
    assert_in_data_units(expected)
    runner = runner_for(oip_server.address)
    np.testing.assert_array_equal(runner(batch), expected)
    np.testing.assert_array_equal(in_data_units(runner)(batch), expected)


def test_an_engine_that_knows_only_the_contract_answers_in_data_units(serving_engine) -> None:
    """An OIP engine that runs toto2 as docs/REMOTE_INFERENCE.md says and knows nothing of scale
    floors: the plugin's runner rescales before sending, so the answer still equals in-process."""
    contract_only = replace(serving_engine, runner=lambda batch: run_batch(serving_engine.loaded, batch))
    server, port = build_server(OIPServicer(contract_only), "127.0.0.1:0", workers=4)
    server.start()
    try:
        runner = runner_for(f"127.0.0.1:{port}")
        batch = magnitudes_batch()
        expected = in_process(serving_engine, batch)
        np.testing.assert_array_equal(in_data_units(runner)(batch), expected)
        with pytest.raises(AssertionError):  # what that engine gives a caller that does not rescale
            assert_in_data_units(runner(batch))
    finally:
        server.stop(0).wait(5)


def test_block_decoding_and_complete_path_travel_as_parameters(oip_server, serving_engine) -> None:
    runner = runner_for(oip_server.address)
    batch = prepared_batch(rows=2, seed=3, gaps=False, decode_block_size=64, horizon=96)
    assert not batch.has_missing_values
    np.testing.assert_allclose(runner(batch), in_process(serving_engine, batch), rtol=0, atol=1e-6)
    request = contract.encode_request(batch, "toto")
    decoded = contract.decode_request(request)
    assert (decoded.decode_block_size, decoded.has_missing_values, decoded.horizon) == (64, False, 96)
    np.testing.assert_array_equal(decoded.values, batch.values)
    np.testing.assert_array_equal(decoded.mask, batch.mask)


def test_deadline_shorter_than_the_engine_gives_504(oip_server) -> None:
    oip_server.gate.open.clear()  # the engine holds every call
    runner = runner_for(oip_server.address, max_rows=8)
    batch = replace(prepared_batch(rows=1), deadline=time.monotonic() + 0.5)
    with pytest.raises(BackendError) as err:
        runner(batch)
    assert err.value.status == 504 and err.value.source == "downstream"
    assert oip_server.address in err.value.message and "deadline" in err.value.message


def test_a_cancelled_batch_cancels_the_call(oip_server) -> None:
    oip_server.gate.open.clear()
    oip_server.gate.entered.clear()
    gone = threading.Event()
    batch = replace(prepared_batch(rows=1), cancelled=gone.is_set)
    runner = runner_for(oip_server.address, max_rows=8, poll_s=0.01)
    errors: list[BackendError] = []

    def call() -> None:
        try:
            runner(batch)
        except BackendError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert oip_server.gate.entered.wait(30)  # the call is at the engine
    gone.set()  # every caller went away
    worker.join(30)
    assert errors and "cancelled" in errors[0].message


def test_engine_down_gives_503_naming_the_address_not_the_token() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = runner_for(f"grpc://127.0.0.1:{port}", token="sekrit-token", max_rows=8)
    with pytest.raises(BackendError) as err:
        runner(prepared_batch(rows=1))
    assert err.value.status == 503 and err.value.source == "downstream"
    assert f"127.0.0.1:{port}" in err.value.message and "sekrit" not in err.value.message
    assert "sekrit" not in repr(runner.settings)
    health = probe(runner, RequestContext(), timeout_s=2)
    assert not health.ready and f"127.0.0.1:{port}" in health.message and "sekrit" not in health.message


class CountingServicer(OIPServicer):
    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        super().__init__(engine)
        self.infers = 0

    def ModelInfer(self, request, context):  # type: ignore[no-untyped-def]
        self.infers += 1
        return super().ModelInfer(request, context)


def test_several_engine_addresses_share_the_calls(serving_engine) -> None:  # type: ignore[no-untyped-def]
    """Ray Serve's direct ingress is one port per replica: a URL listing them spreads the calls
    (round robin), where one channel to the first address would load one replica only."""
    servicers = [CountingServicer(serving_engine) for _ in range(2)]
    servers = [build_server(s, "127.0.0.1:0", workers=4) for s in servicers]
    for server, _ in servers:
        server.start()
    try:
        listed = ",".join(f"127.0.0.1:{port}" for _, port in servers)
        runner = runner_for(f"grpc://{listed}")
        assert runner.address == listed
        batch = prepared_batch(rows=2, length=256, seed=3)
        for _ in range(8):
            np.testing.assert_array_equal(runner(batch), in_process(serving_engine, batch))
        assert all(s.infers > 0 for s in servicers) and sum(s.infers for s in servicers) == 8
    finally:
        for server, _ in servers:
            server.stop(0).wait(5)
    runner = runner_for(f"grpc://{listed}", max_rows=8)  # both gone: one 503 naming both
    with pytest.raises(BackendError) as err:
        runner(batch)
    assert err.value.status == 503 and listed in err.value.message


def test_the_token_is_checked(oip_server) -> None:
    for token in ("", "wrong"):
        with pytest.raises(BackendError) as err:
            runner_for(oip_server.address, token=token, max_rows=8)(prepared_batch(rows=1))
        assert err.value.status == 502 and "token" in err.value.message


def test_health_reports_the_remote_model(oip_server) -> None:
    health = probe(runner_for(oip_server.address), RequestContext())
    assert health.ready, health.error
    assert health.message.startswith(f"remote model toto at {oip_server.address}: ready, checkpoint ")
    assert "device cpu" in health.message
    assert health.info["id"] == "toto" and health.info["maxRows"] == 8 and health.info["parameters"] > 1e6
    assert health.info["maxConcurrency"] == 1  # one model, queued requests merged: one call in flight
    wrong_model = RemoteRunner(RemoteSettings(oip_server.address, model="chronos", token=TOKEN))
    assert not probe(wrong_model, RequestContext()).ready


def test_contract_errors_are_invalid_argument(oip_server) -> None:
    request = contract.encode_request(prepared_batch(rows=1), "toto")
    request.inputs[0].shape[2] = 100  # not a multiple of 32, and no longer matches the bytes
    stub = RemoteRunner(RemoteSettings(oip_server.address, token=TOKEN)).stub
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_serve_config_is_a_valid_serve_deploy_file() -> None:
    schema = pytest.importorskip("ray.serve.schema", reason="the `serving` extra")
    import yaml

    path = Path(__file__).resolve().parents[2] / "server/toto_datasource/serving/serve_config.yaml"
    config = schema.ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    app = config.applications[0]
    assert app.import_path == "toto_datasource.serving.ray_app:build_app"
    assert config.grpc_options.grpc_servicer_functions == [
        "toto_datasource._proto.inference.grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server"
    ]
    scaling = app.deployments[0].autoscaling_config
    assert scaling["min_replicas"] == 1 and scaling["max_replicas"] >= 2


def test_tls_with_a_private_ca_and_the_token(serving_engine, tmp_path) -> None:
    """grpcs:// with the engine's self-signed certificate as the CA (there is no skip-verify)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server, port = build_server(
        OIPServicer(serving_engine), "127.0.0.1:0", workers=4, tls=(key.read_bytes(), cert.read_bytes())
    )
    server.start()
    try:
        secure = runner_for(f"grpcs://localhost:{port}", ca_cert=cert.read_text())
        assert probe(secure, RequestContext()).ready
        batch = prepared_batch(rows=1)
        np.testing.assert_allclose(secure(batch), in_process(serving_engine, batch), rtol=0, atol=1e-6)
        untrusted = runner_for(f"grpcs://localhost:{port}", max_rows=8)  # system roots: not trusted
        with pytest.raises(BackendError) as err:
            untrusted(batch)
        assert err.value.status == 503 and f"localhost:{port}" in err.value.message
    finally:
        server.stop(0)


def test_calls_in_flight_follow_the_engine_unless_pinned(oip_server) -> None:
    """The plugin keeps as many calls in flight as the server advertises; TOTO_REMOTE_CONCURRENCY
    overrides it; a server that is down at load gets the default of 4."""
    from toto_datasource.engine.remote.runtime import calls_in_flight

    up = probe(runner_for(oip_server.address), RequestContext())
    assert calls_in_flight(up, ProcessConfig()) == 1
    pinned = ProcessConfig.from_environment({"TOTO_REMOTE_CONCURRENCY": "3"})
    assert calls_in_flight(up, pinned) == 3
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        down = probe(runner_for(f"127.0.0.1:{s.getsockname()[1]}"), RequestContext(), timeout_s=1.0)
    assert not down.ready and calls_in_flight(down, ProcessConfig()) == 4


def test_a_rotated_inference_token_lets_the_old_connection_go(oip_server) -> None:  # type: ignore[no-untyped-def]
    """Saving the data source with a new token builds a model on a new channel; once the old
    settings version's grace is over, the old one is closed: its calls fail at once, no thread stays."""
    import json

    from toto_datasource._proto.pluginv2 import backend_pb2 as pb
    from toto_datasource.engine.registry import ModelRegistry
    from toto_datasource.engine.types import ForecastJob
    from toto_datasource.plugin.servicers import Edge
    from toto_datasource.service import ForecastDataSource

    def context(token: str, updated_ms: int) -> pb.PluginContext:
        settings = pb.DataSourceInstanceSettings(
            uid="remote", jsonData=json.dumps({"inferenceUrl": oip_server.address}).encode(),
            decryptedSecureJsonData={"inferenceToken": token}, lastUpdatedMS=updated_ms)
        return pb.PluginContext(orgId=1, dataSourceInstanceSettings=settings)

    registry = ModelRegistry(ProcessConfig(), warmup=False)
    ds = ForecastDataSource(registry)
    now = [0.0]
    ds.instances.clock = lambda: now[0]
    edge = Edge(ds)
    def inference_threads() -> set[str]:
        return {t.name for t in threading.enumerate() if t.name.startswith("inference-")}

    threads = inference_threads()
    first = edge.instance(context(TOKEN, 1)).valid_settings().model
    old = registry.ensure(first)
    assert old.ready.wait(30) and old.state == "ready", old.error
    job = ForecastJob(np.sin(np.arange(256) / 9.0)[None, :], 16)
    assert old.loaded.forecaster.submit(job).result(30).quantiles.shape == (9, 1, 16)
    rotated = edge.instance(context("rotated-" + TOKEN, 2)).valid_settings().model
    assert rotated != first
    new = registry.ensure(rotated)
    assert new.ready.wait(30)
    forecaster = old.loaded.forecaster
    now[0] += 3600  # past every grace a query in flight may have needed
    edge.instance(context("rotated-" + TOKEN, 2))
    assert [h.settings for h in registry.handles()] == [rotated]
    with pytest.raises(BackendError) as err:
        forecaster.submit(ForecastJob(np.cos(np.arange(256) / 9.0)[None, :], 16)).result(30)
    assert err.value.status == 503
    assert len(inference_threads() - threads) == 1  # the new model's only
    registry.close()
    assert inference_threads() - threads == set()
