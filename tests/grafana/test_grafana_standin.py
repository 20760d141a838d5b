"""Decoder and client against frames the Go SDK marshals (the stand-in), and one chain through the
stand-in to the real Prometheus compared with querying Prometheus directly."""

from __future__ import annotations

import time

import numpy as np
import pytest
from prometheus import prom_testkit
from toto_datasource.core.errors import BackendError
from toto_datasource.core.request import RequestContext
from toto_datasource.sources.grafana.client import GrafanaClient
from toto_datasource.sources.prometheus import PrometheusSource
from toto_datasource.sources.prometheus.settings import PrometheusSettings

from . import standin

FROM, TO, STEP = 1_700_000_040_000, 1_700_000_040_000 + 9 * 60_000, 60_000  # ten minute marks
TIMES = FROM + STEP * np.arange(10)
DS = {"uid": "standin", "type": standin.STANDIN_TYPE}


def fetch(url: str, scenario: str, token: str = standin.TOKEN, ds: dict | None = None, **kw: object):
    timeout = float(kw.pop("timeout_s", 10.0))
    limit = int(kw.pop("limit", 64 << 20))
    client = GrafanaClient(url, token, timeout_s=timeout, max_response_bytes=limit)
    try:
        return client.query(ds or DS, {"scenario": scenario, **kw}, "A", FROM, TO, STEP, 1000,
                            RequestContext())
    finally:
        client.close()


def by_name(result) -> dict:
    return {s.name: s for s in result.series}


def test_multi_labels_and_display_names(grafana: standin.Standin) -> None:
    out = fetch(grafana.url, "multi", series=3)
    assert [s.labels for s in out.series] == [{"series": f"s{i}"} for i in range(3)]
    assert [s.name for s in out.series] == ['{series="s0"}', '{series="s1"}', '{series="s2"}']
    for i, s in enumerate(out.series):
        np.testing.assert_array_equal(s.timestamps_ms, TIMES)
        np.testing.assert_array_equal(s.values, 1000 * i + np.arange(10.0))
    assert out.executed_queries == ["scenario multi"]
    named = fetch(grafana.url, "multi", displayName="load")
    assert [s.name for s in named.series] == ["load 0", "load 1"]
    assert [s.unit for s in out.series] == ["", "", ""]
    # the target field's unit stays with the series, so the forecast is drawn on the same y axis
    assert [s.unit for s in fetch(grafana.url, "multi", unit="reqps").series] == ["reqps", "reqps"]


def test_wide_int_and_float_fields(grafana: standin.Standin) -> None:
    out = by_name(fetch(grafana.url, "wide"))
    assert set(out) == {'cpu {host="a"}', 'cpu {host="b"}', "count"}
    np.testing.assert_array_equal(out['cpu {host="b"}'].values, 1000 + np.arange(10.0))
    assert out['cpu {host="a"}'].labels == {"host": "a"}
    np.testing.assert_array_equal(out["count"].values, 10 * np.arange(10.0))
    assert out["count"].values.dtype == np.float64 and out["count"].timestamps_ms.dtype == np.int64


def test_long_format_string_columns_become_labels(grafana: standin.Standin) -> None:
    out = by_name(fetch(grafana.url, "long"))
    assert set(out) == {'cpu {host="a"}', 'mem {host="a"}', 'cpu {host="b"}', 'mem {host="b"}'}
    np.testing.assert_array_equal(out['cpu {host="b"}'].values, 1000 + np.arange(10.0))
    np.testing.assert_array_equal(out['mem {host="b"}'].values, 100 + np.arange(10.0))
    np.testing.assert_array_equal(out['mem {host="a"}'].timestamps_ms, TIMES)


def test_legacy_and_several_frames(grafana: standin.Standin) -> None:
    legacy = by_name(fetch(grafana.url, "legacy"))
    assert set(legacy) == {"temp", "reads"}
    np.testing.assert_array_equal(legacy["reads"].values, np.arange(10.0))
    several = fetch(grafana.url, "several")
    assert [s.labels["host"] for s in several.series] == ["a", "b", "c"]
    assert several.series[2].name == 'value {host="c"}'
    np.testing.assert_array_equal(several.series[2].values, 2000 + np.arange(10.0))


def test_nulls_and_nonfinite_entities(grafana: standin.Standin) -> None:
    nulls = fetch(grafana.url, "nulls").series[0].values
    assert np.isnan(nulls[1::3]).all() and nulls[0] == 0 and nulls[9] == 9
    special = fetch(grafana.url, "nonfinite").series[0].values
    assert np.isnan(special[1]) and special[2] == np.inf and special[3] == -np.inf and special[4] == 4


def test_irregular_times_with_nanos(grafana: standin.Standin) -> None:
    s = fetch(grafana.url, "jitter").series[0]
    k = np.arange(10)
    expected = TIMES + ((k * 7919) % 41 - 20) * 1000 + k % 7  # the 250 µs remainder is below a ms
    np.testing.assert_array_equal(s.timestamps_ms, expected)


