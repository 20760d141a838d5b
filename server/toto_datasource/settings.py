"""Data-source instance settings: jsonData plus decrypted secure fields, typed once.

Grafana sends the settings with every request (PluginContext.dataSourceInstanceSettings);
`parse_settings` turns them into frozen values keyed by (uid, lastUpdatedMS) so a changed
configuration takes effect on the next request. Secrets are wrapped in `Secret` and credentials
in a URL are shown as `***`, so a log line or an error message that formats settings never shows them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from .errors import bad_request

DEFAULT_MODEL = "Datadog/Toto-2.0-22m"
DEFAULT_CONTEXT_LENGTH = 2048
MAX_CONTEXT_LENGTH = 8192

AuthType = Literal["none", "basic", "bearer"]


class Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class ModelSettings:
    """Which Toto checkpoint to run and where. One loaded model per distinct value."""

    checkpoint: str = DEFAULT_MODEL
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "float32"  # float32 | bfloat16


def redact_url(url: str, userinfo: str = "***") -> str:
    """The URL as messages and logs may show it: `user:password@` becomes `***@` (or is dropped
    when `userinfo` is "") and the query string, which may carry a token, is left out."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{userinfo}@{host}" if userinfo and "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


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


@dataclass(frozen=True)
class DataSourceSettings:
    uid: str = ""
    name: str = ""
    updated_ms: int = 0
    model: ModelSettings = field(default_factory=ModelSettings)
    prometheus: PrometheusSettings | None = None
    max_series: int = 500
    default_context_length: int = DEFAULT_CONTEXT_LENGTH
    default_horizon: str = ""


def env_setting(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Read an admin setting: `[plugin.toto-forecast-datasource] name = v` in grafana.ini
    arrives as GF_PLUGIN_<NAME>; TOTO_<NAME> serves hand-started servers."""
    env = os.environ if environ is None else environ
    key = name.upper()
    return env.get(f"GF_PLUGIN_{key}") or env.get(f"TOTO_{key}") or ""


def model_settings(
    json_data: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> ModelSettings:
    """Admin settings (env) override the data source's jsonData: an air-gapped install can
    pin a local checkpoint directory for every data source."""

    def pick(env_name: str, key: str, default: str) -> str:
        return env_setting(env_name, environ) or str(json_data.get(key) or "") or default

    return ModelSettings(
        checkpoint=pick("model", "model", DEFAULT_MODEL),
        device=pick("device", "device", "auto"),
        dtype=pick("dtype", "dtype", "float32"),
    )


def _number(json_data: Mapping[str, object], key: str, default: float, lo: float, hi: float) -> float:
    raw = json_data.get(key, default)
    if raw in ("", None):
        return default
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise bad_request(
            f"data source setting {key}: {raw!r} is not a number; expected {lo:g}-{hi:g}"
        ) from None
    if not lo <= value <= hi:
        raise bad_request(f"data source setting {key}: {value:g} is out of range; expected {lo:g}-{hi:g}")
    return value


def parse_settings(
    *,
    uid: str = "",
    name: str = "",
    url: str = "",
    updated_ms: int = 0,
    json_data: bytes | str | Mapping[str, object] = b"",
    secure: Mapping[str, str] | None = None,
    basic_auth_enabled: bool = False,
    basic_auth_user: str = "",
    environ: Mapping[str, str] | None = None,
) -> DataSourceSettings:
    """Build settings from the fields Grafana sends; raises QueryError(400) on invalid values."""
    secure = secure or {}
    if isinstance(json_data, (bytes, str)):
        try:
            data = json.loads(json_data or "{}")
        except json.JSONDecodeError as exc:
            raise bad_request(f"data source jsonData is not valid JSON: {exc.msg}") from None
    else:
        data = dict(json_data)
    if not isinstance(data, dict):
        raise bad_request("data source jsonData must be a JSON object")

    prom_url = str(data.get("prometheusUrl") or url or "").strip()
    prometheus = None
    if prom_url:
        auth = str(data.get("authType") or ("basic" if basic_auth_enabled else "none"))
        if auth not in ("none", "basic", "bearer"):
            raise bad_request(f"data source setting authType: {auth!r}; expected none, basic or bearer")
        headers = []
        for i in range(1, 21):
            header = str(data.get(f"httpHeaderName{i}") or "").strip()
            if header:
                headers.append((header, Secret(secure.get(f"httpHeaderValue{i}", ""))))
        prometheus = PrometheusSettings(
            url=prom_url.rstrip("/"),
            auth=auth,  # type: ignore[arg-type]
            basic_user=str(data.get("basicAuthUser") or basic_auth_user or ""),
            basic_password=Secret(secure.get("basicAuthPassword", "")),
            bearer_token=Secret(secure.get("bearerToken", "")),
            headers=tuple(headers),
            tls_ca_cert=secure.get("tlsCACert", "") or str(data.get("tlsCACert") or ""),
            tls_skip_verify=bool(data.get("tlsSkipVerify", False)),
            timeout_s=_number(data, "timeoutSeconds", 30.0, 0.1, 600.0),
        )
    return DataSourceSettings(
        uid=uid,
        name=name,
        updated_ms=updated_ms,
        model=model_settings(data, environ),
        prometheus=prometheus,
        max_series=int(_number(data, "maxSeries", 500, 1, 10000)),
        default_context_length=int(
            _number(data, "defaultContextLength", DEFAULT_CONTEXT_LENGTH, 32, MAX_CONTEXT_LENGTH)
        ),
        default_horizon=str(data.get("defaultHorizon") or ""),
    )
