"""The Prometheus part of the data source's settings: URL, auth, custom headers, TLS, timeout.

Checked here, once per settings version, so a bad value is the admin's 400 naming the field (on
every query and in CheckHealth) rather than a 500 or a 502 "downstream" later: a URL that does not
parse (`http://[::1`), a URL that is not a string (`5` was a 502), secrets with line
breaks or characters HTTP headers cannot carry (httpx quoted the value in full), header names that
are not tokens, and `tlsSkipVerify: "false"` (a string, which bool() made true).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from ...core.errors import bad_request
from ...core.settings import (
    RawSettings,
    Secret,
    clean_secure,
    clean_text,
    flag_setting,
    header_name,
    number_setting,
    redact_url,
)

AuthType = Literal["none", "basic", "bearer"]
MAX_HEADERS = 20


@dataclass(frozen=True)
class PrometheusSettings:
    url: str
    auth: AuthType = "none"
    basic_user: str = ""
    basic_password: Secret = field(default_factory=lambda: Secret(""))
    bearer_token: Secret = field(default_factory=lambda: Secret(""))
    headers: tuple[tuple[str, Secret], ...] = ()
    tls_ca_cert: str = ""
    tls_skip_verify: bool = False
    timeout_s: float = 30.0

    def __repr__(self) -> str:
        """The dataclass repr, but the URL redacted: users paste http://user:pass@host/ URLs."""
        rest = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.name != "url"
        )
        return f"PrometheusSettings(url={redact_url(self.url)!r}, {rest})"


def prometheus_url(raw: object) -> str:
    """An http(s) URL with a host, or "" when none is set; anything else is a 400 naming the field."""
    if raw in (None, ""):
        return ""
    if not isinstance(raw, str):
        raise bad_request("data source setting prometheusUrl: expected a URL such as http://prometheus:9090")
    text = raw.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises for a port that is not a number or out of range
        host = parts.hostname
    except ValueError as exc:
        reason = str(exc).split(":")[0]
        raise bad_request(
            f"data source setting prometheusUrl: {redact_url(text)} is not a valid URL ({reason})"
        ) from None
    if parts.scheme not in ("http", "https") or not host or any(c in text for c in "\r\n\t "):
        raise bad_request(
            f"data source setting prometheusUrl: {redact_url(text)} is not an http(s) URL with a host; "
            "expected e.g. http://prometheus:9090"
        )
    return text


def parse_prometheus_settings(raw: RawSettings) -> PrometheusSettings | None:
    """The settings part, or None when no Prometheus URL is configured."""
    data, secure = raw.json_data, raw.secure
    url = prometheus_url(data.get("prometheusUrl") or raw.url or "")
    if not url:
        return None
    auth = str(data.get("authType") or ("basic" if raw.basic_auth_enabled else "none"))
    if auth not in ("none", "basic", "bearer"):
        raise bad_request(f"data source setting authType: {auth[:40]!r}; expected none, basic or bearer")
    headers = []
    for i in range(1, MAX_HEADERS + 1):
        header = header_name(raw, f"httpHeaderName{i}")
        if header:
            headers.append((header, clean_secure(raw, f"httpHeaderValue{i}")))
    user = clean_text("basicAuthUser", data.get("basicAuthUser") or raw.basic_auth_user or "", header=False)
    return PrometheusSettings(
        url=url.rstrip("/"),
        auth=auth,  # type: ignore[arg-type]
        basic_user=user,
        basic_password=clean_secure(raw, "basicAuthPassword"),
        bearer_token=clean_secure(raw, "bearerToken"),
        headers=tuple(headers),
        tls_ca_cert=str(secure.get("tlsCACert", "") or data.get("tlsCACert") or "").strip(),
        tls_skip_verify=flag_setting(data, "tlsSkipVerify"),
        timeout_s=number_setting(data, "timeoutSeconds", 30.0, 0.1, 600.0),
    )
