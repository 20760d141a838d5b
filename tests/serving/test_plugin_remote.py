"""The plugin, started as Grafana starts it, with `inferenceUrl` pointing at a plain grpcio OIP
server (fast; no Ray): the remote model runtime end to end through QueryData and CheckHealth.

One plugin process (the session's `plugin`, whose in-process model is the same random 4m
checkpoint the OIP server runs) answers two data sources: one without `inferenceUrl` (in-process)
and one with it (remote), so their frames can be compared value by value.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pyarrow as pa
import pytest
from conftest import data_query
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.frames import decode_frame
from toto_datasource.plugin.host import PluginProcess

from .conftest import PEAKS, TOKEN

INLINE = {
    "source": "inline",
    "horizon": 24,
    "series": [
        {"name": f"s{k}", "labels": {"k": str(k)},
         "timestamps": [1_700_000_000_000 + i * 60_000 for i in range(400)],
         "values": [float((i * (k + 1)) % 37) for i in range(400)]}
        for k in range(5)
    ],
}


# Below toto2's scale floor and huge (tests/serving/conftest.py PEAKS): every engine must answer
# these as in process. Forecast only (no history), so every float field is the model's answer.
MAGNITUDES = {
    "source": "inline",
    "horizon": 24,
    "includeHistory": False,
    "series": [
        {"name": f"peak {peak:g}", "labels": {"peak": f"{peak:g}"},
         "timestamps": [1_700_000_000_000 + i * 60_000 for i in range(400)],
         "values": [peak * (0.5 + 0.5 * ((i * 7) % 37) / 37) for i in range(400)]}
        for peak in PEAKS
    ],
}


def context(json_data: dict, secure: dict | None = None, uid: str = "remote") -> pb.PluginContext:
    settings = pb.DataSourceInstanceSettings(
        uid=uid, name="Toto remote test", jsonData=json.dumps(json_data).encode(),
        decryptedSecureJsonData=secure or {},
    )
    return pb.PluginContext(pluginId="toto-forecast-datasource", dataSourceInstanceSettings=settings)


def remote_context(address: str, token: str = TOKEN, **json_data) -> pb.PluginContext:  # type: ignore[no-untyped-def]
    return context({"inferenceUrl": address, **json_data}, {"inferenceToken": token}, uid=f"remote-{address}")


def local_context() -> pb.PluginContext:
    return context({}, uid="local")


def queries(now_ms: int) -> list[pb.DataQuery]:
    return [
        data_query("A", {"source": "demo", "scenario": "all", "horizon": "30m"},
                   now_ms - 3 * 3_600_000, now_ms),
        data_query("B", INLINE, 0, now_ms),
        data_query("C", MAGNITUDES, 0, now_ms),
    ]


def frames_of(response: pb.DataResponse) -> list:
    assert response.status in (0, 200), response.error
    return [decode_frame(b) for b in response.frames]


def assert_same_frames(remote: pb.QueryDataResponse, local: pb.QueryDataResponse) -> None:
    """Equal to 1e-6 relative, and to 1e-6 of a field's largest value absolute (1e-6 for fields
    beyond 1, so a 1e-8 series is compared on its own scale). Which rows share a model call
    depends on when each query reaches the scheduler (rows of other lengths may join a call,
    left-padded), and float32 sums over another padded length differ in the last bit: 1.9e-6 at
    a value of 18, 1e-7 of it."""
    assert set(remote.responses) == set(local.responses)
    for ref_id in local.responses:
        r_frames, l_frames = frames_of(remote.responses[ref_id]), frames_of(local.responses[ref_id])
        assert [f.name for f in r_frames] == [f.name for f in l_frames]
        for rf, lf in zip(r_frames, l_frames, strict=True):
            assert [(f.name, f.labels) for f in rf.fields] == [(f.name, f.labels) for f in lf.fields]
            for a, b in zip(rf.fields, lf.fields, strict=True):
                if pa.types.is_floating(a.values.type):
                    expected = b.values.to_numpy(zero_copy_only=False)
                    scale = min(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
                    np.testing.assert_allclose(
                        a.values.to_numpy(zero_copy_only=False), expected, rtol=1e-6, atol=1e-6 * scale,
                        err_msg=f"{ref_id} {rf.name} {a.name} {a.labels}",
                    )
                else:
                    assert a.values.equals(b.values)


def loaded_remote(plugin: PluginProcess, address: str, token: str = TOKEN) -> pb.PluginContext:
    """The context of a data source on the engine at `address`, once CheckHealth says it is ready."""
    ctx = remote_context(address, token=token)
    health = plugin.wait_until_loaded(ctx)
    assert health.status == pb.CheckHealthResponse.OK, health.message
    return ctx


def assert_dashboard_and_alert_equal_in_process(
    plugin: PluginProcess, ctx: pb.PluginContext, now_ms: int
) -> list[pb.QueryDataResponse]:
    """Dashboard and alert queries through `ctx` equal the in-process engine's; the remote answers."""
    answers = []
    for headers in ({}, {"FromAlert": "true"}):
        remote = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=ctx, queries=queries(now_ms),
                                                           headers=headers))
        local = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=local_context(),
                                                          queries=queries(now_ms), headers=headers))
        assert_same_frames(remote, local)
        assert_in_data_units(local.responses["C"])
        answers.append(remote)
    return answers


