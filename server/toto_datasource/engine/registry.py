"""One loaded model per (checkpoint, device, dtype), shared by every data source.

Loading runs in a background thread so the plugin answers Grafana (handshake, health,
"loading" errors) while torch and the weights come in. A failed load is retried after a
minute, so fixing the checkpoint path or the network does not need a plugin restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .. import metrics
from ..errors import QueryError
from ..settings import ModelSettings
from .baseline import SeasonalNaiveForecaster
from .cache import CachingForecaster
from .scheduler import BatchingForecaster, BatchLimits
from .types import Forecaster, ForecastJob

log = logging.getLogger(__name__)
RETRY_FAILED_AFTER_S = 60.0


@dataclass
class ModelSlot:
    settings: ModelSettings
    state: str = "loading"  # loading | ready | failed
    error: str = ""
    info: dict = field(default_factory=dict)
    forecaster: BatchingForecaster | None = None  # the model itself (health checks bypass the cache)
    cached: Forecaster | None = None  # what queries use: the result cache in front of `forecaster`
    changed_at: float = field(default_factory=time.monotonic)
    ready: threading.Event = field(default_factory=threading.Event)


def warmup_shapes() -> list[tuple[int, int]]:
    """(context length, horizon) per shape bucket warmed up before the model reports ready.
    A length that is not a multiple of 32 exercises the padded (masked-attention) path too."""
    contexts = [
        int(x) for x in os.environ.get("TOTO_WARMUP_CONTEXTS", "100,512,2048").split(",") if x.strip()
    ]
    horizons = [int(x) for x in os.environ.get("TOTO_WARMUP_HORIZONS", "64,256").split(",") if x.strip()]
    return [(c, h) for c in contexts for h in horizons]


# Rows × length per model call. A GPU gains from big batches; a CPU does not: on 2 cores the
# 4m/22m checkpoints forecast the most series per second at 16-32 rows of 2048 points per call,
# 25-30 % fewer at 128 (bench/RESULTS.md, "rows per call").
GPU_MAX_BATCH_CELLS = 1024 * 2048
CPU_MAX_BATCH_CELLS = 32 * 2048


def default_limits(device: str) -> BatchLimits:
    cells = int(os.environ.get("TOTO_MAX_BATCH_CELLS", 0)) or (
        GPU_MAX_BATCH_CELLS if device.startswith("cuda") else CPU_MAX_BATCH_CELLS
    )
    window = float(os.environ.get("TOTO_BATCH_WINDOW_MS", 0)) / 1000
    return BatchLimits(
        max_cells=cells, max_queue=int(os.environ.get("TOTO_MAX_QUEUE", 1024)), window_s=window
    )


class ModelRegistry:
    def __init__(self, warmup: bool = True) -> None:
        self._slots: dict[ModelSettings, ModelSlot] = {}
        self._lock = threading.Lock()
        self._warmup = warmup
        self.baseline = SeasonalNaiveForecaster()

    def ensure(self, settings: ModelSettings) -> ModelSlot:
        """Return the slot for these settings, starting a background load when needed."""
        with self._lock:
            slot = self._slots.get(settings)
            stale = slot is not None and slot.state == "failed" and (
                time.monotonic() - slot.changed_at > RETRY_FAILED_AFTER_S
            )
            if slot is None or stale:
                slot = ModelSlot(settings)
                self._slots[settings] = slot
                threading.Thread(target=self._load, args=(slot,), name="model-loader", daemon=True).start()
            return slot

    def forecaster(self, settings: ModelSettings) -> Forecaster:
        slot = self.ensure(settings)
        if slot.state == "ready" and slot.forecaster is not None:
            return slot.cached or slot.forecaster
        if slot.state == "failed":
            raise QueryError(slot.error, 500)
        raise QueryError(
            f"the Toto model {settings.checkpoint} is loading; try again in a few seconds "
            "(or set model to seasonal-naive)",
            503,
        )

    def slots(self) -> list[ModelSlot]:
        with self._lock:
            return list(self._slots.values())

    def close(self) -> None:
        for slot in self.slots():
            if slot.forecaster is not None:
                slot.forecaster.close()
                slot.forecaster = slot.cached = None

    def _load(self, slot: ModelSlot) -> None:
        from .toto import CheckpointError, load_toto, run_forecast

        try:
            loaded = load_toto(slot.settings)

            def runner(values, mask, ids, horizon, has_missing, block):  # type: ignore[no-untyped-def]
                return run_forecast(
                    loaded, values, mask, ids, horizon,
                    has_missing_values=has_missing, decode_block_size=block,
                )

            info = loaded.describe()
            forecaster = BatchingForecaster(
                f"toto:{loaded.checkpoint}", runner, limits=default_limits(loaded.device), info=info
            )
            if self._warmup:
                started = time.perf_counter()
                for length, horizon in warmup_shapes():  # per shape bucket: allocator, kernels, both paths
                    series = np.sin(np.arange(length) / 10.0)[None, :]
                    forecaster.submit(ForecastJob(np.repeat(series, 2, axis=0), horizon)).result()
                info["warmupSeconds"] = round(time.perf_counter() - started, 3)
            cached = CachingForecaster(forecaster)
            info["cache"] = {"ttlSeconds": cached.ttl_s, "maxEntries": cached.max_entries}
            slot.forecaster, slot.cached, slot.info, slot.state = forecaster, cached, info, "ready"
            metrics.MODEL_READY.labels(loaded.checkpoint).set(1)
            log.info("model ready", extra={"kv": info})
        except CheckpointError as exc:
            slot.error, slot.state = str(exc), "failed"
            log.error(
                "model load failed",
                extra={"kv": {"checkpoint": slot.settings.checkpoint, "error": str(exc)}},
            )
        except Exception as exc:
            slot.error = f"loading Toto failed: {type(exc).__name__}: {exc}"
            slot.state = "failed"
            log.exception("model load failed")
        finally:
            slot.changed_at = time.monotonic()
            slot.ready.set()
