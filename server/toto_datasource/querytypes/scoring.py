"""Anomaly scores: how far an actual value lies outside its forecast band. Pure numpy.

score
    0 when the actual lies inside [p10, p90] of the forecast made from data before its window;
    otherwise the distance to the nearer band edge divided by the band width p90 - p10. A score
    of 1 means one band width outside the band. The width is floored at
    1e-9 × max(1, |p50|) so a flat band (a constant series) gives a large, finite score rather
    than a division by zero. Missing actuals or forecasts give NaN (null in the frame).

flag
    1 when score > FLAG_SCORE (1.0: more than one band width outside), else 0. score > 0 alone
    means "outside the 80 % band", which by construction happens to ~20 % of normal points, so
    it is not used as the flag. NaN scores are never flagged.

latest score (the alert value)
    The score of the last visible point whose score is finite (a scrape that has not arrived
    yet does not hide the previous point); NaN when the range has no finite score.
"""

from __future__ import annotations

import numpy as np

FLAG_SCORE = 1.0
MIN_RELATIVE_WIDTH = 1e-9


def anomaly_scores(
    actual: np.ndarray, lower: np.ndarray, median: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Elementwise score (see module doc); all inputs broadcast to one shape."""
    actual, lower, median, upper = (np.asarray(a, dtype=np.float64) for a in (actual, lower, median, upper))
    width = np.maximum(upper - lower, MIN_RELATIVE_WIDTH * np.maximum(1.0, np.abs(median)))
    outside = np.maximum(actual - upper, 0.0) + np.maximum(lower - actual, 0.0)
    with np.errstate(invalid="ignore"):
        score = outside / width
    valid = np.isfinite(actual) & np.isfinite(lower) & np.isfinite(upper) & np.isfinite(median)
    return np.where(valid, score, np.nan)


def anomaly_flags(scores: np.ndarray) -> np.ndarray:
    """1.0 where score > FLAG_SCORE, 0.0 elsewhere, NaN where the score is NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        flags = (scores > FLAG_SCORE).astype(np.float64)
    return np.where(np.isfinite(scores), flags, np.nan)


def latest_finite(values: np.ndarray) -> float:
    """Last finite value of a 1-D array, NaN when there is none."""
    idx = np.flatnonzero(np.isfinite(values))
    return float(values[idx[-1]]) if idx.size else float("nan")
