"""Model backends: where a forecast runs. One small interface, one registry entry each.

A backend turns model settings into a loaded forecaster behind the `submit()` protocol plus what
health and the editors show about it. Built in (engine/registry.py): the local Toto runtime
(engine/local_toto.py) and the seasonal-naive baseline (engine/baseline.py); a remote engine
speaking the Open Inference Protocol is one more entry. Which backend runs a query: a query's
`model` names a baseline directly, or "toto", which runs the data source's Toto on the backend
its settings choose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..backend.errors import BackendError
from ..backend.settings import ModelSettings, RawSettings
from .types import Forecaster


@dataclass
class LoadedBackend:
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


class ModelBackend(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def instant(self) -> bool:
        """True when load() is cheap and never fails (a baseline): no background loading."""
        ...

    @property
    def query_model(self) -> str | None:
        """The query `model` value that picks this backend directly, or None for a Toto backend
        (picked by the data source's settings when a query asks for "toto")."""
        ...

    def load(self, settings: ModelSettings, warmup: bool) -> LoadedBackend: ...

    def probe(self, loaded: LoadedBackend, settings: ModelSettings, deadline: float | None = None
              ) -> Probe:
        """The loaded model's health for CheckHealth, by `deadline` (time.monotonic()) when given."""
        ...


class SettingsCheckHook(Protocol):
    """Optional on a backend: a fast check of the model settings before the background load
    starts (the local backend: does the configured GPU exist?), so the first query gets the
    configuration error instead of 503 "loading"."""

    def settings_problem(self, settings: ModelSettings) -> BackendError | None: ...


def settings_problem(backend: ModelBackend, settings: ModelSettings) -> BackendError | None:
    check = getattr(backend, "settings_problem", None)
    return check(settings) if callable(check) else None


class ModelSettingsHook(Protocol):
    """Optional on a backend: adjust the data source's model settings, e.g. choose this backend
    when its own settings are present (the remote backend: an inference URL)."""

    def model_settings(
        self, raw: RawSettings, settings: ModelSettings, environ: Mapping[str, str] | None = None
    ) -> ModelSettings: ...


def settings_hook(
    backends: Iterable[ModelBackend], environ: Mapping[str, str] | None = None
) -> Callable[[RawSettings, ModelSettings], ModelSettings]:
    """Every backend's model-settings hook in registry order, as one `parse_settings(model=...)`
    callable: the service composes them without knowing any backend's settings."""
    hooks = [b for b in backends if callable(getattr(b, "model_settings", None))]

    def adjust(raw: RawSettings, settings: ModelSettings) -> ModelSettings:
        for backend in hooks:
            settings = backend.model_settings(raw, settings, environ)  # type: ignore[attr-defined]
        return settings

    return adjust
