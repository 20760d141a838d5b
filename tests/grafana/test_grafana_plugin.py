"""`source: grafana` through the plugin started as Grafana starts it, against the Go stand-in for
Grafana's /api/ds/query: dashboard requests (with a signed-in user's ID token) and FromAlert requests
(no user: the data source's allowed targets), every settings and target error as a per-query error
(the others unaffected, no token anywhere), and the chain through the real Prometheus, which must
forecast exactly as `source: prometheus` does. Who may read what: test_grafana_access.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import data_query
from prometheus.prom_testkit import PromEnv
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.frames import decode_frame
from toto_datasource.frames.model import Frame
from toto_datasource.plugin.host import PluginProcess

from . import standin

MINUTE = 60_000
END = 1_700_000_040_000  # a past minute mark: history ends here, so no clock is involved
FROM, TO = END - 3 * 3_600_000, END
CONTEXT = 64
TARGET = {"uid": "standin", "type": standin.STANDIN_TYPE}
WRONG_TOKEN = "glsa_wrong-s3cret-token"


def context(
    url: str,
    token: str | None = standin.TOKEN,
    uid: str = "grafana-src",
    org_id: int = 1,
    **json_data: object,
) -> pb.PluginContext:
    """What Grafana sends: the org, GF_APP_URL (root_url, ending with a slash) in grafanaConfig, the
    token decrypted, the rest in jsonData."""
    secure = {"grafanaToken": token} if token is not None else {}
    settings = pb.DataSourceInstanceSettings(
        uid=uid,
        name="Toto via Grafana",
        jsonData=json.dumps(json_data).encode(),
        decryptedSecureJsonData=secure,
        lastUpdatedMS=1,
    )
    return pb.PluginContext(
        orgId=org_id,
        pluginId="toto-forecast-datasource",
        dataSourceInstanceSettings=settings,
        grafanaConfig={"GF_APP_URL": url + "/"},
    )


def grafana_query(scenario: str, *, target: dict | None = None, **extra: object) -> dict:
    return {
        "source": "grafana",
        "sourceDatasource": target or TARGET,
        "sourceQuery": {"scenario": scenario},
        "model": "seasonal-naive",
        "step": "1m",
        "contextLength": CONTEXT,
        "horizon": "5m",
        **extra,
    }


def inline_query(values: dict[str, np.ndarray], labels: dict[str, dict[str, str]], **extra: object) -> dict:
    times = (END - MINUTE * np.arange(CONTEXT)[::-1]).tolist()
    series = [
        {"name": n, "labels": labels[n], "timestamps": times, "values": v.tolist()} for n, v in values.items()
    ]
    return {"source": "inline", "series": series, "model": "seasonal-naive", "horizon": "5m", **extra}


def query(
    plugin: PluginProcess,
    ctx: pb.PluginContext,
    bodies: dict[str, dict],
    alert: bool = False,
    id_token: str = "",
) -> dict[str, pb.DataResponse]:
    """QueryData as Grafana sends it: a user's ID token in the http_X-Grafana-Id header, FromAlert
    for an alert rule."""
    headers = {"FromAlert": "true"} if alert else {}
    if id_token:
        headers["http_X-Grafana-Id"] = id_token
    request = pb.QueryDataRequest(
        pluginContext=ctx,
        headers=headers,
        queries=[data_query(ref, body, FROM, TO) for ref, body in bodies.items()],
    )
    return dict(plugin.data.QueryData(request, timeout=120).responses)


def frames(response: pb.DataResponse) -> list[Frame]:
    assert response.status == 200 and not response.error, response.error
    return [decode_frame(b) for b in response.frames]


def numbers(frame: Frame) -> dict[str, list[float]]:
    return {
        f"{f.name}{json.dumps(f.labels or {}, sort_keys=True)}": f.values.to_pylist()
        for f in frame.fields
        if f.tstype != "time"
    }


def epoch_ms(frame: Frame) -> list[int]:
    return (frame.fields[0].values.cast("int64").to_numpy() // 1_000_000).tolist()


RAMPS = {
    '{series="s0"}': np.arange(CONTEXT, dtype=float),
    '{series="s1"}': 1000 + np.arange(CONTEXT, dtype=float),
}
RAMP_LABELS = {'{series="s0"}': {"series": "s0"}, '{series="s1"}': {"series": "s1"}}


def test_dashboard_forecast_equals_the_same_points_given_inline(
    plugin: PluginProcess, grafana: standin.Standin
) -> None:
    """A panel's request: the stand-in's two ramps keep their legend names and labels, land on the
    grid unchanged, and forecast exactly as the same points given inline; a long-format (SQL) and a
    jittered (Loki) answer in the same request decode with labels and land on the minute grid."""
    ctx = context(grafana.url)
    out = query(
        plugin,
        ctx,
        {
            "A": grafana_query("multi", includeHistory=True),
            "I": inline_query(RAMPS, RAMP_LABELS, includeHistory=True),
            "L": grafana_query("long"),
            "J": grafana_query("jitter", includeHistory=True),
        },
        id_token=grafana.id_token("user:u-alice", role="Viewer"),  # alice may query the stand-in
    )
    got, want = frames(out["A"]), frames(out["I"])
    assert (
        [f.name for f in got]
        == [f.name for f in want]
        == ['{series="s0"}', '{series="s0"} forecast', '{series="s1"}', '{series="s1"} forecast']
    )
    for g, w in zip(got, want, strict=True):
        assert epoch_ms(g) == epoch_ms(w) and numbers(g) == numbers(w)
    history = got[0]
    assert epoch_ms(history) == (END - MINUTE * np.arange(CONTEXT)[::-1]).tolist()
    assert numbers(history) == {'{series="s0"}{"series": "s0"}': list(np.arange(CONTEXT, dtype=float))}
    assert (
        "Grafana data source standin (toto-standin) over 1h 3m at 1m: scenario multi"
        in history.meta.executed_query_string
    )
    assert not any("grid" in n.text for n in history.meta.notices)  # on the grid: nothing to report

    long = [f for f in frames(out["L"]) if f.name.endswith("forecast")]
    assert [f.name for f in long] == [f'{m} {{host="{h}"}} forecast' for h in "ab" for m in ("cpu", "mem")]
    assert long[0].fields[1].labels == {"host": "a", "quantile": "0.5"}

    jitter = frames(out["J"])[0]
    assert epoch_ms(jitter) == (END - MINUTE * np.arange(CONTEXT)[::-1]).tolist()
    notices = " ".join(n.text for n in jitter.meta.notices)
    assert "off the 1m grid" in notices and "same step" not in notices  # moved, none merged
    values = jitter.fields[1].values.to_pylist()
    assert np.isfinite(values).sum() >= CONTEXT - 1  # at most the first point jittered out of the window


def test_alert_requests_forecast_and_threshold(plugin: PluginProcess, grafana: standin.Standin) -> None:
    """FromAlert: no user, so only an allowed target; the service-account token does the querying.
    Forecast frames carry only the median; threshold answers numeric-wide time_to_breach per series,
    equal to the inline answer."""
    ctx = context(grafana.url, uid="grafana-alerts", allowedTargets=[TARGET["uid"]])
    threshold = {"queryType": "threshold", "threshold": 66.5, "direction": "above"}
    out = query(
        plugin,
        ctx,
        {
            "F": grafana_query("multi"),
            "T": grafana_query("multi", **threshold),
            "U": inline_query(RAMPS, RAMP_LABELS, **threshold),
        },
        alert=True,
    )
    forecast = frames(out["F"])
    assert [f.name for f in forecast] == ['{series="s0"} forecast', '{series="s1"} forecast']
    for fr, name in zip(forecast, ("s0", "s1"), strict=True):
        assert [f.labels for f in fr.fields[1:]] == [{"series": name, "quantile": "0.5"}]
    (t,) = frames(out["T"])
    (u,) = frames(out["U"])
    assert t.meta.type == "numeric-wide" and numbers(t) == numbers(u)
    breach = {
        json.dumps(f.labels, sort_keys=True): f.values.to_pylist()[0]
        for f in t.fields
        if f.name == "time_to_breach"
    }
    # s0 ramps 0..63 by 1 a minute: the median (64, 65, 66, 67, ...) passes 66.5 at the fourth
    # forecast minute; s1 (1000 and up) at the first.
    assert breach['{"series": "s0"}'] == 240.0 and breach['{"series": "s1"}'] == 60.0


def preview(
    plugin: PluginProcess, ctx: pb.PluginContext, body: dict, id_token: str = ""
) -> pb.CallResourceResponse:
    """The editor's POST preview, with the signed-in user's ID token as Grafana forwards it."""
    headers = {"X-Grafana-Id": pb.StringList(values=[id_token])} if id_token else {}
    raw = json.dumps({**body, "range": {"from": FROM, "to": TO}}).encode()
    (resp,) = plugin.resource.CallResource(
        pb.CallResourceRequest(pluginContext=ctx, path="preview", method="POST", body=raw, headers=headers),
        timeout=60,
    )
    return resp


def test_preview_and_health(plugin: PluginProcess, grafana: standin.Standin) -> None:
    ctx = context(grafana.url)
    resp = preview(plugin, ctx, grafana_query("several"), grafana.id_token("user:u-alice", role="Editor"))
    assert resp.code == 200, resp.body
    assert json.loads(resp.body)["series"] == 3
    health = plugin.diagnostics.CheckHealth(pb.CheckHealthRequest(pluginContext=ctx), timeout=60)
    details = json.loads(health.jsonDetails)["grafana"]
    assert details["ok"] and details["version"] == standin.VERSION
    assert f"Grafana {standin.VERSION} at {grafana.url} reachable, token accepted" in health.message
    bad = plugin.diagnostics.CheckHealth(
        pb.CheckHealthRequest(pluginContext=context(grafana.url, WRONG_TOKEN))
    )
    assert bad.status == pb.CheckHealthResponse.ERROR and "rejected the token (401)" in bad.message


def _error(response: pb.DataResponse) -> tuple[int, str, str]:
    assert response.error, "expected an error"
    return response.status, response.error, response.errorSource


@pytest.mark.parametrize(
    ("case", "settings", "body", "status", "words"),
    [
        (
            "token missing",
            {"token": None, "grafanaUrl": "{url}"},
            grafana_query("multi"),
            400,
            "needs a Grafana service-account token",
        ),
        ("token invalid", {"token": WRONG_TOKEN}, grafana_query("multi"), 401, "rejected the token (401)"),
        (
            "unreachable",
            {"grafanaUrl": "http://127.0.0.1:9"},
            grafana_query("multi"),
            502,
            "cannot reach Grafana",
        ),
        (
            "slow",
            {"timeoutSeconds": 1},
            grafana_query("slow", sourceQuery={"scenario": "slow", "delayMs": 5_000}),
            504,
            "did not answer within 1s (timeoutSeconds)",
        ),
        (
            "too large",
            {"grafanaMaxResponseMB": 1},
            grafana_query("huge", sourceQuery={"scenario": "huge", "series": 3000}),
            400,
            "larger than the 1 MiB limit (grafanaMaxResponseMB",
        ),
    ],
    ids=["token-missing", "token-invalid", "unreachable", "slow", "too-large"],
)
def test_settings_errors_are_per_query(
    plugin: PluginProcess,
    grafana: standin.Standin,
    case: str,
    settings: dict,
    body: dict,
    status: int,
    words: str,
) -> None:
    """Each failure is its query's error with a status and what to fix; an inline query of the same
    request is answered; no token in any message. (A request without a user, reading an allowed
    target: the service-account token's own failures come first.)"""
    opts = {k: (v.format(url=grafana.url) if isinstance(v, str) else v) for k, v in settings.items()}
    token = opts.pop("token", standin.TOKEN)
    ctx = context(grafana.url, token, uid=f"err-{case}", allowedTargets=[TARGET["uid"]], **opts)
    out = query(plugin, ctx, {"A": body, "I": inline_query(RAMPS, RAMP_LABELS)})
    got_status, message, _ = _error(out["A"])
    assert got_status == status and words in message, message
    assert standin.TOKEN not in message and WRONG_TOKEN not in message
    assert len(frames(out["I"])) == 4  # two series, history and forecast


def test_target_errors_are_per_query(plugin: PluginProcess, grafana: standin.Standin) -> None:
    """In one request of a user who may query every data source: the target's own error passed on
    (downstream), a data source the service account may not query and a missing one, numeric and
    table answers, this plugin as its own target; the good query is answered."""
    ctx = context(grafana.url)
    out = query(
        plugin,
        ctx,
        {
            "OK": grafana_query("multi"),
            "E": grafana_query("error"),
            "F": grafana_query("multi", target={"uid": standin.FORBIDDEN_UID, "type": "loki"}),
            "M": grafana_query("multi", target={"uid": standin.MISSING_UID, "type": "loki"}),
            "N": grafana_query("numeric"),
            "T": grafana_query("table"),
            "R": grafana_query("multi", target={"uid": "me", "type": "toto-forecast-datasource"}),
        },
        id_token=grafana.id_token("user:u-admin", role="Admin"),  # datasources:* in the stand-in
    )
    assert len(frames(out["OK"])) == 4
    status, message, source = _error(out["E"])
    assert (status, source) == (400, "downstream") and 'syntax error: unexpected "}"' in message
    assert "data source standin (toto-standin) returned an error" in message
    status, message, _ = _error(out["F"])
    assert status == 403 and f"cannot query data source {standin.FORBIDDEN_UID} (loki) (403)" in message
    assert _error(out["M"])[0] == 400 and "pick the data source again" in _error(out["M"])[1]
    for ref, what in (("N", "numeric-multi frame"), ("T", "a table")):
        status, message, _ = _error(out[ref])
        assert status == 400 and what in message and "needs a time-series query" in message, message
    status, message, _ = _error(out["R"])
    assert status == 400 and message.startswith("sourceDatasource:")


def test_no_token_in_the_plugin_log(plugin: PluginProcess) -> None:
    """After every test above: neither the accepted nor the rejected token was ever logged."""
    log_path = getattr(plugin, "log_path", None)
    assert log_path is not None
    text = log_path.read_text()
    assert standin.TOKEN not in text and WRONG_TOKEN not in text


def test_prometheus_through_grafana_forecasts_as_prometheus(
    plugin: PluginProcess, prom: PromEnv, grafana_prom: standin.Standin
) -> None:
    """One data source with both sources: the same expression through the stand-in (shaped as Grafana's
    Prometheus data source shapes it) and directly gives the same names, history and Toto forecast."""
    end_ms = prom.data.end_s * 1000
    ctx = context(grafana_prom.url, uid="grafana-chain", prometheusUrl=prom.url)
    expr = 'toto_test_load{job="app"}'
    common = {"step": "1m", "contextLength": 256, "horizon": "30m", "includeHistory": True}
    request = pb.QueryDataRequest(
        pluginContext=ctx,
        headers={"http_X-Grafana-Id": grafana_prom.id_token("user:u-alice", role="Viewer")},  # alice: prom
        queries=[
            data_query("P", {"source": "prometheus", "expr": expr, **common}, end_ms - 3 * 3_600_000, end_ms),
            data_query(
                "G",
                {
                    "source": "grafana",
                    "sourceDatasource": {"uid": "prom", "type": "prometheus"},
                    "sourceQuery": {"expr": expr},
                    **common,
                },
                end_ms - 3 * 3_600_000,
                end_ms,
            ),
        ],
    )
    out = plugin.data.QueryData(request, timeout=300).responses
    direct, via = frames(out["P"]), frames(out["G"])
    assert len(direct) == 6 and [f.name for f in via] == [f.name for f in direct]
    for d, v in zip(direct, via, strict=True):
        assert epoch_ms(d) == epoch_ms(v)
        assert [f.labels for f in d.fields] == [f.labels for f in v.fields]
        got, want = numbers(v), numbers(d)
        assert list(got) == list(want)
        np.testing.assert_allclose(np.array(list(got.values())), np.array(list(want.values())), rtol=1e-6)
