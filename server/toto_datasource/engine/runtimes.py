"""Model runtimes: where a forecast runs. One small interface, one registry entry each.

A runtime turns model settings into a loaded forecaster behind the `submit()` protocol plus what
health and the editors show about it. Built in (engine/registry.py): the local Toto runtime
(engine/local_toto.py) and the seasonal-naive baseline (engine/baseline.py); a remote engine
speaking the Open Inference Protocol is one more entry. Which runtime runs a query: a query's
`model` names a baseline directly, or "toto", which runs the data source's Toto on the runtime
its settings choose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.errors import BackendError
from ..core.settings import ModelSettings, RawSettings
from .types import Forecaster


@dataclass
class LoadedModel:
    """A ready model: `forecaster` is what queries use (usually the result cache in front of
    `model`); `model` is the model itself, which health probes call directly."""

    forecaster: Forecaster
    model: Forecaster
    info: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Probe:
    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class ModelRuntime(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def instant(self) -> bool:
        """True when load() is cheap and never fails (a baseline): no background loading."""
        ...

    @property
    def query_model(self) -> str | None:
        """The query `model` value that picks this runtime directly, or None for a Toto runtime
        (picked by the data source's settings when a query asks for "toto")."""
        ...

    def load(self, settings: ModelSettings, warmup: bool) -> LoadedModel: ...

    def probe(self, loaded: LoadedModel, settings: ModelSettings, deadline: float | None = None
              ) -> Probe:
        """The loaded model's health for CheckHealth, by `deadline` (time.monotonic()) when given."""
        ...


class SettingsCheckHook(Protocol):
    """Optional on a runtime: a fast check of the model settings before the background load
    starts (the local runtime: does the configured GPU exist?), so the first query gets the
    configuration error instead of 503 "loading"."""

    def settings_problem(self, settings: ModelSettings) -> BackendError | None: ...


def settings_problem(runtime: ModelRuntime, settings: ModelSettings) -> BackendError | None:
    check = getattr(runtime, "settings_problem", None)
    return check(settings) if callable(check) else None


class ModelSettingsHook(Protocol):
    """Optional on a runtime: adjust the data source's model settings, e.g. choose this runtime
    when its own settings are present (the remote runtime: an inference URL)."""

    def model_settings(
        self, raw: RawSettings, settings: ModelSettings, environ: Mapping[str, str] | None = None
    ) -> ModelSettings: ...


def settings_hook(
    runtimes: Iterable[ModelRuntime], environ: Mapping[str, str] | None = None
) -> Callable[[RawSettings, ModelSettings], ModelSettings]:
    """Every runtime's model-settings hook in registry order, as one `parse_settings(model=...)`
    callable: the service composes them without knowing any runtime's settings."""
    hooks = [b for b in runtimes if callable(getattr(b, "model_settings", None))]

    def adjust(raw: RawSettings, settings: ModelSettings) -> ModelSettings:
        for runtime in hooks:
            settings = runtime.model_settings(raw, settings, environ)  # type: ignore[attr-defined]
        return settings

    return adjust
