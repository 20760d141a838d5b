"""Arithmetic on forecast quantiles: when a quantile first crosses a threshold, how likely a
crossing is, and how far an actual value lies outside a forecast band. Pure numpy.

Definitions (the README copies these; the alerting frames are built from them):

time to breach
    For a forecast whose first step is one grid step after the last history point, let `i` be
    the first step at which the watched quantile is beyond the threshold (`>= T` for "above",
    `<= T` for "below"). time_to_breach = (i + 1) × step, in seconds, i.e. the timestamp of
    that forecast point minus the timestamp of the last history point. Resolution: one step.
    It is never 0: a quantile already beyond T at the first forecast step gives one step.

sentinel (never crosses within the horizon)
    time_to_breach = horizon × step + step seconds (one step past the end of the forecast), and
    will_breach = 0. The sentinel is finite (Grafana's JSON and Threshold expressions cannot
    carry +Inf), positive and larger than any real crossing time of the same query, so
    `time_to_breach IS BELOW 900` never fires for a series that does not cross.

breach probability
    Per step t the nine quantiles q_0.1..q_0.9 define a piecewise-linear CDF F_t (F_t(q_k) = k,
    linear between neighbouring levels; right-continuous where levels tie). Outside
    [q_0.1, q_0.9] the tails are exponential with the density of the adjacent segment:
    P(X > T) = 0.1·exp(-(T - q_0.9) / (q_0.9 - q_0.8)) above q_0.9, mirrored below q_0.1
    (for a Gaussian this matches the true tail to within ~0.1 percentage points at 1 σ past
    q_0.9). A zero-width outer segment means no tail (probability 0 beyond it).
    P_t = 1 - F_t(T) for "above", F_t(T) for "below"; breach_probability = max_t P_t. The max
    over steps is a lower bound on P(the series crosses at some step), which the per-step
    marginals cannot give exactly; it is monotone in T (non-increasing for "above",
    non-decreasing for "below"). When the q-forecast crosses, breach_probability >= 1 - q
    ("above") or >= q ("below").

peak
    The watched quantile's extreme over the horizon in the breach direction: its maximum for
    "above", its minimum for "below".
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Direction = Literal["above", "below"]
LEVELS = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
TAIL_MASS = 0.1  # probability outside each outer quantile


def first_crossing(values: np.ndarray, threshold: float, direction: Direction) -> int | None:
    """Index of the first step beyond the threshold (>= above, <= below), or None."""
    hit = values >= threshold if direction == "above" else values <= threshold
    idx = np.flatnonzero(hit)
    return int(idx[0]) if idx.size else None


def first_crossings(values: np.ndarray, threshold: float, direction: Direction) -> np.ndarray:
    """Row-wise first_crossing for (n, H) values: int64 indices, -1 where a row never crosses."""
    values = np.atleast_2d(values)
    hit = values >= threshold if direction == "above" else values <= threshold
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1).astype(np.int64)


def time_to_breach_seconds(index: np.ndarray, step_ms: int, horizon: int) -> np.ndarray:
    """(index + 1) × step in seconds; the sentinel (horizon + 1) × step where index is -1."""
    index = np.asarray(index, dtype=np.int64)
    steps = np.where(index >= 0, index + 1, horizon + 1)
    return steps * (step_ms / 1000.0)


def sentinel_seconds(step_ms: int, horizon: int) -> float:
    return (horizon + 1) * step_ms / 1000.0


def cdf_at(quantiles: np.ndarray, threshold: float) -> np.ndarray:
    """F(T) from the nine quantile levels along axis 0: (9, ...) → (...). See the module doc."""
    q = np.sort(np.asarray(quantiles, dtype=np.float64), axis=0)
    if q.shape[0] != LEVELS.size:
        raise ValueError(f"expected {LEVELS.size} quantile levels on axis 0, got {q.shape[0]}")
    t = float(threshold)
    below = q <= t  # (9, ...)
    k = below.sum(axis=0) - 1  # last level at or below T: -1 … 8
    kc = np.clip(k, 0, LEVELS.size - 2)
    lo = np.take_along_axis(q, kc[None], axis=0)[0]
    hi = np.take_along_axis(q, kc[None] + 1, axis=0)[0]
    width = hi - lo
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inner = LEVELS[kc] + 0.1 * np.where(width > 0, (t - lo) / width, 1.0)
        s_lo = q[1] - q[0]
        s_hi = q[-1] - q[-2]
        lower_tail = np.where(s_lo > 0, TAIL_MASS * np.exp(-(q[0] - t) / s_lo), 0.0)
        upper_tail = 1.0 - np.where(s_hi > 0, TAIL_MASS * np.exp(-(t - q[-1]) / s_hi), 0.0)
    out = np.where(k < 0, lower_tail, np.where(k >= LEVELS.size - 1, upper_tail, inner))
    out = np.clip(out, 0.0, 1.0)
    return np.where(np.isnan(q).any(axis=0), np.nan, out)


def exceedance(quantiles: np.ndarray, threshold: float, direction: Direction) -> np.ndarray:
    """Per-step probability of being beyond T: (9, ...) → (...)."""
    f = cdf_at(quantiles, threshold)
    return 1.0 - f if direction == "above" else f


def breach_probability(quantiles: np.ndarray, threshold: float, direction: Direction) -> np.ndarray:
    """max over the last axis of the per-step exceedance: (9, ..., H) → (...). NaN steps are skipped."""
    p = exceedance(quantiles, threshold, direction)
    finite = np.isfinite(p)
    return np.where(finite.any(axis=-1), np.where(finite, p, -np.inf).max(axis=-1), np.nan)


def peak(values: np.ndarray, direction: Direction) -> np.ndarray:
    """Extreme of (..., H) over the last axis in the breach direction (max above, min below)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    fill = -np.inf if direction == "above" else np.inf
    masked = np.where(finite, values, fill)
    extreme = masked.max(axis=-1) if direction == "above" else masked.min(axis=-1)
    return np.where(finite.any(axis=-1), extreme, np.nan)
