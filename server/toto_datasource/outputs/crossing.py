"""Arithmetic on forecast quantiles: when a quantile first crosses a threshold."""

from __future__ import annotations

from typing import Literal

import numpy as np

Direction = Literal["above", "below"]


def first_crossing(values: np.ndarray, threshold: float, direction: Direction) -> int | None:
    """Index of the first step beyond the threshold (>= above, <= below), or None."""
    hit = values >= threshold if direction == "above" else values <= threshold
    idx = np.flatnonzero(hit)
    return int(idx[0]) if idx.size else None
