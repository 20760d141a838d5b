"""Calendar harmonic regression: a robust fit of a trend plus hour / day / week sinusoids.

Why: at a 1-minute step a 2048-point context holds 34 hours, so the day does not fit twice and
no seasonal decomposition (MSTL, seasonal-naive) can see it; the part of the day in the context
then looks like a trend, and a robust linear trend over the last hours bends the wrong way two
hours later (bench/RESULTS.md "Accuracy", 2026-12-01: statistical 3.2-3.8 MASE on the Prometheus
generator's 1-minute load against 1.0-1.4 for statsforecast MSTL + AutoETS). A sinusoid with the
calendar's period needs only half a cycle to be placed, and the period comes from the step, not
from the data, so it also holds where the step does not divide the day (7 minutes: 205.7 steps).
This is dynamic harmonic regression (Hyndman & Athanasopoulos, FPP3 §10.5 / §12.1) without the
ARIMA errors, which would cost what AutoETS costs.

The model, on the context's own index t (phases are free, so no timestamps are needed):

    y_t = a + b·t + c·t² + Σ_periods Σ_{k ≤ K} (s_k sin(2πkt/P) + c_k cos(2πkt/P)) + e_t

- periods: the hour, day and week in steps, where a period spans at least 4 steps and the
  context holds at least half of it; K = 3 / 3 / 2 harmonics where it holds two cycles, else 1
  (a partial cycle cannot place more), capped below the period's Nyquist limit;
- the quadratic term only where the horizon is at most 1/8 of the context (a short extrapolation
  of the curvature; the week seen over 34 hours is such a curve);
- fitted by least absolute deviations (iteratively reweighted least squares, 5 rounds of ~0.2 ms
  on 2048 × ~17; 8 rounds gave the same MASE to ±0.03): the demo PostgreSQL load at 5 minutes
  spends 36 % of its time in overload spikes, which pull a least-squares (or Huber) fit ~70 QPS
  above the calm level; the median regression stays on it (MASE 7.81 → 6.43, harmonic alone).

It is one candidate of engine/statistical.py's holdout selection, not a model of its own: a
sawtooth (a restart every 3 days) or a level shift is left to MSTL there.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CALENDAR_MS = (3_600_000, 86_400_000, 7 * 86_400_000)
FULL_HARMONICS = (3, 3, 2)  # hour, day, week when the context holds two cycles of them
PARTIAL_HARMONICS = 1
MIN_COVER = 0.5  # the context holds at least half a cycle
MIN_PERIOD = 4.0  # steps per cycle
QUADRATIC_MAX_HORIZON = 1 / 8  # of the context length
LAD_ROUNDS = 5


def periods(n: int, step_ms: int) -> list[tuple[float, int]]:
    """(period in steps, harmonics) of the calendar periods a context of n points can place."""
    if step_ms <= 0:
        return []
    out = []
    for period_ms, full in zip(CALENDAR_MS, FULL_HARMONICS, strict=True):
        p = period_ms / step_ms
        if p < MIN_PERIOD or n < MIN_COVER * p:
            continue
        k = full if n >= 2 * p else PARTIAL_HARMONICS
        out.append((p, max(1, min(k, int((p - 1) // 2)))))
    return out


@lru_cache(maxsize=32)
def design(n: int, horizon: int, step_ms: int) -> np.ndarray:
    """(n + horizon, columns) regressors at t = 0 .. n + horizon - 1 (read-only; cached: a panel's
    series share one grid)."""
    t = np.arange(n + horizon, dtype=np.float64)
    u = (t - (n - 1)) / n  # 0 at the last observed point
    cols = [np.ones_like(t), u]
    if horizon <= QUADRATIC_MAX_HORIZON * n:
        cols.append(u * u)
    for p, harmonics in periods(n, step_ms):
        for k in range(1, harmonics + 1):
            angle = (2 * np.pi * k / p) * t
            cols += [np.sin(angle), np.cos(angle)]
    x = np.stack(cols, axis=1)
    x.flags.writeable = False
    return x


_BLOCK = 256


@lru_cache(maxsize=32)
def _blocks(n: int, horizon: int, step_ms: int) -> np.ndarray:
    """The observed rows of `design`, zero-padded to whole blocks of _BLOCK rows: (blocks, _BLOCK, k).

    Why blocks: one (k × 2048) @ (2048 × k) product is above OpenBLAS's threading threshold, and on
    a busy host its spinning threads cost 5× the CPU of the product itself (harmonic_fit: 17 ms
    instead of 3.5 ms CPU, measured); a batch of small products stays on the calling thread.
    """
    a = design(n, horizon, step_ms)[:n]
    rows = -(-n // _BLOCK) * _BLOCK
    out = np.zeros((rows, a.shape[1]))
    out[:n] = a
    out = out.reshape(-1, _BLOCK, a.shape[1])
    out.flags.writeable = False
    return out


def harmonic_fit(x: np.ndarray, horizon: int, step_ms: int, start: np.ndarray | None = None,
                 rounds: int = LAD_ROUNDS) -> tuple[np.ndarray, np.ndarray]:
    """(point forecast (horizon,), in-sample fit (n,)) for a 1-D history that may hold NaN
    (weight 0); the least-absolute-deviation fit (see module doc), by `rounds` reweightings from
    least squares, or from `start`: a previous fit's values at these n points (a warm start)."""
    n = x.size
    a = _blocks(n, horizon, step_ms)
    blocks, k = a.shape[0], a.shape[2]
    ok = np.isfinite(x)
    y = np.zeros(blocks * _BLOCK)
    y[:n] = np.where(ok, x, 0.0)
    observed = np.zeros(y.size, dtype=bool)
    observed[:n] = ok
    tiny = 1e-12 * (float(np.abs(y).max()) + 1.0)
    w = observed.astype(np.float64)
    if start is not None:
        w = _lad_weights(np.abs(y[:n] - start), observed, tiny, y.size)
    ridge = 1e-10 * np.eye(k)
    y_rows = y.reshape(blocks, 1, _BLOCK)
    coef = np.zeros(k)
    fitted = y
    for round_ in range(rounds + 1):
        aw = a * w.reshape(blocks, _BLOCK, 1)
        gram = np.matmul(aw.transpose(0, 2, 1), a).sum(axis=0)
        rhs = np.matmul(y_rows, aw).sum(axis=0)[0]
        coef = _solve(gram + ridge * np.trace(gram), rhs)
        fitted = np.matmul(a, coef).ravel()
        if round_ < rounds:
            w = _lad_weights(np.abs(y - fitted), observed, tiny, y.size)
    return design(n, horizon, step_ms)[n:] @ coef, fitted[:n]


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.linalg.solve for one small system without its per-call checks (8 µs instead of 38 µs
    on 17 × 17; a fit solves 6, the warm refit 3): numpy's own LAPACK gufunc where it exists."""
    if _SOLVE1 is None:
        return np.linalg.solve(a, b)
    x = _SOLVE1(a, b)
    if not np.isfinite(x).all():  # singular: let numpy raise its LinAlgError
        return np.linalg.solve(a, b)
    return x


try:  # numpy >= 1.26 and 2.x: the gufunc behind np.linalg.solve(a, b) for a 1-D b
    from numpy.linalg import _umath_linalg

    _SOLVE1 = getattr(_umath_linalg, "solve1", None)
except ImportError:  # pragma: no cover
    _SOLVE1 = None


def _lad_weights(r: np.ndarray, observed: np.ndarray, tiny: float, size: int) -> np.ndarray:
    """1 / |r|, capped where the fit is (nearly) exact: the IRLS form of the L1 loss."""
    r = np.where(np.isfinite(r), r, 0.0)
    if r.size < size:
        r = np.r_[r, np.zeros(size - r.size)]
    floor = 1e-3 * float(r[observed].mean()) + tiny
    return np.where(observed, 1.0 / np.maximum(r, floor), 0.0)
