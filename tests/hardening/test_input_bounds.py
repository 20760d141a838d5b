"""Bounds before arithmetic (query.py) and settings errors naming the field (settings.py), in
process: each input of issue 13 that was a 500 is a 400 here, fast."""

from __future__ import annotations

import pytest
from toto_datasource.errors import QueryError
from toto_datasource.query import parse_query, plan_query
from toto_datasource.redact import KNOWN_SECRETS
from toto_datasource.settings import DataSourceSettings, parse_settings

NOW = 1_764_000_000_000
H = 3_600_000


def parse(body: str, *, from_ms: int = NOW - 6 * H, to_ms: int = NOW, interval_ms: float = 60_000,
          settings: DataSourceSettings | None = None):  # type: ignore[no-untyped-def]
    return parse_query(body.encode(), ref_id="A", query_type="", from_ms=from_ms, to_ms=to_ms,
                       interval_ms=interval_ms, max_data_points=1000,
                       settings=settings or DataSourceSettings())


def error_of(fn, *args, **kw) -> QueryError:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError) as err:
        fn(*args, **kw)
    assert err.value.status == 400 and err.value.source == "plugin"
    return err.value


@pytest.mark.parametrize(
    ("body", "kw", "field"),
    [
        ('{"model": "seasonal-naive"}', {"interval_ms": float(2**63 - 1)}, "intervalMs"),
        ('{"intervalMs": 1e308}', {}, "intervalMs"),
        ('{"intervalMs": 1e15}', {}, "intervalMs"),
        ('{"intervalMs": -5}', {}, "intervalMs"),
        ('{"maxDataPoints": 1e300}', {}, "maxDataPoints"),
        ('{"step": "9999999w"}', {}, "step"),
        ('{"step": "0s"}', {}, "step"),
        ('{"step": "' + "9" * 400 + 's"}', {}, "step"),
        ('{"horizon": "99999999999w"}', {}, "horizon"),
        ('{"anomalyWindow": "99999999999w", "queryType": "anomaly"}', {}, "anomalyWindow"),
        ("{}", {"from_ms": -(2**63), "to_ms": -(2**63)}, "timeRange"),
        ("{}", {"from_ms": 0, "to_ms": 2**62}, "timeRange"),
        ('{"source": "inline", "series": [{"timestamps": [1e300, 2e300], "values": [1, 2]}]}', {},
         "timestamps"),
    ],
)
def test_numbers_out_of_range_are_400s_naming_the_field(body: str, kw: dict, field: str) -> None:
    def run() -> None:
        q = parse(body, **kw)
        plan_query(q, NOW)

    assert field in error_of(run).message


def test_a_plan_beyond_the_nanosecond_years_is_refused() -> None:
    q = parse('{"step": "366d", "contextLength": 8192}')
    assert "contextLength" in error_of(plan_query, q, NOW).message


def test_ordinary_queries_still_plan() -> None:
    plan = plan_query(parse('{"horizon": "400d", "step": "6h"}'), NOW)
    assert plan.horizon == 1600
    assert plan_query(parse('{"step": "1w"}'), NOW).grid.step_ms == 604_800_000


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"json_data": b"\xff"}, "jsonData"),
        ({"json_data": b"[" * 100_000}, "jsonData"),
        ({"json_data": {"defaultHorizon": "forever"}}, "defaultHorizon"),
        ({"json_data": {"defaultHorizon": 99999}}, "defaultHorizon"),
        ({"json_data": {"defaultHorizon": True}}, "defaultHorizon"),
        ({"json_data": {"prometheusUrl": "http://[::1"}}, "prometheusUrl"),
        ({"json_data": {"prometheusUrl": 5}}, "prometheusUrl"),
        ({"json_data": {"prometheusUrl": "ftp://host"}}, "prometheusUrl"),
        ({"json_data": {"prometheusUrl": "http://h:99999"}}, "prometheusUrl"),
        ({"json_data": {"device": "tpu"}}, "device"),
        ({"json_data": {"dtype": "float64"}}, "dtype"),
        ({"json_data": {"prometheusUrl": "http://h", "tlsSkipVerify": "maybe"}}, "tlsSkipVerify"),
        ({"json_data": {"prometheusUrl": "http://h", "httpHeaderName1": "X A:"}}, "httpHeaderName1"),
    ],
)
def test_settings_errors_are_400s_naming_the_field(kw: dict, field: str) -> None:
    assert field in error_of(parse_settings, **kw).message


@pytest.mark.parametrize("value", ["ÿ☃", "Bearer a\nb", "tok\r\n\x00"])
def test_bad_secret_names_the_field_never_the_value(value: str) -> None:
    err = error_of(parse_settings, json_data={"prometheusUrl": "http://h", "httpHeaderName1": "X-Key"},
                   secure={"httpHeaderValue1": value})
    assert "httpHeaderValue1" in err.message and value.strip() not in err.message


def test_secrets_are_stripped_and_remembered_for_the_log_filter() -> None:
    s = parse_settings(json_data={"prometheusUrl": "http://h", "authType": "bearer"},
                       secure={"bearerToken": " Remembered-Tok3n\n"})
    assert s.prometheus is not None and s.prometheus.bearer_token.reveal() == "Remembered-Tok3n"
    assert KNOWN_SECRETS("x Remembered-Tok3n y") == "x *** y"


def test_tls_skip_verify_string_false_keeps_verification() -> None:
    s = parse_settings(json_data={"prometheusUrl": "http://h", "tlsSkipVerify": "false"})
    assert s.prometheus is not None and s.prometheus.tls_skip_verify is False


def test_default_horizon_in_steps_or_duration() -> None:
    assert parse(
        "{}", settings=parse_settings(json_data={"defaultHorizon": 48})
    ).horizon.steps == 48  # type: ignore[union-attr]
    assert parse(
        "{}", settings=parse_settings(json_data={"defaultHorizon": "6h"})
    ).horizon.ms == 6 * H  # type: ignore[union-attr]
