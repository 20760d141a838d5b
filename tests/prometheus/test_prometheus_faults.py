"""Upstream faults: each one a downstream BackendError that says what happened, never a secret.

Real Prometheus for what it can do (down, invalid PromQL, bcrypt basic auth, TLS, its own
sample limit); the fake upstream only for garbage, silence, arbitrary 5xx and header echoes.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest
from toto_datasource.core.errors import BackendError
from toto_datasource.core.request import RequestContext
from toto_datasource.sources.prometheus import PrometheusSettings, PrometheusSource

from .prom_fakes import FakeUpstream
from .prom_server import free_port
from .prom_testkit import BASIC_PASSWORD, BASIC_USER, MAX_SAMPLES, AuthEnv, PromEnv, grid, request, settings

TOKEN = "tok-SECRET-4242-do-not-print"


def fetch_error(s: PrometheusSettings, expr: str = "up", max_series: int = 500) -> BackendError:
    src = PrometheusSource(s, max_series=max_series)
    try:
        with pytest.raises(BackendError) as err:
            src.fetch(request(expr, grid(1_700_000_000, 60, 64)))
    finally:
        src.close()
    return err.value


def test_prometheus_down() -> None:
    port = free_port()  # nothing listens here
    err = fetch_error(settings(f"http://127.0.0.1:{port}"))
    assert (err.source, err.status) == ("downstream", 502)
    assert err.message == f"cannot reach Prometheus at http://127.0.0.1:{port}: connection refused"
    health = PrometheusSource(settings(f"http://127.0.0.1:{port}"), 500).check(RequestContext())
    assert not health.ok and health.message == err.message


def test_slow_upstream_times_out(fake: FakeUpstream) -> None:
    # /slow never answers until teardown: only the timeout can end this request.
    err = fetch_error(settings(f"{fake.url}/slow", timeout_s=0.3))
    assert (err.source, err.status) == ("downstream", 504)
    assert "did not answer within 0.3s" in err.message


def test_deadline_covers_a_trickling_body() -> None:
    """httpx times out per read; the source's own deadline ends a body that keeps trickling."""
    clock = iter(range(1000))
    body = (b" " for _ in range(100))  # whitespace is valid JSON padding: only time can fail it

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    s = settings("http://prom.invalid", timeout_s=5)
    src = PrometheusSource(s, 500, client=httpx.Client(transport=httpx.MockTransport(handler)))
    ctx = RequestContext(clock=lambda: float(next(clock)))  # one "second" per look at the clock
    with pytest.raises(BackendError) as err:
        src.fetch(request("up", grid(1_700_000_000, 60, 64), ctx))
    assert err.value.status == 504 and err.value.source == "downstream"


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("status500", 502, "answered HTTP 500"),
        ("status503", 502, "answered HTTP 503"),
        ("status504", 504, "answered HTTP 504"),
        ("garbage", 502, "not Prometheus API JSON"),
        ("html", 502, "not Prometheus API JSON"),
        ("nothing-here", 502, "HTTP 404"),
        ("unauthorized", 502, "rejected the credentials (HTTP 401)"),
    ],
)
def test_bad_upstream_answers(fake: FakeUpstream, path: str, status: int, text: str) -> None:
    err = fetch_error(settings(f"{fake.url}/{path}"))
    assert (err.source, err.status) == ("downstream", status)
    assert text in err.message and f"{fake.url}/{path}" in err.message


def test_invalid_promql_shows_prometheus_message(prom: PromEnv) -> None:
    err = fetch_error(settings(prom.url), expr="sum(rate(toto_test_load[5m])")
    assert (err.source, err.status) == ("downstream", 400)
    assert err.message.startswith("Prometheus rejected the query: ")
    assert "parse error" in err.message  # Prometheus's own words


