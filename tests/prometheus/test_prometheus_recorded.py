"""The provisioned recording rule (grafana-plugin/provisioning/alerting/toto-forecast-recording.yaml)
evaluated the way Grafana evaluates it: the rule's query, as written except for the metric (the
test Prometheus has toto_test_load, not db_qps), sent over gRPC to the plugin started as Grafana
starts it, with the headers of an alert/recording evaluation and the rule's relative range ending
at the evaluation time t. Grafana writes one sample per number field: the answer must be one
numeric-wide frame with one value per series, lead time and quantile, label sets unique without
field names, and each value the forecast panel's value at t + leadTime.

The example alert and dashboard compare the metric with `<record.metric>{ml_lead_time=L} offset L`:
their PromQL must parse (promtool) and name what the rule records.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import data_query, plugin_context
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.frames import Frame, decode_frame
from toto_datasource.frames.recorded import lead_label
from toto_datasource.plugin.host import PluginProcess
from toto_datasource.query.durations import parse_duration_ms

from .prom_testkit import PromEnv

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "grafana-plugin" / "provisioning"
RULES = PROVISIONING / "alerting" / "toto-forecast-recording.yaml"
DASHBOARD = PROVISIONING / "dashboards" / "toto-forecast-accuracy.json"
EXPR = 'toto_test_load{job="app"}'
ALERT_HEADERS = {"FromAlert": "true", "X-Cache-Skip": "true", "X-Rule-Uid": "toto-db-qps-predicted",
                 "X-Grafana-Org-Id": "1"}


def groups() -> dict[str, list[dict[str, Any]]]:
    return {g["name"]: g["rules"] for g in yaml.safe_load(RULES.read_text())["groups"]}


def recording_rule() -> dict[str, Any]:
    (rule,) = groups()["toto-forecast-recorded"]
    return rule


def query_frames(plugin: PluginProcess, ctx: pb.PluginContext, model: dict[str, Any], from_ms: int,
                 to_ms: int, headers: dict[str, str]) -> list[Frame]:
    request = pb.QueryDataRequest(pluginContext=ctx, headers=headers,
                                  queries=[data_query("A", model, from_ms, to_ms, model["intervalMs"])])
    answer = plugin.data.QueryData(request, timeout=300).responses["A"]
    assert answer.status == 200 and not answer.error, answer.error
    return [decode_frame(raw) for raw in answer.frames]


def test_the_provisioned_recording_rule_gives_one_value_per_series_and_quantile(
        plugin: PluginProcess, prom: PromEnv) -> None:
    rule = recording_rule()
    (query,) = rule["data"]  # no Reduce or other expression: the rule records the query itself
    assert rule["record"]["from"] == query["refId"] == query["model"]["refId"]
    assert rule["record"]["metric"].endswith(":predicted") and "condition" not in rule
    model = {**query["model"], "expr": EXPR}
    assert model["queryType"] == "recorded" and model["source"] == "prometheus"
    lead_ms = [parse_duration_ms(x) for x in model["leadTime"]]

    # Grafana resolves relativeTimeRange {from: 600, to: 0} at the evaluation time t.
    t = prom.data.end_s * 1000
    from_ms = t - query["relativeTimeRange"]["from"] * 1000
    ctx = plugin_context({"prometheusUrl": prom.url}, uid="recorded-rule")
    (frame,) = query_frames(plugin, ctx, model, from_ms, t, ALERT_HEADERS)
    assert frame.meta is not None and (frame.meta.type, frame.meta.type_version) == ("numeric-wide", (0, 1))
    assert frame.meta.custom["evaluatedAtMs"] == t
    label_sets = [tuple(sorted((f.labels or {}).items())) for f in frame.fields]
    assert len(set(label_sets)) == len(label_sets) == 3 * len(lead_ms) * 3  # series × lead times × quantiles
    got: dict[tuple[str, str, str], float] = {}
    for f in frame.fields:
        assert len(f) == 1 and f.values.null_count == 0 and f.labels is not None
        assert {"env", "instance", "job"} <= f.labels.keys() and "__name__" not in f.labels
        key = (f.labels["instance"], f.labels["ml_forecast"], f.labels["ml_lead_time"])
        got[key] = f.values.to_pylist()[0]

    # A dashboard asking the same gets the same numbers.
    (panel,) = query_frames(plugin, ctx, model, from_ms, t, {})
    assert {tuple(sorted(f.labels.items())): f.values.to_pylist()[0] for f in panel.fields if f.labels} == {
        key: f.values.to_pylist()[0] for key, f in zip(label_sets, frame.fields, strict=True)}

    # Each value is the forecast for t + leadTime: the forecast query's value at that moment.
    forecast_model = {**model, "queryType": "forecast", "horizon": "1h", "includeHistory": False}
    forecast_model.pop("leadTime")
    forecasts = query_frames(plugin, ctx, forecast_model, from_ms, t, {})
    edges = {"yhat": "0.5", "yhat_lower": "0.1", "yhat_upper": "0.9"}
    for f in forecasts:
        times = f.fields[0].values.cast("int64").to_numpy() // 1_000_000
        by_quantile = {v.labels["quantile"]: v.values.to_numpy(zero_copy_only=False) for v in f.fields[1:]}
        instance = f.fields[1].labels["instance"]
        for ms in lead_ms:
            (at,) = np.flatnonzero(times == t + ms)
            for kind, q in edges.items():
                assert got[(instance, kind, lead_label(ms))] == pytest.approx(by_quantile[q][at], rel=1e-5)


def accuracy_promql() -> list[str]:
    (alert,) = groups()["toto-forecast-accuracy"]
    exprs = [d["model"]["expr"] for d in alert["data"] if d["datasourceUid"] != "__expr__"]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return exprs + [t["expr"] for p in panels for t in p["targets"]]


def test_the_accuracy_alert_and_panel_compare_what_the_rule_records(prom_bins: tuple[str, str],
                                                                    tmp_path: Path) -> None:
    record = recording_rule()["record"]["metric"]
    leads = {lead_label(parse_duration_ms(x)) for x in recording_rule()["data"][0]["model"]["leadTime"]}
    exprs = [e.replace("$instance", "pg-primary") for e in accuracy_promql()]
    pattern = re.escape(record) + r'\{[^}]*ml_lead_time="([^"]+)"[^}]*\} offset (\w+)'
    compared = re.findall(pattern, " ".join(exprs))
    assert compared and all(lead == offset and lead in leads for lead, offset in compared)
    assert any(lead == "1h" for lead, _ in compared)

    _, promtool = prom_bins
    rules = tmp_path / "check.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": [
        {"record": f"check:expr{i}", "expr": e} for i, e in enumerate(exprs)]}]}))
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
