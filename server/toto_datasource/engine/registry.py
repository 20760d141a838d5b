"""One loaded model per (runtime, model settings), shared by every data source.

Loading runs in a background thread so the plugin answers Grafana (handshake, health,
"loading" errors) while torch and the weights come in. A failed load is retried after a
minute, so fixing the checkpoint path or the network does not need a plugin restart.
Instant runtimes (the baselines) load on first use, in the caller's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .. import metrics
from ..core.errors import BackendError
from ..core.registry import Registry
from ..core.settings import ModelSettings
from .baseline import SeasonalNaiveRuntime
from .local_toto import LocalTotoRuntime
from .remote import RemoteRuntime
from .runtimes import LoadedModel, ModelRuntime, settings_problem
from .statistical import StatisticalRuntime
from .types import Forecaster

log = logging.getLogger(__name__)
RETRY_FAILED_AFTER_S = 60.0


def builtin_runtimes() -> Registry[ModelRuntime]:
    """The model runtimes built in. A new runtime is one module and one entry here."""
    return Registry("model runtime", "runtime", [
        LocalTotoRuntime(), RemoteRuntime(), SeasonalNaiveRuntime(), StatisticalRuntime(),
    ])


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass
class ModelHandle:
    runtime: ModelRuntime
    settings: ModelSettings
    state: ModelState = ModelState.LOADING
    error: BackendError | None = None
    loaded: LoadedModel | None = None
    changed_at: float = field(default_factory=time.monotonic)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def info(self) -> dict[str, Any]:
        return self.loaded.info if self.loaded is not None else {}

    @property
    def forecaster(self) -> Forecaster | None:
        """The model itself (health checks bypass the cache)."""
        return self.loaded.model if self.loaded is not None else None


class ModelRegistry:
    def __init__(self, warmup: bool = True, runtimes: Registry[ModelRuntime] | None = None) -> None:
        self._handles: dict[tuple[str, ModelSettings], ModelHandle] = {}
        self._lock = threading.Lock()
        self._warmup = warmup
        self.runtimes = runtimes or builtin_runtimes()

    def runtime_for(self, settings: ModelSettings) -> ModelRuntime:
        return self.runtimes.get(settings.runtime)

    def by_query_model(self, query_model: str) -> ModelRuntime | None:
        """The runtime a query's `model` names directly (a baseline), or None for "toto"."""
        return next((b for b in self.runtimes.values() if b.query_model == query_model), None)

    def query_models(self) -> list[str]:
        """What a query's `model` may say: "toto" and every directly selectable runtime."""
        return ["toto", *(b.query_model for b in self.runtimes.values() if b.query_model)]

    def ensure(self, settings: ModelSettings, runtime: ModelRuntime | None = None) -> ModelHandle:
        """Return the handle for these settings, starting a load when needed. A configuration the
        runtime can refuse at once (a GPU that does not exist) fails the handle before any load."""
        runtime = runtime or self.runtime_for(settings)
        key = (runtime.name, settings if not runtime.instant else ModelSettings(runtime=runtime.name))
        with self._lock:
            handle = self._handles.get(key)
            if handle is not None and not self._stale(handle):
                return handle
        problem = None if runtime.instant else settings_problem(runtime, key[1])  # may import torch
        with self._lock:
            handle = self._handles.get(key)
            if handle is None or self._stale(handle):
                handle = self._handles[key] = ModelHandle(runtime, key[1])
                if problem is not None:
                    handle.error, handle.state = problem, ModelState.FAILED
                    handle.ready.set()
                    log.error("model settings refused",
                              extra={"kv": {"checkpoint": key[1].checkpoint, "error": problem.message}})
                elif runtime.instant:
                    self._load(handle)
                else:
                    loader = threading.Thread(target=self._load, args=(handle,), name="loader", daemon=True)
                    loader.start()
            return handle

    @staticmethod
    def _stale(handle: ModelHandle) -> bool:
        """A failed handle is retried after a while (the checkpoint or the network may be fixed)."""
        age = time.monotonic() - handle.changed_at
        return handle.state == ModelState.FAILED and age > RETRY_FAILED_AFTER_S

    def forecaster(self, settings: ModelSettings, runtime: ModelRuntime | None = None) -> Forecaster:
        handle = self.ensure(settings, runtime)
        if handle.state == ModelState.READY and handle.loaded is not None:
            return handle.loaded.forecaster
        if handle.state == ModelState.FAILED and handle.error is not None:
            raise handle.error
        raise BackendError(
            f"the Toto model {settings.checkpoint} is loading; try again in a few seconds "
            "(or set model to statistical)",
            503,
        )

    def handles(self) -> list[ModelHandle]:
        with self._lock:
            return list(self._handles.values())

    def close(self) -> None:
        for handle in self.handles():
            if handle.loaded is not None:
                handle.loaded.close()
                handle.loaded = None

    def _load(self, handle: ModelHandle) -> None:
        try:
            handle.loaded = handle.runtime.load(handle.settings, self._warmup)
            handle.state = ModelState.READY
            metrics.MODEL_READY.labels(handle.settings.checkpoint).set(1)
            log.info("model ready", extra={"kv": handle.loaded.info})
        except BackendError as exc:
            handle.error, handle.state = exc, ModelState.FAILED
            log.error("model load failed",
                      extra={"kv": {"checkpoint": handle.settings.checkpoint, "error": exc.message}})
        except Exception as exc:
            handle.error = BackendError(f"loading Toto failed: {type(exc).__name__}: {exc}", 500)
            handle.state = ModelState.FAILED
            log.exception("model load failed")
        finally:
            handle.changed_at = time.monotonic()
            handle.ready.set()
