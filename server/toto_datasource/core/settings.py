"""Data-source instance settings: the generic part typed once, each source's part by its provider.

Grafana sends the settings with every request (PluginContext.dataSourceInstanceSettings). The
plugin edge turns them into `RawSettings`; `parse_settings` types the generic fields and asks
each registered source provider to parse its own part, so adding a source never edits this file.
Secrets are wrapped in `Secret` and credentials in a URL are shown as `***`, so a log line or an
error message that formats settings never shows them. Every secret parsed is also remembered by
`redact.KNOWN_SECRETS`, the process-wide redactor that the plugin edge applies to every message
it sends and every log line (a token pasted with a trailing newline once came back in full).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import ProcessConfig
from .errors import BackendError, bad_request
from .redact import KNOWN_SECRETS, SecretValueError, clean_header_name, clean_secret

log = logging.getLogger(__name__)

DEFAULT_MODEL = "Datadog/Toto-2.0-22m"
DEFAULT_CONTEXT_LENGTH = 2048
MIN_CONTEXT_LENGTH = 32
MAX_CONTEXT_LENGTH = 8192
DTYPES = ("float32", "bfloat16", "int8")  # int8: dynamic quantisation on the CPU, opt-in
_DEVICE = re.compile(r"^(auto|cpu|cuda(:[0-9]{1,2})?)$")
# query.limits.MAX_HORIZON_STEPS (the query model is a layer above; tests check they agree).
MAX_HORIZON_SETTING_STEPS = 8192
_DURATION_SETTING = re.compile(r"^\s*([0-9]{1,9}(?:\.[0-9]{1,6})?)\s*(ms|s|m|h|d|w)\s*$")


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


def redact_url(url: str, userinfo: str = "***") -> str:
    """The URL as messages and logs may show it: `user:password@` becomes `***@` (or is dropped
    when `userinfo` is "") and the query string, which may carry a token, is left out."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{userinfo}@{host}" if userinfo and "@" in parts.netloc else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<invalid URL>"


@dataclass(frozen=True)
class ModelSettings:
    """Which Toto checkpoint to run, where, and on which model runtime (engine/runtimes.py).
    One loaded model per distinct value."""

    checkpoint: str = DEFAULT_MODEL
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "float32"  # float32 | bfloat16
    runtime: str = "local"
    options: tuple[tuple[str, Any], ...] = ()  # the runtime's own settings (e.g. an inference server's URL)

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class RawSettings:
    """The data source's settings as Grafana sends them, free of protobuf."""

    uid: str = ""
    name: str = ""
    url: str = ""
    updated_ms: int = 0
    json_data: Mapping[str, Any] = field(default_factory=dict)
    secure: Mapping[str, str] = field(default_factory=dict)
    basic_auth_enabled: bool = False
    basic_auth_user: str = ""
    grafana_app_url: str = ""  # GF_APP_URL from the request's grafanaConfig


# A source's settings part: RawSettings → its frozen settings value, or None when not configured.
SettingsParser = Callable[[RawSettings], Any]


@dataclass(frozen=True)
class DataSourceSettings:
    uid: str = ""
    name: str = ""
    updated_ms: int = 0
    model: ModelSettings = field(default_factory=ModelSettings)
    max_series: int = 500
    default_context_length: int = DEFAULT_CONTEXT_LENGTH
    default_horizon: str = ""
    max_query_patches: int = 100_000  # model work one query may cost (querytypes/base.py QueryCost)
    parts: tuple[tuple[str, Any], ...] = ()  # (source name, its parsed settings) for configured sources

    def part(self, source: str) -> Any | None:
        return dict(self.parts).get(source)


def model_settings(json_data: Mapping[str, object], config: ProcessConfig) -> ModelSettings:
    """The admin's pins (grafana.ini, ProcessConfig) override the data source's jsonData: an
    air-gapped install can pin a local checkpoint directory for every data source."""

    def pick(key: str, default: str) -> str:
        return config.admin_pin(key) or str(json_data.get(key) or "") or default

    device = pick("device", "auto").strip().lower()
    dtype = pick("dtype", "float32").strip().lower()
    if not _DEVICE.match(device):
        raise bad_request(f"data source setting device: {device[:40]!r} is not a device; "
                          "expected auto, cpu, cuda or cuda:N")
    if dtype not in DTYPES:
        raise bad_request(f"data source setting dtype: {dtype[:40]!r} is not supported; "
                          f"expected {', '.join(DTYPES)}")
    return ModelSettings(checkpoint=pick("model", DEFAULT_MODEL), device=device, dtype=dtype)


def number_setting(json_data: Mapping[str, object], key: str, default: float, lo: float, hi: float) -> float:
    raw = json_data.get(key, default)
    if raw in ("", None):
        return default
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise bad_request(
            f"data source setting {key}: {str(raw)[:40]!r} is not a number; expected {lo:g}-{hi:g}"
        ) from None
    if not lo <= value <= hi:  # NaN fails this too
        raise bad_request(f"data source setting {key}: {value:g} is out of range; expected {lo:g}-{hi:g}")
    return value


