"""The one Toto runner: PreparedBatch → quantiles (9, B, V, horizon) float64 in data units.

Every engine runs Toto through it, so they return the same numbers for every input:
  * the in-process runtime (engine/local_toto.py): `toto_runner(loaded)`;
  * every inference server — serve-model, Ray Serve, KServe, Triton — through `ServingEngine`
    (serving/engine.py): `toto_runner(loaded)`;
  * the remote runtime's client side (engine/remote/runtime.py): `in_data_units(RemoteRunner)`.

`toto_runner` is `in_data_units` around engine/toto.py's `run_batch`: one `forecast()` call with
FORECAST_KWARGS (engine/prepare.py), the matmuls autocast for a bf16 model while the target stays
float32, and the KV cache that block decoding leaves on the model dropped after each call.

Scale below the floor: toto2's causal scaler floors its scale at 1e-6, so a series of magnitude
1e-10 came back around ±2e-8 (4m checkpoint) — not in data units. Rows whose largest observed
|value| is below MIN_MAGNITUDE are multiplied by a power of two into [1, 2) before the call and
the quantiles divided back after. Toto is scale-equivariant above the floor, so this is the
direct call on the rescaled input, and a power of two makes the round trip itself exact.

Where it happens for a remote model: on both sides. The plugin rescales before sending, so any
engine that implements docs/REMOTE_INFERENCE.md's contract (which says nothing of magnitudes)
answers in data units; our inference servers apply the same rule, so a caller other than the
plugin gets data units too. Applying it twice changes nothing (a rescaled row's peak is in
[1, 2), above MIN_MAGNITUDE), so the numbers are the same whichever side rescales: the wire did
not change, and an older plugin or an older server still gets the in-process numbers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .batch import BatchRunner, PreparedBatch

if TYPE_CHECKING:
    from .toto import TotoModel

# Rows × variates × padded length per model call. A GPU gains from big batches; a CPU does not:
# on 2 cores the 4m/22m checkpoints forecast the most series per second at 16-32 rows of 2048
# points per call, 25-30 % fewer at 128 (bench/RESULTS.md, "rows per call"). The in-process
# scheduler (engine/local_toto.py) and the inference servers (serving/engine.py) both cap by it.
GPU_MAX_BATCH_CELLS = 1024 * 2048
CPU_MAX_BATCH_CELLS = 32 * 2048

# Series whose largest observed |value| is below this are multiplied up before the model.
MIN_MAGNITUDE = 1e-2


def max_batch_cells(device: str) -> int:
    """The cell cap per model call for a torch device ("cpu", "cuda", "cuda:1")."""
    return GPU_MAX_BATCH_CELLS if device.startswith("cuda") else CPU_MAX_BATCH_CELLS


def magnitude_factors(values: np.ndarray, mask: np.ndarray | None = None,
                      min_magnitude: float = MIN_MAGNITUDE) -> np.ndarray:
    """One multiplier per row of `values` (shape values.shape[:-1]): 1, or the power of two that
    brings the row's largest observed |value| into [1, 2) when it is below `min_magnitude`.
    Rows with nothing observed, or all zeros, keep 1."""
    x = np.abs(np.asarray(values, dtype=np.float64))
    observed = np.isfinite(x) if mask is None else (np.asarray(mask, dtype=bool) & np.isfinite(x))
    peak = np.where(observed, x, 0.0).max(axis=-1, initial=0.0)
    small = (peak > 0) & (peak < min_magnitude)
    exponent = -np.floor(np.log2(np.where(small, peak, 1.0)))
    return np.where(small, np.exp2(exponent), 1.0)


def restore_magnitudes(quantiles: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Undo `magnitude_factors` on model output (..., *factors.shape, horizon)."""
    return np.asarray(quantiles) / np.asarray(factors)[..., None]


def in_data_units(run: BatchRunner) -> BatchRunner:
    """`run` with rows below MIN_MAGNITUDE rescaled before the call and the quantiles scaled back
    after. Other rows, and batches without a small row, run untouched (no copy)."""

    def runner(batch: PreparedBatch) -> np.ndarray:
        factors = magnitude_factors(batch.values, batch.mask)  # (B, V)
        if not (factors != 1.0).any():
            return run(batch)
        scaled = (batch.values * factors[..., None]).astype(batch.values.dtype)
        return restore_magnitudes(run(replace(batch, values=scaled)), factors)

    return runner


def toto_runner(loaded: TotoModel) -> BatchRunner:
    """The runner of a checkpoint loaded in this process (engine/toto.py's `load_toto`)."""
    from .toto import run_batch  # engine/toto.py imports torch lazily; keep this module light

    return in_data_units(lambda batch: run_batch(loaded, batch))
