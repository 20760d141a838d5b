"""Forecast accuracy on a series' own past: rolling origins and three scores. Pure numpy.

Built for `queryType: backtest` (re-forecast the last K windows of each series with every model
and score them against what happened) and for bench/accuracy.py. The flow is

    windows = rolling_origins(history, windows=8, horizon=H, context_length=L)
    job context = stack_contexts(windows)                  # (K, L): one batched engine call
    quantiles   = output.quantiles                          # (9, K, H)
    scores      = score_windows(windows, quantiles)         # one model on one series
    line        = report.backtest_line("Toto", scores, "seasonal-naive", baseline_scores)

MASE
    Mean absolute error of the median, divided by the mean absolute error that the
    one-step naive forecast (season 1: "the next value equals this one") makes *in sample* on the
    window's context. Season 1 is the default because it never divides by zero on a periodic
    signal: scaled by the seasonal-naive in-sample error, a pure sine — where seasonal-naive is
    exact — would have a zero scale. Below 1 means the forecast's h-step error is smaller than
    the noise a one-step guess makes; pass `season` to scale by another lag.
CRPS
    Approximated, as GluonTS and the Toto paper do, by the mean weighted quantile loss over the
    nine quantiles 0.1..0.9: for each level q, 2·Σ pinball_q(y, ŷ_q) / Σ|y|, then the mean over q.
    Scale-free (divided by the actuals' magnitude), 0 for a perfect forecast.
coverage
    Share of actuals inside [p10, p90]; 0.8 for a calibrated band.

A window's scores are averaged over windows with equal weight (each window has its own scale),
so a series whose level shifts is not dominated by its largest window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MEDIAN = 4


@dataclass(frozen=True)
class Window:
    """One rolling origin: the context before it and the `horizon` actual values after it.

    `origin` is the index in the full history of the first forecast step.
    """

    context: np.ndarray
    actual: np.ndarray
    origin: int


@dataclass(frozen=True)
class Scores:
    """One model's accuracy on one series (means over `windows`); NaN where undefined."""

    mase: float
    crps: float
    coverage: float
    windows: int

    def relative_to(self, baseline: Scores) -> float:
        """MASE improvement over a baseline: 0.31 means 31 % lower MASE; negative means worse."""
        if not (np.isfinite(self.mase) and np.isfinite(baseline.mase)) or baseline.mase == 0:
            return float("nan")
        return 1.0 - self.mase / baseline.mase

    def as_dict(self) -> dict[str, float | int]:
        return {"mase": self.mase, "crps": self.crps, "coverage": self.coverage, "windows": self.windows}


def rolling_origins(
    history: np.ndarray, windows: int, horizon: int, context_length: int | None = None,
    stride: int | None = None,
) -> list[Window]:
    """The last `windows` origins of a 1-D history, oldest first, `stride` steps apart.

    With the default stride (= horizon) the actual windows tile the end of the history without
    overlap, the last one ending at the last point. Each context holds everything before its
    origin, or its last `context_length` points. Origins without at least 2 context points are
    dropped, so fewer than `windows` may come back on a short history.
    """
    x = np.asarray(history, dtype=np.float64).ravel()
    if windows < 1 or horizon < 1:
        raise ValueError("windows and horizon must be at least 1")
    stride = horizon if stride is None else stride
    if stride < 1:
        raise ValueError("stride must be at least 1")
    out = []
    for k in range(windows - 1, -1, -1):
        origin = x.size - horizon - k * stride
        if origin < 2:
            continue
        start = 0 if context_length is None else max(0, origin - context_length)
        out.append(Window(x[start:origin], x[origin : origin + horizon], origin))
    return out


def stack_contexts(windows: list[Window]) -> np.ndarray:
    """(K, L) contexts for one batched forecast call, shorter ones left-padded with NaN (missing)."""
    length = max(w.context.size for w in windows)
    out = np.full((len(windows), length), np.nan)
    for i, w in enumerate(windows):
        out[i, length - w.context.size :] = w.context
    return out


def naive_scale(context: np.ndarray, season: int = 1) -> float:
    """In-sample MAE of the season-`season` naive forecast on the finite part of a context."""
    x = np.asarray(context, dtype=np.float64)
    if x.size <= season:
        return float("nan")
    diff = np.abs(x[season:] - x[:-season])
    diff = diff[np.isfinite(diff)]
    return float(diff.mean()) if diff.size else float("nan")


def mase(context: np.ndarray, actual: np.ndarray, median: np.ndarray, season: int = 1) -> float:
    """MAE of `median` against `actual` over the scale (see module doc); NaN if the scale is 0."""
    err = np.abs(np.asarray(actual, np.float64) - np.asarray(median, np.float64))
    err = err[np.isfinite(err)]
    scale = naive_scale(context, season)
    if not err.size or not np.isfinite(scale) or scale <= 0:
        return float("nan")
    return float(err.mean() / scale)


def pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> np.ndarray:
    """Elementwise quantile (pinball) loss of one quantile forecast."""
    diff = np.asarray(actual, np.float64) - np.asarray(forecast, np.float64)
    return np.maximum(q * diff, (q - 1.0) * diff)


def crps(actual: np.ndarray, quantiles: np.ndarray, levels: tuple[float, ...] = LEVELS) -> float:
    """Mean weighted quantile loss of (len(levels), H) quantiles; NaN when Σ|actual| is 0."""
    y = np.asarray(actual, np.float64)
    qs = np.asarray(quantiles, np.float64)
    ok = np.isfinite(y) & np.isfinite(qs).all(axis=0)
    denom = np.abs(y[ok]).sum()
    if not ok.any() or denom <= 0:
        return float("nan")
    losses = [2.0 * pinball(y[ok], qs[i, ok], q).sum() / denom for i, q in enumerate(levels)]
    return float(np.mean(losses))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of finite actuals inside [lower, upper]."""
    y, lo, hi = (np.asarray(a, np.float64) for a in (actual, lower, upper))
    ok = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return float("nan")
    tol = 1e-9 * np.maximum(1.0, np.abs(y[ok]))  # an exact forecast is inside its zero-width band
    return float(((y[ok] >= lo[ok] - tol) & (y[ok] <= hi[ok] + tol)).mean())


def score_window(window: Window, quantiles: np.ndarray, season: int = 1) -> Scores:
    """Scores of one window's (9, H) forecast quantiles."""
    qs = np.asarray(quantiles, np.float64)
    if qs.shape != (len(LEVELS), window.actual.size):
        raise ValueError(f"quantiles must be (9, {window.actual.size}), got {qs.shape}")
    return Scores(
        mase(window.context, window.actual, qs[MEDIAN], season),
        crps(window.actual, qs),
        coverage(window.actual, qs[0], qs[-1]),
        1,
    )


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def score_windows(windows: list[Window], quantiles: np.ndarray, season: int = 1) -> Scores:
    """Mean scores of one model on one series: `quantiles` is (9, K, H), K = len(windows)."""
    qs = np.asarray(quantiles, np.float64)
    if qs.ndim != 3 or qs.shape[1] != len(windows):
        raise ValueError(f"quantiles must be (9, {len(windows)}, H), got {qs.shape}")
    per = [score_window(w, qs[:, i, : w.actual.size], season) for i, w in enumerate(windows)]
    return Scores(
        _nanmean([s.mase for s in per]),
        _nanmean([s.crps for s in per]),
        _nanmean([s.coverage for s in per]),
        len(per),
    )


def plural(count: float, noun: str) -> str:
    """"1 step", "14 steps", "1 min"; minutes are abbreviated and never take an s."""
    text = f"{count:g}" if isinstance(count, float) else str(count)
    return f"{text} {noun}" if count == 1 or noun == "min" else f"{text} {noun}s"


TIE_RELATIVE = 0.02  # MASE within 2 % of the baseline's: a tie, not a win
EXACT_MASE = 1e-6  # a MASE this small is an exact forecast (a pure signal the model repeats)


def backtest_line(model: str, scores: Scores, baseline: str, baseline_scores: Scores,
                  subject: str = "this metric") -> str:
    """"Toto beats seasonal-naive by 31 % on this metric: MASE 0.62 vs 0.90 over 8 windows"
    (or "loses to … by", or "ties with"), from the scores of one series (or their means).

    When the baseline is exact (MASE ≈ 0: a pure sine where seasonal-naive repeats the season),
    any error is a loss and the percentage is meaningless, so the line says so without one.
    """
    windows = plural(scores.windows, "window")
    tail = f"MASE {scores.mase:.2f} vs {baseline_scores.mase:.2f} over {windows}"
    a, b = scores.mase, baseline_scores.mase
    if not (np.isfinite(a) and np.isfinite(b)):
        return f"{model} vs {baseline} on {subject}: MASE could not be scored over {windows}"
    if abs(a - b) <= max(EXACT_MASE, TIE_RELATIVE * max(a, b)):
        return f"{model} ties with {baseline} on {subject}: {tail}"
    if b <= EXACT_MASE:
        return f"{model} loses to {baseline}, which is exact on {subject}: {tail}"
    rel = scores.relative_to(baseline_scores)
    verb = "beats" if rel > 0 else "loses to"
    return f"{model} {verb} {baseline} by {abs(rel) * 100:.0f} % on {subject}: {tail}"
