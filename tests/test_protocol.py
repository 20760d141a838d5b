"""The plugin as Grafana sees it: handshake, health, QueryData, resources, metrics, shutdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import grpc
import pyarrow as pa
import pytest
from conftest import data_query, plugin_context
from grpc_health.v1 import health_pb2, health_pb2_grpc
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.frames import decode_frame
from toto_datasource.plugin.host import PluginProcess


def test_without_the_magic_cookie_it_explains_and_exits_1() -> None:
    env = {k: v for k, v in os.environ.items() if k != "grafana_plugin_type"}
    proc = subprocess.run(
        [sys.executable, "-m", "toto_datasource"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "toto-datasource serve" in proc.stderr


def test_protocol_version_2_must_be_offered() -> None:
    env = {**os.environ, "grafana_plugin_type": "datasource", "PLUGIN_PROTOCOL_VERSIONS": "1,3"}
    proc = subprocess.run(
        [sys.executable, "-m", "toto_datasource"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "version 2" in proc.stderr


def test_handshake_line_and_grpc_health(plugin: PluginProcess) -> None:
    parts = plugin.handshake_line.rstrip("\n").split("|")
    assert parts[:3] == ["1", "2", "unix"] and parts[4] == "grpc"
    assert os.path.exists(parts[3])
    stub = health_pb2_grpc.HealthStub(plugin.channel)
    assert (
        stub.Check(health_pb2.HealthCheckRequest(service="plugin")).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def test_check_health_reports_model_details(plugin: PluginProcess) -> None:
    health = plugin.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=plugin_context()))
    assert health.status == pb.CheckHealthResponse.OK
    details = json.loads(health.jsonDetails)["model"]
    assert details["parameters"] == 4_144_448
    assert details["device"] == "cpu" and details["dtype"] == "float32"
    assert details["testForecastMs"] > 0
    assert "random-weight" in health.message


def test_check_health_names_an_unloadable_checkpoint(tmp_path, now_ms: int) -> None:
    missing = str(tmp_path / "no-such-checkpoint")
    with PluginProcess(env={"GF_PLUGIN_MODEL": missing}) as p:
        health = p.wait_until_loaded(plugin_context())
        assert health.status == pb.CheckHealthResponse.ERROR
        assert missing in health.message and "does not exist" in health.message
        # queries fail clearly and name the path; the baseline still answers in the same request
        queries = [
            data_query("A", {}, now_ms - 3_600_000, now_ms),
            data_query("B", {"model": "seasonal-naive"}, now_ms - 3_600_000, now_ms),
        ]
        r = p.data.QueryData(pb.QueryDataRequest(pluginContext=plugin_context(), queries=queries))
        assert r.responses["A"].status == 400 and missing in r.responses["A"].error  # the admin's config
        assert r.responses["B"].status == 200
        notices = decode_frame(r.responses["B"].frames[-1]).meta.notices
        assert any("seasonal-naive" in n.text for n in notices)


def _frames(response: pb.DataResponse):
    return [decode_frame(b) for b in response.frames]


def test_query_data_mixed_request(plugin: PluginProcess, now_ms: int) -> None:
    inline = {
        "source": "inline",
        "horizon": 16,
        "series": [
            {
                "name": "req",
                "labels": {"host": "a"},
                "timestamps": [1_700_000_000_000 + i * 60_000 for i in range(300)],
                "values": [float(i % 24) for i in range(300)],
            }
        ],
    }
    queries = [
        data_query(
            "A",
            {"source": "demo", "scenario": "postgres-load", "horizon": "1h"},
            now_ms - 6 * 3_600_000,
            now_ms + 3_600_000,
        ),
        data_query("B", inline, 0, now_ms),
        data_query("C", {"source": "demo", "contextLength": 5}, now_ms - 3_600_000, now_ms),
        data_query(
            "D",
            {"source": "demo", "scenario": "all", "quantiles": [0.2, 0.8], "includeHistory": False},
            now_ms - 3_600_000,
            now_ms + 1_800_000,
        ),
    ]
    response = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=plugin_context(), queries=queries))
    assert set(response.responses) == {"A", "B", "C", "D"}
    a, b, c, d = (response.responses[k] for k in "ABCD")
    assert (a.status, b.status, d.status) == (200, 200, 200)
    assert (
        c.status == 400 and "contextLength" in c.error and "32-8192" in c.error and c.errorSource == "plugin"
    )

    history, forecast = _frames(a)
    for frame in (history, forecast):
        assert frame.ref_id == "A"
        assert frame.meta.type == "timeseries-multi" and frame.meta.type_version == (0, 1)
        time_field = frame.fields[0]
        assert time_field.values.type == pa.timestamp("ns") and not time_field.nullable
    step_ns = 60_000 * 1_000_000
    hist_ts = history.fields[0].values.cast("int64").to_numpy()
    fc_ts = forecast.fields[0].values.cast("int64").to_numpy()
    assert fc_ts[0] == hist_ts[-1] + step_ns  # the forecast continues the history's step exactly
    assert (fc_ts[-1] - hist_ts[-1]) == 60 * step_ns  # 1h at 1m
    assert hist_ts[0] >= (now_ms - 6 * 3_600_000) * 1_000_000  # history clipped to the panel range
    names = [(f.labels or {}).get("quantile") for f in forecast.fields[1:]]
    assert names == ["0.5", "0.1", "0.9"]  # median first: alerting reads the first value field
    p50, p10, p90 = (f.values.to_numpy() for f in forecast.fields[1:])
    assert (p10 <= p50).all() and (p50 <= p90).all()
    assert forecast.fields[1].labels["instance"] == "pg-primary"
    upper = forecast.fields[3].config
    assert upper["custom"]["fillBelowTo"] == forecast.fields[2].config["displayNameFromDS"] == "db_qps p10"
    assert "model=toto:" in forecast.meta.executed_query_string
    assert any("random weights" in n.text for n in forecast.meta.notices)

    inline_frames = _frames(b)
    assert (
        inline_frames[-1].fields[0].values.cast("int64").to_numpy()[0]
        == (1_700_000_000_000 + 300 * 60_000) * 10**6
    )
    assert inline_frames[-1].rows == 16

    d_frames = _frames(d)
    assert len(d_frames) == 5  # five scenarios, forecast frames only
    assert [(f.labels or {}).get("quantile") for f in d_frames[0].fields[1:]] == ["0.5", "0.2", "0.8"]


def test_alert_requests_get_only_the_median(plugin: PluginProcess, now_ms: int) -> None:
    query = data_query("A", {"source": "demo", "scenario": "all", "horizon": "15m"}, now_ms - 600_000, now_ms)
    response = plugin.data.QueryData(
        pb.QueryDataRequest(pluginContext=plugin_context(), queries=[query], headers={"FromAlert": "true"})
    )
    frames = _frames(response.responses["A"])
    assert len(frames) == 5
    seen = set()
    for frame in frames:
        assert len(frame.fields) == 2
        key = (frame.fields[1].name, tuple(sorted(frame.fields[1].labels.items())))
        assert key not in seen
        seen.add(key)


HOSTILE = {
    "malformed": b"{not json",
    "not-object": b"[1,2]",
    "wrong-type": json.dumps({"horizon": {"a": 1}}).encode(),
    "negative-horizon": json.dumps({"horizon": -5}).encode(),
    "huge-horizon": json.dumps({"horizon": 100_000}).encode(),
    "horizon-too-long-for-step": json.dumps({"horizon": "400d", "step": "1m"}).encode(),
    "empty-series": json.dumps({"source": "inline", "series": []}).encode(),
    "unknown-source": json.dumps({"source": "influx"}).encode(),
    "bad-quantile": json.dumps({"quantiles": [0.95]}).encode(),
    "length-mismatch": json.dumps(
        {"source": "inline", "series": [{"timestamps": [1, 2, 3], "values": [1]}]}
    ).encode(),
    "unknown-query-type": json.dumps({"queryType": "backtest"}).encode(),
}


def test_hostile_input_gets_per_query_errors(plugin: PluginProcess, now_ms: int) -> None:
    queries = [data_query(k, v, now_ms - 3_600_000, now_ms) for k, v in HOSTILE.items()]
    queries.append(data_query("ok", {"source": "demo"}, now_ms - 3_600_000, now_ms))
    response = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=plugin_context(), queries=queries))
    for ref_id in HOSTILE:
        r = response.responses[ref_id]
        assert r.status == 400, (ref_id, r.error)
        assert r.error and len(r.error) < 1000
    assert "horizon" in response.responses["huge-horizon"].error
    assert "8192" in response.responses["huge-horizon"].error
    assert "8192 steps allowed" in response.responses["horizon-too-long-for-step"].error
    assert "source" in response.responses["unknown-source"].error
    assert response.responses["ok"].status == 200


def test_a_million_points_are_refused_clearly(plugin: PluginProcess, now_ms: int) -> None:
    n = 1_000_000
    body = json.dumps(
        {"source": "inline", "series": [{"timestamps": list(range(0, n * 1000, 1000)), "values": [1.0] * n}]}
    ).encode()
    queries = [
        data_query("big", body, 0, now_ms),
        data_query("ok", {"source": "demo"}, now_ms - 3_600_000, now_ms),
    ]
    response = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=plugin_context(), queries=queries))
    assert response.responses["big"].status == 400
    error = response.responses["big"].error
    assert error.startswith("series.0.") and "at most 100000 allowed" in error and len(error) < 300
    assert response.responses["ok"].status == 200


def test_invalid_settings_fail_every_query_clearly(plugin: PluginProcess, now_ms: int) -> None:
    settings = pb.DataSourceInstanceSettings(uid="bad", jsonData=b"{oops")
    ctx = pb.PluginContext(dataSourceInstanceSettings=settings)
    response = plugin.data.QueryData(
        pb.QueryDataRequest(
            pluginContext=ctx,
            queries=[
                data_query("A", {}, now_ms - 3_600_000, now_ms),
                data_query("B", {}, now_ms - 3_600_000, now_ms),
            ],
        )
    )
    for r in response.responses.values():
        assert r.status == 400 and "jsonData" in r.error


def test_resources_and_metrics(plugin: PluginProcess, now_ms: int) -> None:
    def call(path: str, method: str = "GET", body: bytes = b""):
        req = pb.CallResourceRequest(
            pluginContext=plugin_context(), path=path, method=method, url=path, body=body
        )
        (resp,) = list(plugin.resource.CallResource(req))
        return resp.code, json.loads(resp.body)

    code, body = call("health")
    assert code == 200 and body["status"] == "ok"
    code, body = call("models")
    assert code == 200 and any(m.get("parameters") == 4_144_448 for m in body["models"])
    preview = {
        "source": "demo",
        "horizon": "1h",
        "range": {"from": now_ms - 3_600_000, "to": now_ms + 3_600_000},
        "intervalMs": 60_000,
    }
    code, body = call("preview", "POST", json.dumps(preview).encode())
    assert code == 200 and body["series"] == 1 and body["stepMs"] == 60_000 and body["horizonSteps"] == 60
    code, body = call("nope")
    assert code == 404 and "available" in body["error"]
    metrics = plugin.diagnostics.CollectMetrics(pb.CollectMetricsRequest()).metrics.prometheus.decode()
    assert "toto_queries_total" in metrics and "toto_batch_rows_bucket" in metrics


def test_logs_are_hclog_json(plugin: PluginProcess) -> None:
    lines = [ln for ln in plugin.log_path.read_text().splitlines() if ln.strip()]  # type: ignore[attr-defined]
    assert lines, "the plugin logged nothing"
    for line in lines:
        entry = json.loads(line)
        assert entry["@level"] in {"trace", "debug", "info", "warn", "error"}
        assert len(entry["@timestamp"].split(".")[1]) == 7 and entry["@timestamp"].endswith("Z")
        assert "@message" in entry


def test_shutdown_ends_the_process_quickly_and_stdout_holds_only_the_handshake(tiny_checkpoint) -> None:
    with PluginProcess(env={"GF_PLUGIN_MODEL": str(tiny_checkpoint)}) as p:
        p.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=plugin_context()))
        os.kill(p.proc.pid, 2)  # SIGINT, as when Grafana's terminal gets Ctrl-C: ignored
        p.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=plugin_context()))
        started = time.monotonic()
        code = p.shutdown(timeout=2.0)
        assert time.monotonic() - started < 2.0 and code == 0
        assert p.proc.stdout.read() == ""  # nothing after the handshake line


def test_grpc_unimplemented_for_streams(plugin: PluginProcess) -> None:
    with pytest.raises(grpc.RpcError) as err:
        list(plugin.data.QueryChunkedData(pb.QueryChunkedDataRequest()))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
