"""The redactor: known secret values, their Basic/percent-encoded forms, and secret-shaped text."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
from toto_datasource.core.redact import (
    RedactingFilter,
    Redactor,
    SecretRegistry,
    SecretValueError,
    clean_header_name,
    clean_secret,
)
from toto_datasource.core.settings import RawSettings
from toto_datasource.plugin.logging import HclogFormatter
from toto_datasource.service.datasource import parse_data_source_settings

TOKEN = "PastedTok3nSecret"
PASSWORD = "hunter2-pa$$ word"


def planted_settings():
    return parse_data_source_settings(RawSettings(
        uid="u",
        json_data={
            "prometheusUrl": f"http://alice:{PASSWORD.replace(' ', '%20')}@prom:9090/?token=QueryTok99",
            "authType": "bearer",
            "httpHeaderName1": "X-Api-Key",
            "basicAuthUser": "bob",
        },
        secure={"bearerToken": TOKEN, "httpHeaderValue1": "HeaderSecret77", "basicAuthPassword": "BobPw123"},
    ))


def test_every_secret_form_is_removed() -> None:
    r = Redactor.for_settings(planted_settings())
    basic_bob = base64.b64encode(b"bob:BobPw123").decode()
    basic_alice = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    text = (
        f"Illegal header value b'Bearer {TOKEN}\\n'; X-Api-Key: HeaderSecret77; pw=BobPw123; "
        f"Basic {basic_bob} / {basic_alice}; url http://prom:9090/api?token=QueryTok99&x=1; "
        f"encoded {PASSWORD.replace(' ', '%20')}"
    )
    out = r(text)
    for secret in (TOKEN, "HeaderSecret77", "BobPw123", basic_bob, basic_alice, "QueryTok99", "hunter2"):
        assert secret not in out, (secret, out)
    assert out.count("***") >= 6
    assert "Illegal header value" in out  # the message around the secret survives


def test_shapes_are_removed_without_settings() -> None:
    """What an upstream echoes back about someone else's request: no setting names it."""
    r = Redactor()
    echoed = (
        "<html>bad gateway: GET http://u:p4ssw0rd@10.0.0.1/api/v1/query?token=abc123&x=2 HTTP/1.1 "
        "Authorization: Basic dXNlcjpwYXNzd29yZA== X-Api-Key: k-9f8e7d Cookie: session=zz99</html>"
    )
    out = r(echoed)
    for leaked in ("p4ssw0rd", "abc123", "dXNlcjpwYXNzd29yZA==", "k-9f8e7d", "zz99"):
        assert leaked not in out, (leaked, out)
    assert "http://***@10.0.0.1/api/v1/query?***" in out


def test_ordinary_messages_are_left_alone() -> None:
    r = Redactor.for_settings(planted_settings())
    for text in (
        "data source setting authType: 'digest'; expected none, basic or bearer",
        "Prometheus at http://prom:9090 rejected the credentials (HTTP 401); check the authentication",
        "horizon: 9000 steps at a step of 1m is more than the 8192 steps allowed",
        "expr: sum(rate(x[5m])) by (job)",
    ):
        assert r(text) == text


def test_short_secrets_are_not_replaced_everywhere() -> None:
    assert Redactor.of(["ab"])("a cab about") == "a cab about"


def test_bytes_bodies() -> None:
    r = Redactor.of([TOKEN])
    assert r.bytes(json.dumps({"error": f"x {TOKEN}"}).encode()) == b'{"error": "x ***"}'
    assert r.bytes(b"\xff\x00" + TOKEN.encode()) == b"\xff\x00" + TOKEN.encode()  # binary: untouched


def test_registry_is_bounded_and_keeps_the_newest() -> None:
    reg = SecretRegistry(limit=2)
    reg.remember(["first-secret", "second-secret", "third-secret"])
    assert reg("first-secret third-secret") == "first-secret ***"


def test_log_filter_redacts_message_args_traceback_and_kv() -> None:
    reg = SecretRegistry()
    reg.remember([TOKEN])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(HclogFormatter())
    handler.addFilter(RedactingFilter(reg))
    log = logging.getLogger("test_redact.filter")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("sending %s", f"Bearer {TOKEN}", extra={"kv": {"header": TOKEN}})
        try:
            raise ValueError(f"Illegal header value b'Bearer {TOKEN}\\n'")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert TOKEN not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["@message"] == "sending Bearer ***" and first["header"] == "***"
    assert "ValueError: Illegal header value" in second["error"]


@pytest.mark.parametrize(
    ("value", "expected"), [(" tok\n", "tok"), ("\ttok  ", "tok"), ("", ""), (None, "")]
)
def test_clean_secret_strips(value: object, expected: str) -> None:
    assert clean_secret("bearerToken", value) == expected


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "ÿ☃", "tok\x00", "a\x07b"])
def test_clean_secret_refuses_and_names_the_field_not_the_value(value: str) -> None:
    with pytest.raises(SecretValueError) as err:
        clean_secret("httpHeaderValue1", value)
    assert "httpHeaderValue1" in str(err.value)
    assert value.strip() not in str(err.value)


def test_non_header_secret_may_be_unicode() -> None:
    assert clean_secret("tlsClientKey", "ÿ☃", header=False) == "ÿ☃"


def test_header_names() -> None:
    assert clean_header_name("httpHeaderName1", " X-Scope-OrgID ") == "X-Scope-OrgID"
    with pytest.raises(SecretValueError, match="httpHeaderName2"):
        clean_header_name("httpHeaderName2", "X Bad: name")


def test_third_party_log_lines_are_hclog_json() -> None:
    """huggingface_hub and torch bring their own plain stderr handlers; after setup every line is JSON."""
    import subprocess
    import sys

    code = (
        "import logging, sys\n"
        "from toto_datasource.plugin.logging import setup_logging\n"
        "setup_logging('info')\n"
        "from toto_datasource.core.redact import KNOWN_SECRETS\n"
        "KNOWN_SECRETS.remember(['S3cretValue'])\n"
        "import huggingface_hub, torch\n"  # after setup, as the engine's loader thread imports them
        "logging.getLogger('huggingface_hub.utils._http').warning('Retrying in 1s [S3cretValue]')\n"
        "logging.getLogger('torch._dynamo').warning('torch says S3cretValue')\n"
        "import warnings; warnings.warn('gluonts-style warning')\n"
        "logging.getLogger('httpx').warning('GET http://h/api?token=S3cretValue')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 4, proc.stderr
    for line in lines:
        entry = json.loads(line)
        assert "S3cretValue" not in line and entry["@message"]
