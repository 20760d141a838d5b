"""The unit of work a model runtime runs: one prepared batch, already padded and masked.

The scheduler builds it (grouping, padding, memory cap); a runtime only runs it — in process
(the Toto runner, engine/toto_runner.py), or remotely over the Open Inference Protocol, where
an inference server runs the same runner. Keeping the batch a plain value is what lets a remote
runtime reuse the scheduler unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def _never() -> bool:
    return False


@dataclass(frozen=True, eq=False)
class PreparedBatch:
    """values (B, V, L) float32, mask (B, V, L) bool, series_ids (B, V) int64, L a multiple of 32.

    `has_missing_values` is False only when nothing is padded or masked (the cheaper attention
    path is then exact). `decode_block_size` is the engine's decoding choice (None: one pass).
    `deadline` is the latest time.monotonic() any caller of a row still waits for (None: no
    deadline); `cancelled()` is true once every caller has gone, so a remote call can stop early.
    """

    values: np.ndarray
    mask: np.ndarray
    series_ids: np.ndarray
    horizon: int
    has_missing_values: bool = True
    decode_block_size: int | None = None
    deadline: float | None = None
    cancelled: Callable[[], bool] = field(default=_never)

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])


# A model runtime's batch runner: PreparedBatch → quantiles (9, B, V, horizon) float64, levels 0.1..0.9.
BatchRunner = Callable[[PreparedBatch], np.ndarray]
