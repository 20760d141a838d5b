"""One loaded model per (backend, model settings), shared by every data source.

Loading runs in a background thread so the plugin answers Grafana (handshake, health,
"loading" errors) while torch and the weights come in. A failed load is retried after a
minute, so fixing the checkpoint path or the network does not need a plugin restart.
Instant backends (the baselines) load on first use, in the caller's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .. import metrics
from ..backend.errors import BackendError
from ..backend.registry import Registry
from ..backend.settings import ModelSettings
from .backends import LoadedBackend, ModelBackend, settings_problem
from .baseline import SeasonalNaiveBackend
from .local_toto import LocalTotoBackend
from .remote import RemoteBackend
from .statistical import StatisticalBackend
from .types import Forecaster

log = logging.getLogger(__name__)
RETRY_FAILED_AFTER_S = 60.0


def builtin_backends() -> Registry[ModelBackend]:
    """The model backends built in. A new backend is one module and one entry here."""
    return Registry("model backend", "backend", [
        LocalTotoBackend(), RemoteBackend(), SeasonalNaiveBackend(), StatisticalBackend(),
    ])


class SlotState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass
class ModelSlot:
    backend: ModelBackend
    settings: ModelSettings
    state: SlotState = SlotState.LOADING
    error: BackendError | None = None
    loaded: LoadedBackend | None = None
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
    def __init__(self, warmup: bool = True, backends: Registry[ModelBackend] | None = None) -> None:
        self._slots: dict[tuple[str, ModelSettings], ModelSlot] = {}
        self._lock = threading.Lock()
        self._warmup = warmup
        self.backends = backends or builtin_backends()

    def backend_for(self, settings: ModelSettings) -> ModelBackend:
        return self.backends.get(settings.backend)

    def by_query_model(self, query_model: str) -> ModelBackend | None:
        """The backend a query's `model` names directly (a baseline), or None for "toto"."""
        return next((b for b in self.backends.values() if b.query_model == query_model), None)

    def query_models(self) -> list[str]:
        """What a query's `model` may say: "toto" and every directly selectable backend."""
        return ["toto", *(b.query_model for b in self.backends.values() if b.query_model)]

    def ensure(self, settings: ModelSettings, backend: ModelBackend | None = None) -> ModelSlot:
        """Return the slot for these settings, starting a load when needed. A configuration the
        backend can refuse at once (a GPU that does not exist) fails the slot before any load."""
        backend = backend or self.backend_for(settings)
        key = (backend.name, settings if not backend.instant else ModelSettings(backend=backend.name))
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None and not self._stale(slot):
                return slot
        problem = None if backend.instant else settings_problem(backend, key[1])  # may import torch
        with self._lock:
            slot = self._slots.get(key)
            if slot is None or self._stale(slot):
                slot = self._slots[key] = ModelSlot(backend, key[1])
                if problem is not None:
                    slot.error, slot.state = problem, SlotState.FAILED
                    slot.ready.set()
                    log.error("model settings refused",
                              extra={"kv": {"checkpoint": key[1].checkpoint, "error": problem.message}})
                elif backend.instant:
                    self._load(slot)
                else:
                    loader = threading.Thread(target=self._load, args=(slot,), name="loader", daemon=True)
                    loader.start()
            return slot

    @staticmethod
    def _stale(slot: ModelSlot) -> bool:
        """A failed slot is retried after a while (the checkpoint or the network may be fixed)."""
        return slot.state == SlotState.FAILED and time.monotonic() - slot.changed_at > RETRY_FAILED_AFTER_S

    def forecaster(self, settings: ModelSettings, backend: ModelBackend | None = None) -> Forecaster:
        slot = self.ensure(settings, backend)
        if slot.state == SlotState.READY and slot.loaded is not None:
            return slot.loaded.forecaster
        if slot.state == SlotState.FAILED and slot.error is not None:
            raise slot.error
        raise BackendError(
            f"the Toto model {settings.checkpoint} is loading; try again in a few seconds "
            "(or set model to statistical)",
            503,
        )

    def slots(self) -> list[ModelSlot]:
        with self._lock:
            return list(self._slots.values())

    def close(self) -> None:
        for slot in self.slots():
            if slot.loaded is not None:
                slot.loaded.close()
                slot.loaded = None

    def _load(self, slot: ModelSlot) -> None:
        try:
            slot.loaded = slot.backend.load(slot.settings, self._warmup)
            slot.state = SlotState.READY
            metrics.MODEL_READY.labels(slot.settings.checkpoint).set(1)
            log.info("model ready", extra={"kv": slot.loaded.info})
        except BackendError as exc:
            slot.error, slot.state = exc, SlotState.FAILED
            log.error("model load failed",
                      extra={"kv": {"checkpoint": slot.settings.checkpoint, "error": exc.message}})
        except Exception as exc:
            slot.error = BackendError(f"loading Toto failed: {type(exc).__name__}: {exc}", 500)
            slot.state = SlotState.FAILED
            log.exception("model load failed")
        finally:
            slot.changed_at = time.monotonic()
            slot.ready.set()