def test_prometheus_sample_limit(auth_prom: AuthEnv) -> None:
    """Prometheus's own --query.max-samples: the upstream refuses, the user narrows the query."""
    s = auth_settings(auth_prom)
    err = fetch_error(s, expr=f"count_over_time(vector(1)[{MAX_SAMPLES * 2}s:1s])")
    assert err.source == "downstream" and err.status == 422
    assert "too many samples" in err.message


def auth_settings(env: AuthEnv, **kw: object) -> PrometheusSettings:
    kw.setdefault("auth", "basic")
    kw.setdefault("basic_user", BASIC_USER)
    kw.setdefault("basic_password", BASIC_PASSWORD)
    kw.setdefault("tls_ca_cert", env.ca_pem)
    return settings(env.url, **kw)


def test_real_basic_auth_and_tls_accepted(auth_prom: AuthEnv) -> None:
    src = PrometheusSource(auth_settings(auth_prom), 500)
    history = src.fetch(request("vector(7)", grid(1_700_000_000, 60, 64)))
    assert history.series[0].observed == 64 and np.all(history.series[0].values == 7)
    health = src.check(RequestContext())
    assert health.ok and health.version.startswith("2.") and auth_prom.url in health.message
    src.close()


@pytest.mark.parametrize(
    "kw",
    [
        {"basic_password": "wrong-password"},
        {"auth": "none"},
        {"auth": "bearer", "bearer_token": "not-for-basic-auth"},
    ],
    ids=["wrong-password", "no-auth", "bearer"],
)
def test_real_auth_rejected(auth_prom: AuthEnv, kw: dict[str, object]) -> None:
    s = auth_settings(auth_prom, **kw)
    err = fetch_error(s, expr="vector(1)")
    assert (err.source, err.status) == ("downstream", 502)
    assert err.message.startswith(f"Prometheus at {auth_prom.url} rejected the credentials (HTTP 401)")
    health = PrometheusSource(s, 500).check(RequestContext())
    assert not health.ok and health.message.startswith(
        f"Prometheus at {auth_prom.url} rejected the credentials (HTTP 401)"
    )


def test_tls_verification(auth_prom: AuthEnv) -> None:
    err = fetch_error(auth_settings(auth_prom, tls_ca_cert=""), expr="vector(1)")
    assert err.status == 502 and "TLS handshake failed" in err.message
    skip = PrometheusSource(auth_settings(auth_prom, tls_ca_cert="", tls_skip_verify=True), 500)
    assert skip.fetch(request("vector(1)", grid(1_700_000_000, 60, 8))).series[0].observed == 8
    with pytest.raises(BackendError, match="not a valid PEM certificate") as bad:
        PrometheusSource(auth_settings(auth_prom, tls_ca_cert="-----BEGIN CERTIFICATE-----\nnope\n"), 500)
    assert bad.value.source == "plugin"


def test_auth_headers_are_sent(fake: FakeUpstream) -> None:
    """Bearer token and custom headers reach the upstream (the fake records what it received)."""
    fake.seen_headers.clear()
    s = settings(
        f"{fake.url}/echo", auth="bearer", bearer_token=TOKEN, headers=[("X-Scope-OrgID", "tenant-1")]
    )
    src = PrometheusSource(s, 500)
    assert src.fetch(request("up", grid(1_700_000_000, 60, 16))).series[0].observed == 16
    assert src.check(RequestContext()).version == "9.9.9-fake"
    basic = PrometheusSource(
        settings(f"{fake.url}/echo", auth="basic", basic_user="u", basic_password=TOKEN), 500
    )
    basic.fetch(request("up", grid(1_700_000_000, 60, 16)))
    bearer, health, basic_seen = fake.seen_headers[-3:]
    for seen in (bearer, health):
        assert seen["authorization"] == f"Bearer {TOKEN}" and seen["x-scope-orgid"] == "tenant-1"
        assert seen["accept-encoding"] == "identity"  # local links: gzip costs more than it saves
    assert basic_seen["authorization"] == "Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode()


