"""The remote model runtime against a real NVIDIA Triton: PyTriton's `tritonserver` with the Toto
model (serving/triton_model.py) in its own venv (var/triton-venv, tests/serving/triton_venv.py,
built once per clean machine, ~40 s), on 127.0.0.1 (triton_server.py), and the plugin — started
as Grafana starts it — with `inferenceUrl` pointing at it.

Added CI time once the venv exists (2 shared cores): the server's start (~10 s: imports, model
load and warm-up, Triton and its 4 Python-backend stubs), a few forecasts, and its stop (~10 s:
Triton takes ~8 s to unload a Python-backend model). Never skipped by
default: a missing prerequisite (no shared libpython, no PyPI to build the venv from, Triton
failing to start) FAILS saying what. TOTO_SKIP_TRITON_TEST=1 skips it explicitly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from toto_datasource._proto.inference import grpc_predict_v2_pb2 as pb
from toto_datasource._proto.pluginv2 import backend_pb2 as plugin_pb
from toto_datasource.engine.remote import RemoteRunner, RemoteSettings
from toto_datasource.engine.remote.contract import encode_request

from . import triton_venv
from .conftest import assert_in_data_units, magnitudes_batch, prepared_batch
from .test_oip_server import in_process
from .test_plugin_remote import assert_dashboard_and_alert_equal_in_process, executed_query, loaded_remote
from .triton_server import TritonServer

if os.environ.get("TOTO_SKIP_TRITON_TEST") == "1":
    pytest.skip("TOTO_SKIP_TRITON_TEST=1: the Triton test was skipped on request", allow_module_level=True)


@pytest.fixture(scope="module")
def triton(tiny_checkpoint, tmp_path_factory) -> Iterator[TritonServer]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        triton_venv.libpython_dir()
        python = triton_venv.ensure()
    except RuntimeError as exc:
        pytest.fail(f"cannot set up Triton (TOTO_SKIP_TRITON_TEST=1 skips this test explicitly): {exc}",
                    pytrace=False)
    venv_s = time.perf_counter() - started
    with TritonServer(python, str(tiny_checkpoint.resolve()), tmp_path_factory.mktemp("triton")) as server:
        listening = server.listening()
        loopback = ("127.0.0.1", "[::ffff:127.0.0.1]")  # Triton binds what it is told: nothing beyond
        assert listening and all(a.rsplit(":", 1)[0] in loopback for a in listening), listening
        print(f"\nTriton venv {venv_s:.0f} s, server {server.timings}, listening on {listening}")
        yield server
    assert not server.pids(), f"Triton processes left after stop: {server.pids()}"


@pytest.fixture(scope="module")
def triton_plugin(plugin, triton):  # type: ignore[no-untyped-def]
    return plugin, loaded_remote(plugin, triton.address, token="")


def test_plugin_on_triton_equals_in_process_and_health_reports_it(triton_plugin, triton, now_ms) -> None:  # type: ignore[no-untyped-def]
    plugin, ctx = triton_plugin
    health = plugin.diagnostics.CheckHealth(plugin_pb.CheckHealthRequest(pluginContext=ctx))
    assert health.status == plugin_pb.CheckHealthResponse.OK
    # Triton's ModelMetadata carries no custom properties: the checkpoint is not advertised.
    assert health.message == f"remote model toto at {triton.address}: ready, checkpoint unknown", (
        health.message)
    details = json.loads(health.jsonDetails)["model"]
    assert details["backend"] == "remote" and details["remote"] == triton.address
    assert details["engineModel"] == "toto" and details["concurrency"] == 4  # the plugin's default
    for remote in assert_dashboard_and_alert_equal_in_process(plugin, ctx, now_ms):
        assert f"model=remote:toto@{triton.address}" in executed_query(remote)


def test_triton_answers_the_contract_exactly_and_rejects_what_breaks_it(triton, serving_engine) -> None:  # type: ignore[no-untyped-def]
    runner = RemoteRunner(RemoteSettings(triton.address))
    try:
        batch = prepared_batch(rows=6, length=256, horizon=40, seed=3)  # gaps and left padding
        # One request, one model call of the same shape as in-process: equal bit for bit.
        np.testing.assert_array_equal(runner(batch), in_process(serving_engine, batch))
        # Rows below toto2's scale floor and a huge one, sent raw: the engine rescales them as in process.
        tiny_and_huge = magnitudes_batch()
        expected = in_process(serving_engine, tiny_and_huge)
        np.testing.assert_array_equal(runner(tiny_and_huge), expected)
        assert_in_data_units(expected)
        bad = encode_request(prepared_batch(rows=1, length=256), "toto")
        del bad.parameters["horizon"]
        with pytest.raises(grpc.RpcError) as err:  # our check, raised in the model: Triton says INTERNAL
            runner.stub.ModelInfer(bad, timeout=30)
        assert err.value.code() == grpc.StatusCode.INTERNAL, err.value.details()
        assert "parameter 'horizon' is required" in err.value.details()
        bad = encode_request(prepared_batch(rows=1, length=256), "toto")
        bad.inputs[2].datatype = "INT32"  # series_ids: Triton's own check against the bound tensors
        with pytest.raises(grpc.RpcError) as err:
            runner.stub.ModelInfer(bad, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        meta = runner.stub.ModelMetadata(pb.ModelMetadataRequest(name="toto"), timeout=10)
        assert not meta.properties  # what the plugin would read max_rows / max_concurrency from
        tensors = [(t.name, t.datatype, list(t.shape)) for t in (*meta.inputs, *meta.outputs)]
        assert tensors == [("target", "FP32", [-1, -1, -1]), ("target_mask", "BOOL", [-1, -1, -1]),
                           ("series_ids", "INT64", [-1, -1]), ("quantiles", "FP32", [9, -1, -1, -1])]
    finally:
        runner.close()
