"""Fakes for the engine's tests: a deterministic model runner, its expected answers, series."""

from __future__ import annotations

import threading

import numpy as np
from toto_datasource import metrics
from toto_datasource.engine.batch import PreparedBatch

WAIT = 30  # generous bound on any single wait: a hang fails instead of blocking the suite


def sample(name: str) -> float:
    """A counter's value as the plugin's CollectMetrics exposes it."""
    return metrics.REGISTRY.get_sample_value(name) or 0.0


def expected(context_row: np.ndarray, horizon: int) -> np.ndarray:
    """What FakeRunner returns for one univariate row: (9, horizon)."""
    finite = context_row[np.isfinite(context_row)]
    last = finite[-1] if finite.size else 0.0
    return last + np.arange(9)[:, None] + 0.01 * np.arange(horizon)[None, :]


class FakeRunner:
    """Deterministic stand-in for a model: quantile k at step t = last value of the row + k + t/100.

    Records every call; `gate` (when set) makes the first call wait until released."""

    def __init__(self, gate: bool = False, oom_above: int | None = None, fail: bool = False) -> None:
        self.calls: list[dict] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not gate:
            self.release.set()
        self.oom_above = oom_above
        self.fail = fail

    def __call__(self, batch: PreparedBatch) -> np.ndarray:
        values, mask, horizon = batch.values, batch.mask, batch.horizon
        has_missing, block = batch.has_missing_values, batch.decode_block_size
        self.entered.set()
        assert self.release.wait(WAIT)
        b, v, length = values.shape
        self.calls.append(
            {
                "rows": b,
                "variates": v,
                "length": length,
                "horizon": horizon,
                "has_missing": has_missing,
                "block": block,
                "last": values[:, :, -1].tolist(),
            }
        )
        if self.fail:
            raise ValueError("boom")
        if self.oom_above is not None and b > self.oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        assert values.dtype == np.float32 and mask.dtype == bool and length % 32 == 0
        last = values[:, :, -1].astype(np.float64)  # the last patch is always filled
        return (
            last[None, :, :, None]
            + np.arange(9)[:, None, None, None]
            + 0.01 * np.arange(horizon)[None, None, None, :]
        )


def series(n: int, length: int, start: float = 0.0) -> np.ndarray:
    return start + np.arange(n)[:, None] * 10.0 + np.sin(np.arange(length) / 7.0)[None, :]
