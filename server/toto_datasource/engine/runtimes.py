"""Model runtimes: where and how a model runs. One small interface, one registry entry each.

A runtime turns model settings into a loaded forecaster behind the `submit()` protocol plus what
health and the editors show about it. Built in (engine/registry.py): the local Toto runtime
(engine/local_toto.py), the remote runtime that sends model calls to an inference server over
OIP v2 (engine/remote/), and the seasonal-naive and statistical baselines. Which runtime runs a
query: a query's `model` names a baseline directly, or "toto", which runs the data source's Toto
on the runtime its settings choose (`ModelSettings.runtime`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.config import ProcessConfig
from ..core.errors import BackendError
from ..core.request import RequestContext
from ..core.settings import ModelSettings, RawSettings
from .types import Forecaster


@dataclass
class LoadedModel:
    """A ready model: `forecaster` is what queries use (the result cache in front of the model,
    for Toto); `uncached` is the model without the cache, which health probes call directly;
    `close` stops its threads and frees its memory and connections."""

    forecaster: Forecaster
    uncached: Forecaster
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

    def model_settings(self, raw: RawSettings, settings: ModelSettings, config: ProcessConfig
                       ) -> ModelSettings:
        """The data source's model settings as this runtime adjusts them (the remote runtime:
        an inference URL chooses it); unchanged when the settings are not its own."""
        ...

    def settings_problem(self, settings: ModelSettings) -> BackendError | None:
        """A fast check of the settings before the background load starts (the local runtime:
        does the configured GPU exist?), so the first query gets the configuration error
        instead of 503 "loading"."""
        ...

    def load(self, settings: ModelSettings, config: ProcessConfig, warmup: bool) -> LoadedModel: ...

    def probe(self, loaded: LoadedModel, settings: ModelSettings, ctx: RequestContext) -> Probe:
        """The loaded model's health for CheckHealth, within the check's deadline (`ctx`)."""
        ...


class NoSettings:
    """Defaults for a runtime with no settings of its own and nothing to check before loading."""

    def model_settings(self, raw: RawSettings, settings: ModelSettings, config: ProcessConfig
                       ) -> ModelSettings:
        return settings

    def settings_problem(self, settings: ModelSettings) -> BackendError | None:
        return None


def settings_adjuster(
    runtimes: Iterable[ModelRuntime], config: ProcessConfig
) -> Callable[[RawSettings, ModelSettings], ModelSettings]:
    """Every runtime's `model_settings` in registry order, as one `parse_settings(model=...)`
    callable: the service composes them without knowing any runtime's settings."""
    ordered = list(runtimes)

    def adjust(raw: RawSettings, settings: ModelSettings) -> ModelSettings:
        for runtime in ordered:
            settings = runtime.model_settings(raw, settings, config)
        return settings

    return adjust
