"""The process's config: every knob, read once at start, each with its default and why.

Config is the process's (one value for its lifetime); settings are one data source's, sent by
Grafana with every request. A plugin that Grafana starts gets its config from the environment
Grafana gives it: `[plugin.toto-forecast-datasource] key = value` in grafana.ini arrives as
`GF_PLUGIN_<KEY>`, and Grafana adds `GF_EDITION`, `GF_VERSION`. A server started on its own (a
sidecar, `toto-datasource serve`) receives none of those: it reads the same knobs from its own
environment as `TOTO_<KEY>` (or flags that set them). Per-request facts (`GF_APP_URL`, feature
toggles) are never config: they come with each request's `grafanaConfig`.

`KNOBS` is the one list; the README's configuration table is checked against it by a test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import cgroup
from .resources import Resources, read_resources

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A knob with a value it cannot take: the message names the variable and what it accepts."""


def parse_bool(name: str, text: str) -> bool:
    """The one boolean parser: 1/true/yes/on and 0/false/no/off, any case; else ConfigError."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={text[:40]!r}: expected one of {'/'.join(TRUE_WORDS + FALSE_WORDS)}")


def _int(lo: int, hi: int) -> Callable[[str, str], int]:
    def parse(name: str, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ConfigError(f"{name}={text[:40]!r}: expected a whole number {lo}-{hi}") from None
        if not lo <= value <= hi:
            raise ConfigError(f"{name}={value}: expected {lo}-{hi}")
        return value

    return parse


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(f"{name}={text[:40]!r}: expected a number of seconds") from None
    if not 0 <= value <= 366 * 86400:  # NaN fails this too
        raise ConfigError(f"{name}={value}: expected 0 to a year of seconds")
    return value


def _ints(name: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{name}={text[:40]!r}: expected whole numbers separated by commas") from None
    if any(not 1 <= v <= 8192 for v in values):
        raise ConfigError(f"{name}={text[:40]!r}: each value must be 1-8192")
    return values


def _text(name: str, text: str) -> str:
    return text.strip()


def _secret(name: str, text: str) -> str:
    return text.strip()  # wrapped in core.settings.Secret where it is used


@dataclass(frozen=True)
class Knob:
    key: str  # the grafana.ini key under [plugin.toto-forecast-datasource]
    default: Any
    parse: Callable[[str, str], Any]
    why: str
    names: tuple[str, ...] = ()  # other environment names, read first (Grafana's own: GF_EDITION)

    def environment_names(self) -> tuple[str, ...]:
        key = self.key.upper()
        return (*self.names, f"GF_PLUGIN_{key}", f"TOTO_{key}")


def _knobs() -> tuple[Knob, ...]:
    k = Knob
    return (
        # Admin pins: override every data source's settings of the same name.
        k("model", "", _text, "Toto checkpoint for every data source (hub id or local directory)"),
        k("device", "", _text, "auto, cpu, cuda or cuda:N for every data source"),
        k("dtype", "", _text, "float32, bfloat16 (GPU) or int8 (CPU, approximate) for every data source"),
        k("inference_url", "", _text, "send every data source's model calls to this OIP v2 server"),
        k("inference_model", "", _text, "the model name on that server"),
        k("inference_token", "", _secret, "bearer token for that server (never logged)"),
        k("inference_tls_ca_cert", "", _secret, "PEM CA certificate for a grpcs:// server"),
        k("inference_tls_skip_verify", False, parse_bool, "refused when true: gRPC cannot skip "
          "verification; give the CA certificate"),
        # Grafana's own facts about itself.
        k("edition", "", _text, "Grafana's edition (\"Open Source\", \"Enterprise\"; set by Grafana as "
          "GF_EDITION): only on open source does a missing permission search let org roles decide who reads "
          "through the grafana source; unknown refuses", names=("GF_EDITION",)),
        # The process.
        k("log_level", "info", _text, "debug, info, warn or error"),
        k("max_rpc_threads", 256, _int(10, 4096), "threads answering RPCs; data calls get all but 8, "
          "past that a query is answered 503 busy at once"),
        k("cpu_slots", 0, _int(0, 1024), "request threads running Python at once; 0 = one per core of "
          "the container (cgroup quota and cpuset)"),
        k("torch_threads", 0, _int(0, 1024), "fixed intra-op threads of a CPU model; 0 = adaptive, the "
          "cores other processes leave free"),
        k("max_batch_cells", 0, _int(0, 1 << 31), "rows × points per model call; 0 = 1024 × 2048 on a "
          "GPU, 32 × 2048 on a CPU (bigger CPU batches are slower per series)"),
        k("slice_cells", -1, _int(-1, 1 << 31), "rows × points of a bulk-only call while one-series "
          "panels wait; -1 = 8 × 2048 on a CPU and off on a GPU, 0 = off"),
        k("max_queue", 1024, _int(1, 1 << 20), "forecast jobs waiting per model before 503 "
          "(backpressure)"),
        k("cache_ttl_s", 30.0, _seconds, "seconds a forecast is reused for the same history, horizon "
          "and options (a dashboard refresh); 0 = off"),
        k("cache_max", 256, _int(0, 1 << 20), "forecasts kept in that cache"),
        k("model_idle_s", 0.0, _seconds, "close a loaded model unused this long, even when a data "
          "source still names it (reloaded on its next query); 0 = keep it"),
        k("warmup_contexts", (100, 512, 2048), _ints, "context lengths run once before a local model "
          "reports ready"),
        k("warmup_horizons", (64, 256), _ints, "horizons run once before a local model reports ready"),
        k("fold", True, parse_bool, "fold toto2's unit-scaling constants into the weights (exact, "
          "checked at load; 1.2-1.8× the series/s of the 22m model on a CPU, bench/model_speed.py)"),
        k("remote_concurrency", 0, _int(0, 256), "calls in flight per inference server; 0 = what the "
          "server advertises, else 4"),
        k("malloc_trim", True, parse_bool, "return freed heap to the OS when the RPC pool goes idle "
          "after a burst (glibc)"),
    )


KNOBS: tuple[Knob, ...] = _knobs()


@dataclass(frozen=True)
class ProcessConfig:
    """Every knob's value. `ProcessConfig()` is the defaults (no environment read): tests and
    embedders build it explicitly; entry points call `from_environment()` once."""

    model: str = ""
    device: str = ""
    dtype: str = ""
    inference_url: str = ""
    inference_model: str = ""
    inference_token: str = field(default="", repr=False)
    inference_tls_ca_cert: str = field(default="", repr=False)
    inference_tls_skip_verify: bool = False
    edition: str = ""
    log_level: str = "info"
    max_rpc_threads: int = 256
    cpu_slots: int = 0
    torch_threads: int = 0
    max_batch_cells: int = 0
    slice_cells: int = -1
    max_queue: int = 1024
    cache_ttl_s: float = 30.0
    cache_max: int = 256
    model_idle_s: float = 0.0
    warmup_contexts: tuple[int, ...] = (100, 512, 2048)
    warmup_horizons: tuple[int, ...] = (64, 256)
    fold: bool = True
    remote_concurrency: int = 0
    malloc_trim: bool = True
    resources: Resources = field(default_factory=Resources)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None,
                         resources: Resources | None = None) -> ProcessConfig:
        """Read every knob (first environment name set wins); raises ConfigError naming the
        variable. `resources` defaults to what this process's cgroup and affinity allow."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for knob in KNOBS:
            for name in knob.environment_names():
                text = env.get(name, "")
                if text.strip():
                    values[knob.key] = knob.parse(name, text)
                    break
        return cls(**values, resources=resources if resources is not None else read_resources())

    def with_values(self, **values: Any) -> ProcessConfig:
        return replace(self, **values)

    @property
    def cores(self) -> float:
        """Cores this process may use (the container's, not the host's; a quota may be a fraction)."""
        return self.resources.cores

    @property
    def cpu_slot_count(self) -> int:
        """TOTO_CPU_SLOTS, else one per core the process may use (a 2.5-core quota: 3 slots)."""
        return self.cpu_slots or cgroup.whole_cores(self.cores)

    def admin_pin(self, key: str) -> str:
        """An admin's grafana.ini pin for a data-source setting (model, device, inference_url…)."""
        return str(getattr(self, key))

