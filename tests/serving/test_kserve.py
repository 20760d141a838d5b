"""The remote model runtime against a real KServe 0.21 Python ModelServer: the Toto KServe model
(serving/kserve_model.py) in its own venv (var/kserve-venv, tests/serving/kserve_venv.py, built
once per clean machine, ~2 min), in a loopback-only network namespace (kserve_server.py), and
the plugin — started as Grafana starts it — with `inferenceUrl` pointing at it.

Added CI time once the venv exists: the server's start (~25 s on 2 cores: imports, model load,
warm-up) plus a few forecasts. Never skipped by default (CI runs as root): without network
namespaces it FAILS saying so. TOTO_SKIP_KSERVE_TEST=1 skips it explicitly (no root, or no
PyPI to build the venv from).
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

from . import kserve_venv, netns
from .conftest import assert_in_data_units, magnitudes_batch, prepared_batch
from .kserve_server import KServeServer
from .test_oip_server import in_process
from .test_plugin_remote import assert_dashboard_and_alert_equal_in_process, executed_query, loaded_remote

if os.environ.get("TOTO_SKIP_KSERVE_TEST") == "1":
    pytest.skip("TOTO_SKIP_KSERVE_TEST=1: the KServe test was skipped on request", allow_module_level=True)


@pytest.fixture(scope="module")
def kserve(tiny_checkpoint, tmp_path_factory) -> Iterator[KServeServer]:  # type: ignore[no-untyped-def]
    if why := netns.available():
        pytest.fail(f"{why}: this test runs KServe in a loopback-only network namespace (run as root, "
                    "as CI does; TOTO_SKIP_KSERVE_TEST=1 skips it explicitly)", pytrace=False)
    started = time.perf_counter()
    python = kserve_venv.ensure()
    venv_s = time.perf_counter() - started
    log = tmp_path_factory.mktemp("kserve") / "server.log"
    with KServeServer(python, str(tiny_checkpoint.resolve()), log) as server:
        assert server.interfaces() == ["lo"]  # KServe listens on 0.0.0.0 / [::] inside: loopback only
        print(f"\nKServe venv {venv_s:.0f} s, server {server.timings}")
        yield server


@pytest.fixture(scope="module")
def kserve_plugin(plugin, kserve):  # type: ignore[no-untyped-def]
    return plugin, loaded_remote(plugin, kserve.address, token="")  # KServe has no auth of its own


def test_plugin_on_kserve_equals_in_process_and_health_reports_it(kserve_plugin, kserve, now_ms) -> None:  # type: ignore[no-untyped-def]
    plugin, ctx = kserve_plugin
    health = plugin.diagnostics.CheckHealth(plugin_pb.CheckHealthRequest(pluginContext=ctx))
    assert health.status == plugin_pb.CheckHealthResponse.OK
    # KServe's ModelMetadata carries no properties: the checkpoint is not advertised.
    assert health.message == f"remote model toto at {kserve.address}: ready, checkpoint unknown", (
        health.message)
    details = json.loads(health.jsonDetails)["model"]
    assert details["backend"] == "remote" and details["remote"] == kserve.address
    assert details["engineModel"] == "toto" and details["concurrency"] == 4  # the plugin's default
    for remote in assert_dashboard_and_alert_equal_in_process(plugin, ctx, now_ms):
        assert f"model=remote:toto@{kserve.address}" in executed_query(remote)


def test_kserve_answers_the_contract_exactly_and_rejects_what_breaks_it(kserve, serving_engine) -> None:  # type: ignore[no-untyped-def]
    runner = RemoteRunner(RemoteSettings(kserve.address))
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
        with pytest.raises(grpc.RpcError) as err:
            runner.stub.ModelInfer(bad, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert "parameter 'horizon' is required" in err.value.details()
        meta = runner.stub.ModelMetadata(pb.ModelMetadataRequest(name="toto"), timeout=10)
        outputs = [(t.name, t.datatype, list(t.shape)) for t in meta.outputs]
        assert outputs == [("quantiles", "FP32", [9, -1, -1, -1])]
    finally:
        runner.close()