def clean_secure(raw: RawSettings, key: str, *, header: bool = True) -> Secret:
    """A secure field as it will be sent, wrapped: surrounding whitespace stripped, refused (400
    naming the field, never the value) when it holds a line break or cannot go in an HTTP header."""
    return Secret(clean_text(key, raw.secure.get(key, ""), header=header))


def clean_text(key: str, value: object, *, header: bool = True) -> str:
    """`redact.clean_secret` with its refusal as a 400."""
    try:
        return clean_secret(key, value, header=header)
    except SecretValueError as exc:
        raise bad_request(str(exc)) from None


def header_name(raw: RawSettings, key: str) -> str:
    """An HTTP header name from jsonData, or a 400 naming the field."""
    try:
        return clean_header_name(key, raw.json_data.get(key) or "")
    except SecretValueError as exc:
        raise bad_request(str(exc)) from None


def flag_setting(json_data: Mapping[str, object], key: str) -> bool:
    """A JSON boolean; the strings "true"/"false" too. bool("false") is True, which made
    `"tlsSkipVerify": "false"` turn certificate verification off."""
    raw = json_data.get(key, False)
    if isinstance(raw, bool) or raw is None:
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false", ""):
        return raw.strip().lower() == "true"
    raise bad_request(f"data source setting {key}: {str(raw)[:40]!r} is not true or false")


def default_horizon_setting(raw: object) -> str:
    """jsonData.defaultHorizon: 1-8192 steps or a duration such as 6h, checked once here (
    "forever" or 99999 made every query without its own horizon fail with a 500)."""
    if raw in (None, ""):
        return ""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise bad_request("data source setting defaultHorizon: expected a number of steps or a duration")
    text = str(raw).strip()
    if isinstance(raw, (int, float)) or text.isdigit():
        try:
            steps = float(text)
        except (ValueError, OverflowError):
            steps = math.nan
        if not (math.isfinite(steps) and steps == int(steps) and 1 <= steps <= MAX_HORIZON_SETTING_STEPS):
            raise bad_request(
                f"data source setting defaultHorizon: {text[:40]} steps is out of range; "
                f"expected 1-{MAX_HORIZON_SETTING_STEPS} steps or a duration such as 6h"
            )
        return str(int(steps))
    if not _DURATION_SETTING.match(text):
        raise bad_request(
            f"data source setting defaultHorizon: {text[:40]!r} is not a duration such as 30m, 6h, 7d "
            "or a number of steps"
        )
    return text


def parse_settings(
    raw: RawSettings,
    config: ProcessConfig,
    parts: Mapping[str, SettingsParser] | None = None,
    model: Callable[[RawSettings, ModelSettings], ModelSettings] | None = None,
) -> DataSourceSettings:
    """Type the generic settings and each source's part; raises BackendError(400) on invalid values.
    `model` lets a model runtime entry adjust the model settings (e.g. an inference server's URL).
    Every secret seen is remembered by the process redactor, even when the settings are refused."""
    KNOWN_SECRETS.remember(v.strip() for v in raw.secure.values() if isinstance(v, str))
    try:
        result = _parse_settings(raw, config, parts, model)
    except BackendError:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        # A source's parser met a shape it did not expect (a list where a string belongs): the
        # admin's 400, never a 500 on every query. The value is not quoted (it may be a secret);
        # the traceback goes to the log (redacted) in case it is our bug.
        log.warning("data source settings could not be parsed", exc_info=True)
        raise bad_request(f"data source settings could not be read ({type(exc).__name__}); "
                          "check the data source configuration") from None
    KNOWN_SECRETS.remember_settings(result)
    return result


def _parse_settings(
    raw: RawSettings,
    config: ProcessConfig,
    parts: Mapping[str, SettingsParser] | None,
    model: Callable[[RawSettings, ModelSettings], ModelSettings] | None,
) -> DataSourceSettings:
    data = raw.json_data
    parsed = [(name, parse(raw)) for name, parse in (parts or {}).items()]
    models = model_settings(data, config)
    if model is not None:
        models = model(raw, models)
    return DataSourceSettings(
        uid=raw.uid,
        name=raw.name,
        updated_ms=raw.updated_ms,
        model=models,
        parts=tuple((name, part) for name, part in parsed if part is not None),
        max_series=int(number_setting(data, "maxSeries", 500, 1, 10000)),
        default_context_length=int(number_setting(
            data, "defaultContextLength", DEFAULT_CONTEXT_LENGTH, MIN_CONTEXT_LENGTH, MAX_CONTEXT_LENGTH
        )),
        default_horizon=default_horizon_setting(data.get("defaultHorizon")),
        max_query_patches=int(number_setting(data, "maxQueryPatches", 100_000, 1_000, 100_000_000)),
    )