@pytest.mark.parametrize(("scenario", "what"), [("numeric", "numeric-multi"), ("table", "a table")])
def test_numeric_and_table_are_400(grafana: standin.Standin, scenario: str, what: str) -> None:
    with pytest.raises(BackendError) as err:
        fetch(grafana.url, scenario)
    assert err.value.status == 400 and what in err.value.message and "time-series query" in err.value.message


def test_empty_answer_has_no_series(grafana: standin.Standin) -> None:
    assert fetch(grafana.url, "empty").series == []


def test_target_error_is_passed_on(grafana: standin.Standin) -> None:
    with pytest.raises(BackendError) as err:
        fetch(grafana.url, "error")
    assert (err.value.status, err.value.source) == (400, "downstream")
    assert "data source standin (toto-standin) returned an error: parse error" in err.value.message


@pytest.mark.parametrize(
    ("token", "ds", "status", "text"),
    [
        ("", None, 401, "Grafana rejected the token (401): create a service account token"),
        ("wrong-token", None, 401, "Grafana rejected the token (401)"),
        (
            standin.TOKEN,
            {"uid": standin.FORBIDDEN_UID, "type": "loki"},
            403,
            "cannot query data source forbidden-ds",
        ),
        (standin.TOKEN, {"uid": standin.MISSING_UID, "type": "loki"}, 400, "has no data source missing-ds"),
        (
            standin.TOKEN,
            {"uid": "x", "type": "toto-forecast-datasource"},
            400,
            "this forecast data source itself",
        ),
    ],
)
def test_token_and_access_errors(grafana: standin.Standin, token: str, ds, status: int, text: str) -> None:
    with pytest.raises(BackendError) as err:
        fetch(grafana.url, "multi", token=token, ds=ds)
    assert err.value.status == status and text in err.value.message
    assert standin.TOKEN not in err.value.message and "wrong-token" not in err.value.message


def test_slow_answer_is_504_within_the_budget(grafana: standin.Standin) -> None:
    for scenario, kw in (("slow", {"delayMs": 30_000}), ("slowbody", {"trickleMs": 200})):
        with pytest.raises(BackendError) as err:
            fetch(grafana.url, scenario, timeout_s=0.5, **kw)
        assert (err.value.status, err.value.source) == (504, "downstream"), scenario
        assert "within 0.5s" in err.value.message


def test_the_querys_deadline_bounds_the_call_before_the_timeout(grafana: standin.Standin) -> None:
    """timeoutSeconds 30 but Grafana's deadline leaves 0.5 s: the 504 comes within the deadline."""
    client = GrafanaClient(grafana.url, standin.TOKEN, timeout_s=30.0)
    try:
        with pytest.raises(BackendError) as err:
            client.query(DS, {"scenario": "slow", "delayMs": 30_000}, "A", FROM, TO, STEP, 1000,
                         RequestContext(deadline=time.monotonic() + 0.5))
    finally:
        client.close()
    assert err.value.status == 504 and "the query's deadline came first" in err.value.message


def test_huge_answer_is_400_naming_the_limit(grafana: standin.Standin) -> None:
    with pytest.raises(BackendError) as err:
        fetch(grafana.url, "huge", series=6000, limit=1 << 20)
    assert err.value.status == 400 and "larger than the 1 MiB limit" in err.value.message


def test_unreachable_is_502() -> None:
    with pytest.raises(BackendError) as err:
        fetch("http://127.0.0.1:9", "multi")
    assert err.value.status == 502 and "cannot reach Grafana" in err.value.message


def test_health(grafana: standin.Standin) -> None:
    ok = GrafanaClient(grafana.url, standin.TOKEN).check(RequestContext())
    assert ok.ok and ok.version == standin.VERSION and "token accepted" in ok.message
    bad = GrafanaClient(grafana.url, "nope").check(RequestContext())
    assert not bad.ok and "rejected the token (401)" in bad.message and "nope" not in bad.message


def test_prometheus_through_grafana_equals_prometheus(grafana_prom: standin.Standin, prom) -> None:
    """Same expression, same grid: the hop through the stand-in changes neither values nor names."""
    end_s = prom.data.end_s - 3600
    grid = prom_testkit.grid(end_s, 60, 120)
    expr = 'toto_test_load{job="app"}'
    direct = PrometheusSource(PrometheusSettings(url=prom.url, timeout_s=10.0), max_series=100)
    try:
        want = direct.fetch(prom_testkit.request(expr, grid))
    finally:
        direct.close()
    client = GrafanaClient(grafana_prom.url, standin.TOKEN)
    try:
        got = client.query(
            {"uid": "prom", "type": "prometheus"},
            {"expr": expr},
            "A",
            grid.start_ms,
            grid.end_ms,
            60_000,
            120,
            RequestContext(),
        )
    finally:
        client.close()
    assert {s.name for s in got.series} == {s.name for s in want.series}
    ts = grid.timestamps_ms()
    for g in got.series:
        w = next(s for s in want.series if s.name == g.name)
        assert g.labels == w.labels
        on_grid = np.full(grid.count, np.nan)
        on_grid[np.searchsorted(ts, g.timestamps_ms)] = g.values
        np.testing.assert_array_equal(on_grid, w.values)
