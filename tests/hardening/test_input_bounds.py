"""Bounds before arithmetic (query/parse.py, query/plan.py, query/durations.py) and settings
errors naming the field (core/settings.py, sources/prometheus/settings.py), in process: each
input that once was a 500 is a 400 here, fast."""

from __future__ import annotations

import json

import pytest
from conftest import check_health, run_queries
from toto_datasource._proto.pluginv2 import backend_pb2 as pb
from toto_datasource.core.errors import BackendError
from toto_datasource.core.redact import KNOWN_SECRETS
from toto_datasource.core.settings import DataSourceSettings, RawSettings
from toto_datasource.core.types import DataQueryInput
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.plugin.wire import raw_settings
from toto_datasource.query import plan_query
from toto_datasource.query.limits import MAX_HORIZON_STEPS
from toto_datasource.service import ForecastDataSource

NOW = 1_764_000_000_000
H = 3_600_000
DS = ForecastDataSource(ModelRegistry(), clock=lambda: NOW / 1000)


def parse(body: str, *, from_ms: int = NOW - 6 * H, to_ms: int = NOW, interval_ms: float = 60_000,
          settings: DataSourceSettings | None = None):  # type: ignore[no-untyped-def]
    q = DataQueryInput(ref_id="A", query_type="", json=body.encode(), from_ms=from_ms, to_ms=to_ms,
                       interval_ms=interval_ms, max_data_points=1000)
    return DS.parse(q, settings or DataSourceSettings())


def plan(query):  # type: ignore[no-untyped-def]
    return DS.plan(query, DS.instance(DataSourceSettings()).source(query.source_name))


def parse_settings(*, json_data: dict | bytes | None = None,
                   secure: dict | None = None) -> DataSourceSettings:
    """As the plugin edge does it: protobuf settings → RawSettings → typed settings."""
    raw = json_data if isinstance(json_data, bytes) else json.dumps(json_data or {}).encode()
    ctx = pb.PluginContext(dataSourceInstanceSettings=pb.DataSourceInstanceSettings(
        uid="bounds", jsonData=raw, decryptedSecureJsonData=secure or {}))
    return DS.parse_settings(raw_settings(ctx))


def prometheus(settings: DataSourceSettings):  # type: ignore[no-untyped-def]
    return settings.part("prometheus")


def error_of(fn, *args, **kw) -> BackendError:  # type: ignore[no-untyped-def]
    with pytest.raises(BackendError) as err:
        fn(*args, **kw)
    assert err.value.status == 400 and err.value.source == "plugin"
    return err.value


def test_the_settings_horizon_limit_is_the_query_models() -> None:
    from toto_datasource.core.settings import MAX_HORIZON_SETTING_STEPS

    assert MAX_HORIZON_SETTING_STEPS == MAX_HORIZON_STEPS


def test_raw_settings_fields_are_checked_too() -> None:
    assert "jsonData" in error_of(parse_settings, json_data=b"[" * 100_000).message
    raw = RawSettings(json_data={"prometheusUrl": "http://h", "basicAuthUser": "a\nb"})
    assert "basicAuthUser" in error_of(DS.parse_settings, raw).message


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
        plan(parse(body, **kw))

    assert field in error_of(run).message


@pytest.mark.parametrize("source", ["[null]", "{}", "[]", "7", "true"])
def test_a_source_that_is_not_a_name_is_a_400_naming_the_field(source: str) -> None:
    message = error_of(parse, '{"source": ' + source + "}").message
    assert message.startswith("source:") and "demo" in message, message


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
    assert prometheus(s).bearer_token.reveal() == "Remembered-Tok3n"
    assert KNOWN_SECRETS("x Remembered-Tok3n y") == "x *** y"


def test_tls_skip_verify_string_false_keeps_verification() -> None:
    s = parse_settings(json_data={"prometheusUrl": "http://h", "tlsSkipVerify": "false"})
    assert prometheus(s).tls_skip_verify is False


def test_default_horizon_in_steps_or_duration() -> None:
    assert parse(
        "{}", settings=parse_settings(json_data={"defaultHorizon": 48})
    ).horizon.steps == 48  # type: ignore[union-attr]
    assert parse(
        "{}", settings=parse_settings(json_data={"defaultHorizon": "6h"})
    ).horizon.ms == 6 * H  # type: ignore[union-attr]


def test_a_gpu_that_does_not_exist_is_a_400_from_the_first_query() -> None:
    """Not 503 "loading" once and then 400: the device is checked before the load starts. On this
    CPU-only machine torch.cuda.device_count() is 0, so cuda:7 does not exist (nor on a 1-7 GPU box)."""
    import torch

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a GPU 7")
    ds = ForecastDataSource(ModelRegistry(warmup=False), clock=lambda: NOW / 1000)
    settings = parse_settings(json_data={"device": "cuda:7"})
    q = DataQueryInput("A", "", json.dumps({"source": "demo"}).encode(), NOW - 6 * H, NOW, 60_000, 1000)
    error = run_queries(ds, settings, [q])["A"].error
    assert error is not None and error.status == 400, error
    assert error.message.startswith("data source setting device: 'cuda:7' names no such GPU"), error.message
    health = check_health(ds, settings)
    assert not health.ok and "no such GPU" in health.message
