"""Season lengths found in the data (autocorrelation), not assumed from the calendar.

Why not a fixed hour/day/week list: a grid whose step does not divide the hour (a 60-minute
cycle sampled every 7 minutes) has no calendar season, and a process that restarts every 3 days
has a 3-day sawtooth that no calendar list holds. Why not augurs' `seasonalities` periodogram:
it caps the period at 512 and, on the demo series at a 1-minute step, returned 511 (the cap,
an artefact) for all five scenarios; a 2048-point context at 1 minute holds the hour, not the day.

Method, ~0.3 ms on 2048 points: the biased autocorrelation (FFT) of the linearly detrended
series; the season is the lag of its highest local maximum above MIN_ACF among lags that fit
twice into the history. The biased estimator shrinks with the lag, so among a season's multiples
the shortest wins unless a longer one fits clearly better — which is what a non-integer period
needs (60 min / 7 min = 8.57 steps: lag 60 = 7 cycles exactly). A second season is searched the
same way after the first one's per-phase means are removed (daily + hourly load). Lengths within
2 % of an hour, day or week on the grid are snapped to it.
"""

from __future__ import annotations

import numpy as np

MIN_ACF = 0.3
MIN_SEASON = 2
MIN_PROMINENCE = 0.1
CALENDAR_PREFERENCE = 0.8
MIN_EXPLAINED = 0.25
_CALENDAR_MS = (3_600_000, 86_400_000, 7 * 86_400_000)


def forward_fill(history: np.ndarray) -> np.ndarray:
    """Missing points take the previous value (leading ones the first observed); all-NaN → 0."""
    x = np.array(history, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros_like(x)
    idx = np.where(finite, np.arange(x.size), 0)
    np.maximum.accumulate(idx, out=idx)
    x = x[idx]
    x[: np.flatnonzero(finite)[0]] = x[np.flatnonzero(finite)[0]]
    return x


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Biased sample autocorrelation at lags 0..max_lag of a finite 1-D series."""
    y = x - x.mean()
    n = y.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(y, size)
    acov = np.fft.irfft(f * np.conj(f), size)[: max_lag + 1]
    return acov / acov[0] if acov[0] > 0 else np.zeros(max_lag + 1)


def _detrend(x: np.ndarray) -> np.ndarray:
    """x minus its least-squares line (closed form: np.polyfit's 0.25 ms was a fifth of
    detect_seasons)."""
    t = np.arange(x.size, dtype=np.float64) - 0.5 * (x.size - 1)
    tt = float(np.dot(t, t))
    slope = float(np.dot(t, x)) / tt if tt > 0 else 0.0
    return x - (slope * t + float(x.mean()))


def high_pass(x: np.ndarray, window: int) -> np.ndarray:
    """x minus its centred moving average over `window` points (fewer at the edges).

    Removes trends and cycles too long to fit twice, which would otherwise dominate the ACF
    (a 1-minute, 34-hour context holds most of a day: its ACF falls slowly and hides the hour).
    """
    window = max(1, min(window, x.size))
    csum = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(x.size)
    lo = np.clip(i - window // 2, 0, x.size)
    hi = np.clip(i + (window - window // 2), 0, x.size)
    return x - (csum[hi] - csum[lo]) / (hi - lo)


def _best_lag(x: np.ndarray, step_ms: int, exclude: tuple[int, ...] = ()) -> int | None:
    max_lag = x.size // 2
    if max_lag <= MIN_SEASON:
        return None
    acf = autocorrelation(x, max_lag)
    inner = acf[1:-1]
    peaks = np.flatnonzero((inner > acf[:-2]) & (inner >= acf[2:])) + 1
    # A season's peak follows a trough: a wiggle on a slowly falling ACF (a season too long for
    # the history, a trend) is not one.
    trough = np.minimum.accumulate(acf)
    keep = (peaks >= MIN_SEASON) & (acf[peaks] >= MIN_ACF) & (acf[peaks] - trough[peaks] >= MIN_PROMINENCE)
    peaks = [int(p) for p in peaks[keep] if all(abs(p - e) > 0.02 * e for e in exclude)]
    ok = acf - trough >= MIN_PROMINENCE
    calendar = [c for c in calendar_seasons(step_ms, x.size)
                if c <= max_lag and ok[c] and all(abs(c - e) > 0.02 * e for e in exclude)]
    if not peaks:
        return None
    best = max(peaks, key=lambda p: acf[p])
    # A nearby calendar season that fits almost as well wins: spikes and partial longer seasons
    # move the peak a few lags (the hourly peak of the demo PostgreSQL load sits at 56, not 60).
    close = [c for c in calendar if acf[c] >= CALENDAR_PREFERENCE * acf[best]]
    return max(close, key=lambda c: acf[c]) if close else best


def calendar_seasons(step_ms: int, observed: int) -> list[int]:
    """Hour, day and week in steps, where the step divides them and they fit twice."""
    if step_ms <= 0:
        return []
    out = []
    for period_ms in _CALENDAR_MS:
        if period_ms % step_ms == 0 and MIN_SEASON <= period_ms // step_ms <= observed // 2:
            out.append(period_ms // step_ms)
    return out


def _phase_means_removed(x: np.ndarray, season: int) -> np.ndarray:
    phase = np.arange(x.size) % season
    means = np.bincount(phase, weights=x, minlength=season) / np.bincount(phase, minlength=season)
    return x - means[phase]


def snap_to_calendar(season: int, step_ms: int) -> int:
    """An hour/day/week on the grid when `season` is within 2 % of it, else `season`."""
    if step_ms <= 0:
        return season
    for period_ms in _CALENDAR_MS:
        steps = period_ms / step_ms
        if steps >= MIN_SEASON and abs(season - steps) <= 0.02 * steps:
            return round(steps)
    return season


def detect_seasons(history: np.ndarray, step_ms: int = 0, max_seasons: int = 2) -> list[int]:
    """Up to `max_seasons` season lengths (steps, ascending) that fit twice into `history`."""
    x = forward_fill(history)
    if x.size < 2 * MIN_SEASON + 2 or np.ptp(x) == 0:
        return []
    residual = _winsorize(high_pass(_detrend(x), x.size // 4))
    found: list[int] = []
    for _ in range(max_seasons):
        lag = _best_lag(residual, step_ms, tuple(found))
        if lag is None:
            break
        season = snap_to_calendar(lag, step_ms)
        if 2 * season > x.size or season in found:
            break
        # Judged on the last 8 cycles: the phase means of a non-integer period (8.57 steps as 9)
        # drift apart over many cycles. 8 cycles "explain" 1/8 of pure noise, hence 25 %.
        recent = residual[-min(x.size, 8 * season) :]
        if 1.0 - _phase_means_removed(recent, season).var() / recent.var() < MIN_EXPLAINED:
            break  # an echo of the seasons already found, not a season of its own
        found.append(season)
        residual = _phase_means_removed(residual, season)
    return sorted(found)


def _winsorize(x: np.ndarray) -> np.ndarray:
    """Clip to median ± 4 MAD: the PostgreSQL load's 30-step overload spikes otherwise make the
    ACF high and flat at every short lag and hide the hour and the day."""
    median = np.median(x)
    mad = np.median(np.abs(x - median))
    return np.clip(x, median - 4 * 1.4826 * mad, median + 4 * 1.4826 * mad) if mad > 0 else x
