"""One loaded model per (runtime, model settings), shared by every data source, and let go when
no data source needs it any more.

Loading runs in a background thread so the plugin answers Grafana (handshake, health,
"loading" errors) while torch and the weights come in. A failed load is retried after a
minute, so fixing the checkpoint path or the network does not need a plugin restart.
Instant runtimes (the baselines) load on first use, in the caller's thread, and are kept.

Letting go: each data-source instance retains its model settings while it is current and
releases them when it is disposed (a newer settings version, a rotated inference token, another
checkpoint); the last release closes the model — its scheduler thread stops, its gRPC channel
closes, its weights (and GPU memory) are freed. With `model_idle_s` set, a model nobody queried
for that long is closed too, even when a data source still names it; its next query loads it
again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .. import metrics
from ..core.config import ProcessConfig
from ..core.errors import BackendError
from ..core.registry import Registry
from ..core.settings import ModelSettings
from .baseline import SeasonalNaiveRuntime
from .local_runtime import local_toto_runtime
from .remote import RemoteRuntime
from .runtimes import LoadedModel, ModelRuntime
from .statistical import StatisticalRuntime
from .types import Forecaster

log = logging.getLogger(__name__)
RETRY_FAILED_AFTER_S = 60.0

Key = tuple[str, ModelSettings]


def builtin_runtimes() -> Registry[ModelRuntime]:
    """The model runtimes built in. A new runtime is one module and one entry here."""
    return Registry("model runtime", "runtime", [
        local_toto_runtime(), RemoteRuntime(), SeasonalNaiveRuntime(), StatisticalRuntime(),
    ])


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass
class ModelHandle:
    """One model's state: loading, ready (with the loaded model) or failed (with the error)."""

    runtime: ModelRuntime
    settings: ModelSettings
    state: ModelState = ModelState.LOADING
    error: BackendError | None = None
    loaded: LoadedModel | None = None
    changed_at: float = field(default_factory=time.monotonic)
    used_at: float = field(default_factory=time.monotonic)
    ready: threading.Event = field(default_factory=threading.Event)
    closed: bool = False

    @property
    def info(self) -> dict[str, Any]:
        return self.loaded.info if self.loaded is not None else {}

    def close(self) -> None:
        """Stop the model's threads and free what it holds; a load still running closes its
        result when it finishes."""
        self.closed = True
        loaded, self.loaded = self.loaded, None
        if loaded is not None:
            loaded.close()


