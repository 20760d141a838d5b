"""The in-process Toto runtime: load a checkpoint, warm it up, batch queries onto it through the
one Toto runner (engine/toto_runner.py) that every inference server runs too.

`import toto2` costs ~7 s and ~1 GB, so engine/toto.py is imported only from the loader thread.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING

import numpy as np

from ..core import cgroup
from ..core.config import ProcessConfig
from ..core.errors import BackendError
from ..core.request import RequestContext
from ..core.settings import ModelSettings, RawSettings
from .cache import CachingForecaster
from .devices import device_problem
from .runtimes import LoadedModel, Probe
from .scheduler import BatchingForecaster, BatchLimits
from .threads import governed, governor_for, pin_threads
from .toto_runner import max_batch_cells, toto_runner
from .types import ForecastJob

if TYPE_CHECKING:
    from .toto import TotoModel

# A bulk-only call while panels are being looked at (engine/scheduler.py BatchLimits): 8 rows of
# 2048 points, a quarter of a full CPU call.
CPU_SLICE_CELLS = 8 * 2048
PROBE_TIMEOUT_S = 60.0
# Memory one CPU model call takes per cell (row × padded point), with room to spare: the peak RSS
# a call added was 0.9 KiB a cell at 32 × 2048 and 1.4 KiB at 64 × 2048 for the 22m checkpoint,
# 0.4-0.7 KiB for 4m (VmHWM around one run_batch after a warm-up call, horizon 256).
BYTES_PER_CELL = 4096
# What the request path (parsing, frames, a burst of RPC threads) keeps beside the model's calls.
MEMORY_RESERVE_FRACTION = 0.15
MIN_MEMORY_RESERVE = 128 << 20


def warmup_shapes(config: ProcessConfig) -> list[tuple[int, int]]:
    """(context length, horizon) per shape bucket warmed up before the model reports ready.
    A length that is not a multiple of 32 exercises the padded (masked-attention) path too."""
    return [(c, h) for c in config.warmup_contexts for h in config.warmup_horizons]


def memory_capped_cells(cells: int, limit: int | None, in_use: int | None) -> int:
    """`cells` lowered so that one model call fits in what the cgroup's memory limit leaves after
    what is in use now (the model loaded) and a reserve for the request path; never below one row
    of 2048 points (a single series always runs: the scheduler splits bigger calls)."""
    if limit is None or in_use is None:
        return cells
    reserve = max(MIN_MEMORY_RESERVE, int(limit * MEMORY_RESERVE_FRACTION))
    fits = (limit - in_use - reserve) // BYTES_PER_CELL
    return int(max(2048, min(cells, fits)))


def default_limits(device: str, config: ProcessConfig) -> BatchLimits:
    """The scheduler's limits; on a CPU the batch cap also fits the container's memory limit
    (config.resources, read at start) beside what the cgroup uses once the model is loaded."""
    gpu = device.startswith("cuda")
    cells = config.max_batch_cells or max_batch_cells(device)
    if not gpu:
        in_use = cgroup.memory_working_set(cgroup.find_cgroup())
        cells = memory_capped_cells(cells, config.resources.memory_limit_bytes, in_use)
    slice_cells = config.slice_cells if config.slice_cells >= 0 else (0 if gpu else CPU_SLICE_CELLS)
    return BatchLimits(max_cells=cells, max_queue=config.max_queue, slice_cells=slice_cells)


def warm_up(forecaster: BatchingForecaster, config: ProcessConfig) -> float:
    """One job per shape bucket (allocator, kernels, padded and unpadded paths); seconds taken."""
    started = time.perf_counter()
    for length, horizon in warmup_shapes(config):
        series = np.sin(np.arange(length) / 10.0)[None, :]
        forecaster.submit(ForecastJob(np.repeat(series, 2, axis=0), horizon)).result()
    return time.perf_counter() - started


def free_device_memory(loaded: TotoModel) -> None:
    """Drop the weights now rather than at the next garbage collection, and hand a GPU's cached
    blocks back to the driver, so a replaced checkpoint does not keep its memory."""
    import gc

    loaded.model = None
    gc.collect()
    if loaded.device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


class ProbeTimeout(Exception):
    pass


def probe_forecast(model: object, ctx: RequestContext) -> float:
    """Milliseconds for a tiny test forecast straight on the model (the cache is bypassed), waited
    for at most PROBE_TIMEOUT_S or what is left of the check's deadline; a job still queued then
    is cancelled."""
    started = time.perf_counter()
    budget = ctx.budget(PROBE_TIMEOUT_S)
    wait_s = budget.seconds
    future = model.submit(ForecastJob([[float(i % 7) for i in range(64)]], 32))  # type: ignore[attr-defined]
    try:
        future.result(timeout=wait_s)
    except FutureTimeout:
        future.cancel()
        why = "Grafana's deadline for the health check" if budget.capped_by_request else "the probe's limit"
        raise ProbeTimeout(f"did not finish within {wait_s:.1f}s ({why}); is the model busy?") from None
    return (time.perf_counter() - started) * 1000


class LocalTotoRuntime:
    name = "local"
    instant = False
    query_model = None

    def model_settings(self, raw: RawSettings, settings: ModelSettings, config: ProcessConfig
                       ) -> ModelSettings:
        return settings  # the generic model settings (checkpoint, device, dtype) are its own

    def settings_problem(self, settings: ModelSettings) -> BackendError | None:
        """Checked before the load starts, so the first query gets the 400, not 503 "loading"."""
        return device_problem(settings.device)

    def load(self, settings: ModelSettings, config: ProcessConfig, warmup: bool) -> LoadedModel:
        from .toto import CheckpointError, load_toto

        try:
            loaded = load_toto(settings, fold=config.fold)
        except CheckpointError as exc:
            # The admin's configuration (a path, a device, a dtype) is a 400; a hub id that cannot be
            # fetched is the hub's failure.
            path = settings.checkpoint
            hub = not path.startswith(("/", ".", "~")) and not os.path.isdir(path)
            raise BackendError(str(exc), 502, "downstream") if hub else BackendError(str(exc), 400) from None
        info = loaded.describe()
        pin_threads(config)
        governor = governor_for(loaded.device, config)
        if governor is not None:
            info["intraOpThreads"] = f"adaptive, 1-{governor.cores} (the container's cores others leave free)"
        limits = default_limits(loaded.device, config)
        info["maxBatchCells"] = limits.max_cells
        model = BatchingForecaster(
            f"toto:{loaded.checkpoint}", governed(toto_runner(loaded), governor), limits=limits, info=info,
        )
        if warmup:
            info["warmupSeconds"] = round(warm_up(model, config), 3)
        cached = CachingForecaster(model, config.cache_ttl_s, config.cache_max)
        info["cache"] = {"ttlSeconds": cached.ttl_s, "maxEntries": cached.max_entries}

        def close() -> None:
            model.close()
            cached.clear()
            free_device_memory(loaded)

        return LoadedModel(cached, model, info, close=close)

    def probe(self, loaded: LoadedModel, settings: ModelSettings, ctx: RequestContext) -> Probe:
        try:
            latency_ms = probe_forecast(loaded.uncached, ctx)
        except Exception as exc:
            return Probe(False, f"the model is loaded but a test forecast failed: {exc}")
        info = loaded.info
        message = (
            f"Toto 2.0 ready: {info['checkpoint']}, {info['parameters'] / 1e6:.1f}M parameters, "
            f"{info['device']} ({info['deviceName']}), {info['dtype']}; test forecast {latency_ms:.0f} ms"
        )
        if info.get("randomWeights"):
            message += " — WARNING: random-weight test checkpoint, not a forecasting model"
        return Probe(True, message, {"testForecastMs": round(latency_ms, 1)})
