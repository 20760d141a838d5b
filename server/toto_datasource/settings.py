"""Data-source instance settings: jsonData plus decrypted secure fields, typed once.

Grafana sends the settings with every request (PluginContext.dataSourceInstanceSettings);
`parse_settings` turns them into frozen values keyed by (uid, lastUpdatedMS) so a changed
configuration takes effect on the next request. Secrets are wrapped in `Secret` and credentials
in a URL are shown as `***`, so a log line or an error message that formats settings never shows them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from .errors import bad_request
from .redact import KNOWN_SECRETS, SecretValueError, clean_header_name, clean_secret

DEFAULT_MODEL = "Datadog/Toto-2.0-22m"
DEFAULT_CONTEXT_LENGTH = 2048
MAX_CONTEXT_LENGTH = 8192

AuthType = Literal["none", "basic", "bearer"]
DEVICES = re.compile(r"^(auto|cpu|cuda|cuda:[0-9]{1,2}|mps)$")
DTYPES = ("float32", "bfloat16")
MAX_HORIZON_SETTING_STEPS = 8192  # query.MAX_HORIZON_STEPS (query imports this module)
_DURATION_SETTING = re.compile(r"^\s*([0-9]{1,9}(?:\.[0-9]{1,6})?)\s*(ms|s|m|h|d|w)\s*$")
MAX_DURATION_SETTING_MS = 10 * 366 * 86_400_000  # ten years: beyond it every step count overflows


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

    model = ModelSettings(
        checkpoint=pick("model", "model", DEFAULT_MODEL),
        device=pick("device", "device", "auto").strip().lower(),
        dtype=pick("dtype", "dtype", "float32").strip().lower(),
    )
    if not DEVICES.match(model.device):
        raise bad_request(
            f"data source setting device: {model.device[:40]!r} is not a device; expected auto, cpu, cuda "
            "or cuda:N (admins may set it as GF_PLUGIN_DEVICE)"
        )
    if model.dtype not in DTYPES:
        raise bad_request(
            f"data source setting dtype: {model.dtype[:40]!r} is not supported; expected float32 or bfloat16"
        )
    return model


def _flag(json_data: Mapping[str, object], key: str) -> bool:
    """A JSON boolean; the strings "true"/"false" too. bool("false") is True, which made
    `"tlsSkipVerify": "false"` turn verification off."""
    raw = json_data.get(key, False)
    if isinstance(raw, bool) or raw is None:
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false", ""):
        return raw.strip().lower() == "true"
    raise bad_request(f"data source setting {key}: {str(raw)[:40]!r} is not true or false")


def _default_horizon(raw: object) -> str:
    """jsonData.defaultHorizon: steps (1-8192) or a duration such as 6h, checked here rather than
    on every query (a bad value made each query without its own horizon fail with a 500)."""
    if raw in (None, ""):
        return ""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise bad_request("data source setting defaultHorizon: expected a number of steps or a duration")
    text = str(raw).strip()
    if isinstance(raw, (int, float)) or text.isdigit():
        try:
            steps = float(text)
        except ValueError:
            steps = math.nan
        whole = math.isfinite(steps) and steps == int(steps)
        if not whole or not 1 <= steps <= MAX_HORIZON_SETTING_STEPS:
            raise bad_request(
                f"data source setting defaultHorizon: {text[:40]} steps is out of range; "
                f"expected 1-{MAX_HORIZON_SETTING_STEPS} steps or a duration such as 6h"
            )
        return str(int(steps))
    m = _DURATION_SETTING.match(text)
    if not m:
        raise bad_request(
            f"data source setting defaultHorizon: {text[:40]!r} is not a duration such as 30m, 6h, 7d "
            "or a number of steps"
        )
    return text


def _prometheus_url(raw: object) -> str:
    """An http(s) URL with a host; anything else is a configuration error (400), not a 502 later."""
    if raw in (None, ""):
        return ""
    if not isinstance(raw, str):
        raise bad_request("data source setting prometheusUrl: expected a URL such as http://prometheus:9090")
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises for a port that is not a number or is out of range
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
    del port
    return text


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
    try:
        result = _parse_settings(
            uid=uid, name=name, url=url, updated_ms=updated_ms, json_data=json_data, secure=secure or {},
            basic_auth_enabled=basic_auth_enabled, basic_auth_user=basic_auth_user, environ=environ,
        )
    except SecretValueError as exc:
        raise bad_request(str(exc)) from None
    KNOWN_SECRETS.remember_settings(result)  # the log filter removes them from every later line
    return result


def _secret(secure: Mapping[str, str], key: str, *, header: bool = True) -> Secret:
    return Secret(clean_secret(key, secure.get(key, ""), header=header))


def _parse_settings(
    *,
    uid: str,
    name: str,
    url: str,
    updated_ms: int,
    json_data: bytes | str | Mapping[str, object],
    secure: Mapping[str, str],
    basic_auth_enabled: bool,
    basic_auth_user: str,
    environ: Mapping[str, str] | None,
) -> DataSourceSettings:
    KNOWN_SECRETS.remember(v.strip() for v in secure.values() if isinstance(v, str))  # even if invalid
    if isinstance(json_data, (bytes, str)):
        try:
            data = json.loads(json_data or "{}")
        except json.JSONDecodeError as exc:
            raise bad_request(f"data source jsonData is not valid JSON: {exc.msg}") from None
        except (UnicodeDecodeError, ValueError):
            raise bad_request("data source jsonData is not valid UTF-8 JSON") from None
        except RecursionError:
            raise bad_request("data source jsonData is nested too deeply") from None
    else:
        data = dict(json_data)
    if not isinstance(data, dict):
        raise bad_request("data source jsonData must be a JSON object")

    prom_url = _prometheus_url(data.get("prometheusUrl") or url or "")
    prometheus = None
    if prom_url:
        auth = str(data.get("authType") or ("basic" if basic_auth_enabled else "none"))
        if auth not in ("none", "basic", "bearer"):
            raise bad_request(f"data source setting authType: {auth!r}; expected none, basic or bearer")
        headers = []
        for i in range(1, 21):
            header = clean_header_name(f"httpHeaderName{i}", data.get(f"httpHeaderName{i}") or "")
            if header:
                headers.append((header, _secret(secure, f"httpHeaderValue{i}")))
        prometheus = PrometheusSettings(
            url=prom_url.rstrip("/"),
            auth=auth,  # type: ignore[arg-type]
            basic_user=clean_secret(
                "basicAuthUser", data.get("basicAuthUser") or basic_auth_user or "", header=False
            ),
            basic_password=_secret(secure, "basicAuthPassword"),
            bearer_token=_secret(secure, "bearerToken"),
            headers=tuple(headers),
            tls_ca_cert=str(secure.get("tlsCACert", "") or data.get("tlsCACert") or "").strip(),
            tls_skip_verify=_flag(data, "tlsSkipVerify"),
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
        default_horizon=_default_horizon(data.get("defaultHorizon")),
    )
