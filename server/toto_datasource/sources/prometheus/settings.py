"""The Prometheus part of the data source's settings: URL, auth, custom headers, TLS, timeout."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from ...backend.errors import bad_request
from ...backend.settings import RawSettings, Secret, number_setting, redact_url

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


def parse_prometheus_settings(raw: RawSettings) -> PrometheusSettings | None:
    """The settings part, or None when no Prometheus URL is configured."""
    data, secure = raw.json_data, raw.secure
    url = data.get("prometheusUrl") or raw.url or ""
    if not isinstance(url, str):
        raise bad_request(f"data source setting prometheusUrl: {url!r} is not a URL such as http://prometheus:9090")
    url = url.strip()
    if not url:
        return None
    auth = str(data.get("authType") or ("basic" if raw.basic_auth_enabled else "none"))
    if auth not in ("none", "basic", "bearer"):
        raise bad_request(f"data source setting authType: {auth!r}; expected none, basic or bearer")
    headers = []
    for i in range(1, MAX_HEADERS + 1):
        header = str(data.get(f"httpHeaderName{i}") or "").strip()
        if header:
            headers.append((header, Secret(secure.get(f"httpHeaderValue{i}", ""))))
    return PrometheusSettings(
        url=url.rstrip("/"),
        auth=auth,  # type: ignore[arg-type]
        basic_user=str(data.get("basicAuthUser") or raw.basic_auth_user or ""),
        basic_password=Secret(secure.get("basicAuthPassword", "")),
        bearer_token=Secret(secure.get("bearerToken", "")),
        headers=tuple(headers),
        tls_ca_cert=secure.get("tlsCACert", "") or str(data.get("tlsCACert") or ""),
        tls_skip_verify=bool(data.get("tlsSkipVerify", False)),
        timeout_s=number_setting(data, "timeoutSeconds", 30.0, 0.1, 600.0),
    )