def test_url_query_string_goes_with_every_request(fake: FakeUpstream) -> None:
    """Some Prometheus-compatible APIs want a parameter on every call (a tenant, an org id); a
    configured URL's query string is sent each time and never shown in messages."""
    fake.seen_paths.clear()
    src = PrometheusSource(settings(f"{fake.url}/echo?orgId=7&tenant=a%20b"), 500)
    assert src.fetch(request("up", grid(1_700_000_000, 60, 16))).series[0].observed == 16
    assert src.check(RequestContext()).version == "9.9.9-fake"
    assert len(fake.seen_paths) >= 2
    for path in fake.seen_paths:
        assert "orgId=7" in path and "tenant=a+b" in path.replace("%20", "+"), path
    err = fetch_error(settings(f"{fake.url}/status503?orgId=7"))
    assert f"{fake.url}/status503" in err.message and "orgId" not in err.message


def secret_settings(url: str, **kw: object) -> list[PrometheusSettings]:
    """The same upstream with the token in every place a secret can live."""
    header = [("X-Api-Key", TOKEN)]
    return [
        settings(url, auth="bearer", bearer_token=TOKEN, headers=header, **kw),
        settings(url, auth="basic", basic_user="someone", basic_password=TOKEN, headers=header, **kw),
        settings(url.replace("://", f"://someone:{TOKEN}@"), **kw),
    ]


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


def test_secrets_never_appear_in_errors_or_logs(
    prom: PromEnv, auth_prom: AuthEnv, fake: FakeUpstream, all_logs: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    faults: list[tuple[str, Callable[[PrometheusSettings], BackendError], list[PrometheusSettings]]] = [
        ("down", fetch_error, secret_settings(f"http://127.0.0.1:{port}")),
        ("slow", fetch_error, secret_settings(f"{fake.url}/slow", timeout_s=0.3)),
        ("5xx echoing headers", fetch_error, secret_settings(f"{fake.url}/status500")),
        ("garbage", fetch_error, secret_settings(f"{fake.url}/garbage")),
        ("invalid promql", lambda s: fetch_error(s, expr="sum("), secret_settings(prom.url)),
        ("too many series", lambda s: fetch_error(s, "toto_test_many", 10), secret_settings(prom.url)),
        (
            "auth rejected",
            lambda s: fetch_error(s, expr="vector(1)"),
            [s for s in secret_settings(auth_prom.url, tls_ca_cert=auth_prom.ca_pem)],
        ),
        (
            "sample limit",
            lambda s: fetch_error(s, expr=f"count_over_time(vector(1)[{MAX_SAMPLES * 2}s:1s])"),
            [auth_settings(auth_prom, basic_password=BASIC_PASSWORD, headers=[("X-Api-Key", TOKEN)])],
        ),
    ]
    seen = 0
    for name, trigger, variants in faults:
        for s in variants:
            err = trigger(s)
            seen += 1
            for text in (err.message, str(err), repr(err)):
                assert TOKEN not in text, f"{name}: {text}"
            src = PrometheusSource(s, 500)
            health = src.check(RequestContext())
            src.close()
            assert TOKEN not in health.message, f"{name} (health): {health.message}"
    assert seen == 22
    assert TOKEN not in all_logs.text
    assert any("prometheus POST /api/v1/query_range" in r.getMessage() for r in all_logs.records)


def test_health_without_buildinfo_endpoint(fake: FakeUpstream) -> None:
    """A compatible server without /status/buildinfo is still healthy if it answers a query."""
    health = PrometheusSource(settings(f"{fake.url}/nobuildinfo"), 500).check(RequestContext())
    assert health.ok and health.version == ""
    assert health.message == f"Prometheus at {fake.url}/nobuildinfo reachable, version unknown"
    broken = PrometheusSource(settings(f"{fake.url}/nothing-here"), 500).check(RequestContext())
    assert not broken.ok and "HTTP 404" in broken.message