def assert_in_data_units(response: pb.DataResponse) -> None:
    """Query C's forecasts are on each series' scale: ~0.75 of its peak with the random 4m
    checkpoint, where toto2 alone, at its scale floor, forecast the 1e-8 series at up to 5.4e-8
    (what an inference server answered before the plugin and the servers rescaled)."""
    checked = set()
    for frame in frames_of(response):
        for f in frame.fields:
            if pa.types.is_floating(f.values.type) and "peak" in f.labels:
                peak = float(f.labels["peak"])
                largest = float(np.nanmax(np.abs(f.values.to_numpy(zero_copy_only=False))))
                assert peak / 100 < largest < 5 * peak, (f.name, f.labels, largest)
                checked.add(peak)
    assert checked == set(PEAKS), checked


def executed_query(response: pb.QueryDataResponse) -> str:
    return decode_frame(response.responses["A"].frames[-1]).meta.executed_query_string


@pytest.fixture()
def remote_plugin(plugin: PluginProcess, oip_server) -> tuple[PluginProcess, pb.PluginContext]:  # type: ignore[no-untyped-def]
    return plugin, loaded_remote(plugin, oip_server.address)


def test_dashboard_and_alert_queries_equal_the_in_process_engine(remote_plugin, now_ms) -> None:  # type: ignore[no-untyped-def]
    plugin, ctx = remote_plugin
    for remote in assert_dashboard_and_alert_equal_in_process(plugin, ctx, now_ms):
        assert "model=remote:toto@127.0.0.1:" in executed_query(remote)


def test_check_health_reports_the_remote_model(remote_plugin, oip_server) -> None:  # type: ignore[no-untyped-def]
    plugin, ctx = remote_plugin
    health = plugin.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx))
    assert health.status == pb.CheckHealthResponse.OK
    assert health.message.startswith(f"remote model toto at {oip_server.address}: ready, checkpoint ")
    assert "device cpu" in health.message and "random-weight" in health.message
    details = json.loads(health.jsonDetails)["model"]
    assert details["backend"] == "remote" and details["remote"] == oip_server.address
    assert details["parameters"] == 4_144_448 and details["maxRows"] == 8
    assert details["concurrency"] == 1  # what the plain engine advertises (max_concurrency)


def test_deadline_shorter_than_the_engine_gives_a_per_query_504(remote_plugin, oip_server, now_ms) -> None:  # type: ignore[no-untyped-def]
    plugin, ctx = remote_plugin
    oip_server.gate.open.clear()  # the engine holds every call until released
    try:
        slow = data_query("S", {**INLINE, "horizon": 31}, 0, now_ms)  # not answered from the cache
        response = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=ctx, queries=[slow]), timeout=4)
        assert response.responses["S"].status == 504, response.responses["S"].error
        assert "deadline" in response.responses["S"].error
    finally:
        oip_server.gate.open.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_engine_down_gives_503_naming_the_address_and_never_the_token(plugin: PluginProcess, now_ms) -> None:  # type: ignore[no-untyped-def]
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    secret = "do-not-leak-this-token-7f3a"
    ctx = remote_context(address, token=secret)
    health = plugin.wait_until_loaded(ctx)
    assert health.status == pb.CheckHealthResponse.ERROR
    assert address in health.message and "not ready" in health.message
    response = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=ctx, queries=queries(now_ms)))
    for ref_id in ("A", "B"):
        r = response.responses[ref_id]
        assert r.status == 503 and r.errorSource == "downstream", r.error
        assert address in r.error and "unavailable" in r.error
        assert secret not in r.error
    assert secret not in health.message and secret not in health.jsonDetails.decode()
    models = plugin.resource.CallResource(
        pb.CallResourceRequest(pluginContext=ctx, path="models", method="GET")
    )
    assert secret.encode() not in b"".join(m.body for m in models)
    assert secret not in plugin.log_path.read_text()  # type: ignore[attr-defined]


def test_skip_verify_is_a_config_error_pointing_at_the_ca_certificate(plugin: PluginProcess, now_ms) -> None:  # type: ignore[no-untyped-def]
    ctx = remote_context("grpcs://engine.example:443", inferenceTlsSkipVerify=True)
    health = plugin.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx))
    assert health.status == pb.CheckHealthResponse.ERROR
    assert "inferenceTlsSkipVerify" in health.message and "CA certificate" in health.message
    response = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=ctx, queries=queries(now_ms)[:1]))
    assert response.responses["A"].status == 400


def test_a_wrong_token_is_a_clear_downstream_error(plugin: PluginProcess, oip_server, now_ms) -> None:  # type: ignore[no-untyped-def]
    ctx = remote_context(oip_server.address, token="wrong")
    plugin.wait_until_loaded(ctx)
    response = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=ctx, queries=queries(now_ms)[1:]))
    r = response.responses["B"]
    assert r.status == 502 and "rejected the inference token" in r.error

