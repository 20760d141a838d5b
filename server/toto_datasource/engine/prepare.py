"""Turn raw history into exactly what `Toto2Model.forecast` needs.

The model validates almost nothing, so every rule lives here: non-finite values are masked
and zeroed (a masked NaN still poisons the scaler), the last patch is forward-filled (the model
treats it as observed whatever the mask says), and contexts are left-padded with masked zeros
to a multiple of 32 (left padding is exact). Values are never normalised: the model scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import PATCH


@dataclass
class PreparedContext:
    """(n_var, L) float32 values and bool mask, L a multiple of 32."""

    values: np.ndarray
    mask: np.ndarray

    @property
    def length(self) -> int:
        return self.values.shape[-1]

    @property
    def complete(self) -> bool:
        """No padding and no gaps: the batch may use the faster is_causal attention path."""
        return bool(self.mask.all())


def _ffill_tail(row: np.ndarray, finite: np.ndarray, tail: int) -> None:
    """Forward-fill non-finite values of the last `tail` steps in place; 0 if nothing precedes."""
    start = row.shape[0] - tail
    last = 0.0
    observed = np.flatnonzero(finite[:start])
    if observed.size:
        last = row[observed[-1]]
    for i in range(start, row.shape[0]):
        if finite[i]:
            last = row[i]
        else:
            row[i] = last


def prepare_context(context: np.ndarray, context_length: int) -> PreparedContext:
    """Prepare one job's (n_var, T) history: the last `context_length` points, cleaned and padded."""
    x = np.array(np.atleast_2d(context)[:, -context_length:], dtype=np.float64)
    finite = np.isfinite(x)
    # Leading steps where no variate has data carry no information: drop them, pad instead.
    observed_cols = np.flatnonzero(finite.any(axis=0))
    if observed_cols.size:
        x, finite = x[:, observed_cols[0] :], finite[:, observed_cols[0] :]
    else:
        x, finite = x[:, -1:], finite[:, -1:]
    if not finite.all():  # gaps (complete histories, the common case, skip 40 us of this)
        tail = min(PATCH, x.shape[1])
        for v in range(x.shape[0]):
            _ffill_tail(x[v], finite[v], tail)
        x[~np.isfinite(x)] = 0.0
    # Clip to float32's range: the model runs in float32 and inf would poison it.
    x = np.clip(x, -3.0e38, 3.0e38)
    length = max(PATCH, -(-x.shape[1] // PATCH) * PATCH)
    pad = length - x.shape[1]
    values = np.zeros((x.shape[0], length), dtype=np.float32)
    mask = np.zeros((x.shape[0], length), dtype=bool)
    values[:, pad:] = x
    mask[:, pad:] = finite
    return PreparedContext(values, mask)


def pad_to(prepared: PreparedContext, length: int) -> PreparedContext:
    """Left-pad to a common batch length with masked zeros (exact for Toto)."""
    pad = length - prepared.length
    if pad <= 0:
        return prepared
    n = prepared.values.shape[0]
    return PreparedContext(
        np.concatenate([np.zeros((n, pad), np.float32), prepared.values], axis=1),
        np.concatenate([np.zeros((n, pad), bool), prepared.mask], axis=1),
    )


# The options of every forecast() call, in process and on every inference server (engine/toto.py).
FORECAST_KWARGS = {"scaler_fallback_min_obs": 8, "quantile_real_cap_k": 1e4}