class ModelRegistry:
    def __init__(self, config: ProcessConfig | None = None, *, warmup: bool = True,
                 runtimes: Registry[ModelRuntime] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config if config is not None else ProcessConfig.from_environment()
        self.runtimes = runtimes or builtin_runtimes()
        self.clock = clock  # measures idleness (`model_idle_s`)
        self._warmup = warmup
        self._handles: dict[Key, ModelHandle] = {}
        self._retained: Counter[Key] = Counter()
        self._lock = threading.Lock()

    def runtime_for(self, settings: ModelSettings) -> ModelRuntime:
        return self.runtimes.get(settings.runtime)

    def by_query_model(self, query_model: str) -> ModelRuntime | None:
        """The runtime a query's `model` names directly (a baseline), or None for "toto"."""
        return next((r for r in self.runtimes.values() if r.query_model == query_model), None)

    def query_models(self) -> list[str]:
        """What a query's `model` may say: "toto" and every directly selectable runtime."""
        return ["toto", *(r.query_model for r in self.runtimes.values() if r.query_model)]

    def _key(self, settings: ModelSettings, runtime: ModelRuntime) -> Key:
        return runtime.name, (ModelSettings(runtime=runtime.name) if runtime.instant else settings)

    # -- loading ----------------------------------------------------------------------------
    def ensure(self, settings: ModelSettings, runtime: ModelRuntime | None = None) -> ModelHandle:
        """The handle for these settings, starting a load when needed. A configuration the
        runtime can refuse at once (a GPU that does not exist) fails the handle before any load."""
        runtime = runtime or self.runtime_for(settings)
        key = self._key(settings, runtime)
        self._close_idle()
        with self._lock:
            handle = self._handles.get(key)
            if handle is not None and not self._stale(handle):
                handle.used_at = self.clock()
                return handle
        problem = None if runtime.instant else runtime.settings_problem(key[1])  # may import torch
        with self._lock:
            handle = self._handles.get(key)
            if handle is None or self._stale(handle):
                handle = self._handles[key] = ModelHandle(runtime, key[1], used_at=self.clock())
                if problem is not None:
                    handle.error, handle.state = problem, ModelState.FAILED
                    handle.ready.set()
                    log.error("model settings refused",
                              extra={"kv": {"checkpoint": key[1].checkpoint, "error": problem.message}})
                elif runtime.instant:
                    self._load(handle)
                else:
                    threading.Thread(target=self._load, args=(handle,), name="loader", daemon=True).start()
            return handle

    @staticmethod
    def _stale(handle: ModelHandle) -> bool:
        """A failed handle is retried after a while (the checkpoint or the network may be fixed)."""
        age = time.monotonic() - handle.changed_at
        return handle.state == ModelState.FAILED and age > RETRY_FAILED_AFTER_S

    def forecaster(self, settings: ModelSettings, runtime: ModelRuntime | None = None) -> Forecaster:
        handle = self.ensure(settings, runtime)
        loaded = handle.loaded
        if handle.state == ModelState.READY and loaded is not None:
            return loaded.forecaster
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

    # -- letting go -------------------------------------------------------------------------
    def _retained_key(self, settings: ModelSettings) -> Key | None:
        """The key a retain counts under, or None for what is never let go (a baseline)."""
        if settings.runtime not in self.runtimes:
            return None
        runtime = self.runtimes.get(settings.runtime)
        return None if runtime.instant else self._key(settings, runtime)

    def retain(self, settings: ModelSettings) -> None:
        """A data source's current settings version names this model: keep it while retained."""
        if (key := self._retained_key(settings)) is not None:
            with self._lock:
                self._retained[key] += 1

    def release(self, settings: ModelSettings) -> None:
        """Undo one `retain`; the last release closes the model."""
        if (key := self._retained_key(settings)) is None:
            return
        with self._lock:
            self._retained[key] -= 1
            if self._retained[key] > 0:
                return
            del self._retained[key]
            handle = self._handles.pop(key, None)
        if handle is not None:
            self._dispose(handle, "no data source uses it any more")

    def _close_idle(self) -> None:
        idle_s = self.config.model_idle_s
        if idle_s <= 0:
            return
        now = self.clock()
        with self._lock:
            idle = [k for k, h in self._handles.items()
                    if not h.runtime.instant and h.state == ModelState.READY and now - h.used_at > idle_s]
            handles = [self._handles.pop(k) for k in idle]
        for handle in handles:
            self._dispose(handle, f"unused for {idle_s:g}s")

    def _dispose(self, handle: ModelHandle, why: str) -> None:
        log.info("closing a model", extra={"kv": {"checkpoint": handle.settings.checkpoint, "why": why}})
        metrics.MODEL_READY.labels(handle.settings.checkpoint).set(0)
        handle.close()

    def close(self) -> None:
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
            self._retained.clear()
        for handle in handles:
            handle.close()

    def _load(self, handle: ModelHandle) -> None:
        try:
            loaded = handle.runtime.load(handle.settings, self.config, self._warmup)
            if handle.closed:  # let go while it loaded: nobody will use it
                loaded.close()
                return
            handle.loaded, handle.state = loaded, ModelState.READY
            metrics.MODEL_READY.labels(handle.settings.checkpoint).set(1)
            log.info("model ready", extra={"kv": loaded.info})
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
