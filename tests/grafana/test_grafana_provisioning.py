"""The provisioned alert rule on a Loki query through `source: grafana` is a valid query and evaluates
as an alert query: the rule's own model, its target swapped for the stand-in's jittered (Loki-like)
answer, gives one time_to_breach per series that the rule's threshold compares."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import run_queries
from toto_datasource.core.settings import RawSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.service import DataQueryInput, ForecastDataSource

from . import standin

RULES = (
    Path(__file__).resolve().parents[2]
    / "grafana-plugin/provisioning/alerting/toto-forecast-any-datasource.yaml"
)
END = 1_700_000_040_000


def test_loki_rule_through_source_grafana_evaluates(grafana: standin.Standin) -> None:
    (rule,) = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    by_ref = {d["refId"]: d for d in rule["data"]}
    model = by_ref["A"]["model"]
    assert model["source"] == "grafana" and model["sourceDatasource"]["type"] == "loki"
    assert "rate({" in model["sourceQuery"]["expr"] and model["queryType"] == "threshold"
    (limit,) = by_ref[rule["condition"]]["model"]["conditions"][0]["evaluator"]["params"]

    ds = ForecastDataSource(ModelRegistry(warmup=False))
    settings = ds.parse_settings(  # an alert has no user: the admin allowed the stand-in for alert rules
        RawSettings(json_data={"allowedTargets": ["standin"]}, secure={"grafanaToken": standin.TOKEN},
                    grafana_app_url=grafana.url)
    )
    as_is = DataQueryInput("A", "threshold", json.dumps(model).encode(), END - 3_600_000, END, 60_000, 43200)
    assert ds.parse(as_is, settings).source.source_query["legendFormat"] == "{{service}}"  # valid as written

    local = {
        **model,
        "sourceDatasource": {"uid": "standin", "type": standin.STANDIN_TYPE},
        "sourceQuery": {"scenario": "jitter"},
        "model": "seasonal-naive",
        "contextLength": 120,
    }
    query = DataQueryInput("A", "threshold", json.dumps(local).encode(), END - 3_600_000, END, 60_000, 43200)
    try:
        result = run_queries(ds, settings, [query], alert=True)["A"]
    finally:
        ds.close()
    assert result.error is None, result.error
    (frame,) = result.frames
    assert frame.meta.type == "numeric-wide" and [f.name for f in frame.fields] == ["time_to_breach"]
    assert frame.fields[0].labels == {"series": "jitter"}
    # the jittered ramp ends at 119, above the threshold of 50: the breach is at the first forecast step
    assert frame.fields[0].values.to_pylist() == [60.0] and limit > 60.0
