"""The statistical fallback (`model: statistical`): per series, the best on a holdout of a calendar
harmonic regression, MSTL on seasons found in the data, and seasonal-naive.

What every user sees until the Toto weights are in place. Chosen by measurement (bench/accuracy.py,
bench/RESULTS.md "Accuracy"): the library peers are accurate but far too slow for a panel of 100
series (CPU ms per 2048-point series: statsforecast AutoETS(ZZN) ~240, MSTL(60)+AutoETS ~260-1200,
MSTL(60,720) ~2850; augurs AutoETS(ZZN) on 256 points alone ~10; augurs MSTL ~2-4).

The 2026-12-01 table showed where MSTL + a robust linear trend lost to statsforecast's MSTL +
AutoETS: every 1-minute setting (cpu 1.15 vs 0.81, latency-p99 2.06 vs 0.98, disk-fill 17.8 vs
3.6, Prometheus load 3.2-3.8 vs 1.0-1.4). There a 2048-point context holds 34 hours: the day does
not fit twice, no decomposition sees it, and the part of it in the context is a curve that a linear
trend over the last hours extrapolates the wrong way. ETS follows the curve's local slope; a
sinusoid with the calendar's period places it (engine/harmonic.py), and did better than ETS there
(Prometheus load at 1 minute: 0.71-0.77 against sf MSTL's 1.00-1.43). So:

1. harmonic: engine/harmonic.py, a least-absolute-deviation fit of a trend (+ curvature) and
   hour / day / week sinusoids, whose errors are an AR(1) (_ar1_correction: a level off the fit
   at the origin is followed and forgotten at the rate the residuals forget);
2. mstl: seasons from engine/seasons.py detect_seasons (autocorrelation, calendar-snapped);
   augurs MSTL decomposes with them and repeats the seasonal components, and the deseasonalised
   series gets a level plus a slope (median of lag-k changes over the recent window, kept only
   when clearer than the noise of those changes); no season → that trend alone. It is what wins
   across a restart sawtooth (memory-leak) and after a level shift;
3. seasonal-naive with drift (engine/baseline.py), exact on a noise-free line + daily cycle;
4. the band: the recent residuals' quantiles, widened with the horizon like a random walk whose
   step is the residuals' one-step change;
5. selected_forecast picks per series on a holdout of the context's last min(horizon, T/4)
   points. Measured (bench/RESULTS.md, 2026-12-02 02:30): no worse than the best of
   seasonal-naive and statsforecast MSTL on all 15 demo and 6 Prometheus settings, at 4.4 ms
   CPU a series (median over settings; max 6.0 at memory-leak @15m, where a 3-day season brings
   in MSTL: a coarse holdout fit and the full final fit; it was 11.3 ms with two full fits).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.config import ProcessConfig
from ..core.request import RequestContext
from ..core.settings import ModelSettings
from .baseline import observed_part, quantiles, seasonal_naive, seasonal_naive_median
from .harmonic import harmonic_fit
from .harmonic import periods as harmonic_periods
from .runtimes import LoadedModel, NoSettings, Probe
from .seasons import detect_seasons, forward_fill
from .types import ForecastJob, ForecastOutput

TREND_WINDOW = 1024
LEVEL_POINTS = 8
_Z = np.array([-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816])


@dataclass
class _Trend:
    level: float
    slope: float
    residual_q: np.ndarray  # (9,) quantile offsets of the in-sample residuals
    walk_sd: float  # sd of the level's step-to-step wander, for the band's growth

    def quantiles(self, horizon: int) -> np.ndarray:
        h = np.arange(1, horizon + 1, dtype=np.float64)
        point = self.level + self.slope * h
        spread = np.sqrt(self.residual_q[:, None] ** 2 + (_Z[:, None] * self.walk_sd) ** 2 * h[None, :])
        return point[None, :] + np.sign(_Z)[:, None] * spread


def fit_trend(y: np.ndarray, horizon: int) -> _Trend:
    """Level, robust slope and residual spread of a deseasonalised series (see module doc).

    The slope is local, over the last 4 horizons (64..1024 points): a cycle longer than the
    context (the day at a 1-minute step) is then followed as a trend, as ETS would.
    """
    w = y[-int(np.clip(4 * horizon, 64, TREND_WINDOW)) :]
    n = w.size
    slope = 0.0
    k = max(1, n // 8)
    if n > k + 8:
        changes = w[k:] - w[:-k]
        median_change = float(np.median(changes))
        noise = 1.4826 * float(np.median(np.abs(changes - median_change)))
        if abs(median_change) > noise:  # a trend clearer than the noise of k-step changes
            slope = median_change / k
    t = np.arange(n, dtype=np.float64) - (n - 1)
    detrended = w - slope * t
    level = float(np.median(detrended[-LEVEL_POINTS:]))
    q, walk_sd = _band(detrended[-min(n, 256) :])
    return _Trend(level, slope, q, walk_sd)


def _band(recent: np.ndarray) -> tuple[np.ndarray, float]:
    """Quantile offsets of recent residuals (around their median) and the sd of their level
    wander: what the one-step changes hold beyond what white noise would give (var 2σ²)."""
    q = quantiles(recent)
    q = q - q[4]
    steps = np.diff(recent)
    walk_var = max(0.0, float(np.var(steps)) - 2.0 * float(np.var(recent))) if steps.size else 0.0
    return q, float(np.sqrt(walk_var)) + 1e-3 * float(np.std(recent))


class _AugursTrend:
    """The trend model augurs' MSTL calls: fit on the deseasonalised series, predict points."""

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self.fitted: _Trend | None = None
        self._y = np.zeros(0)

    def fit(self, y: np.ndarray) -> None:
        self._y = np.asarray(y, dtype=np.float64)
        self.fitted = fit_trend(self._y, self.horizon)

    def predict(self, horizon: int, level: float | None):  # type: ignore[no-untyped-def]
        import augurs

        assert self.fitted is not None
        return augurs.Forecast(point=self.fitted.quantiles(horizon)[4])

    def predict_in_sample(self, level: float | None):  # type: ignore[no-untyped-def]
        import augurs

        return augurs.Forecast(point=self._y.copy())


CANDIDATES = ("harmonic", "mstl", "seasonal-naive")
SWITCH_MARGIN = 0.1
AR_WINDOW = 256
WARM_ROUNDS = 2  # LAD reweightings of the final harmonic fit, started from the holdout fit


def selected_forecast(history: np.ndarray, horizon: int, step_ms: int) -> tuple[str, np.ndarray]:
    """The best of the candidates on a holdout of the context's end, refitted on all of it.

    Why a selection: none wins everywhere (bench/RESULTS.md). The calendar harmonic regression
    places a day the context holds less than twice (every 1-minute setting); seasonal-naive with
    drift is exact on a deterministic line + daily cycle and echoes a season's shape that a few
    sinusoids do not draw; MSTL with a season found in the data is far better across a restart
    sawtooth (memory-leak at 5 min: MASE 0.77 vs 74 for seasonal-naive) and on a period the
    calendar does not hold, and without a season it is the robust local trend that follows a
    level shift. The holdout is the last min(horizon, T/4) points; the winner has the lowest mean
    absolute error of its median there (ties: the order of CANDIDATES). Seasonal-naive's counts
    SWITCH_MARGIN more: it echoes one past season's noise and wins single holdouts by chance
    (PostgreSQL load at 1 / 15 min: MASE 2.64 → 2.47, 3.86 → 3.75 with the margin); the same
    margin against MSTL lost memory-leak at 1 minute (11.2 → 30.0), so MSTL has none; instead an
    MSTL win within the noise of the paired errors goes to the harmonic fit (_within_noise).

    Cost: MSTL (~1.5-2.5 ms a fit at 2048 points and one season) is a candidate only where it can
    add something: no season (then it is the cheap trend alone) or a season that is not an hour /
    day / week the harmonic regression already holds twice; its holdout fit runs at a coarser
    resolution when every season is long (holdout_mstl). The final harmonic fit starts from the
    holdout fit.
    """
    x = observed_part(history)
    if int(np.isfinite(x).sum()) < 16:
        return "seasonal-naive", seasonal_naive(history, horizon, step_ms)
    seasons = detect_seasons(forward_fill(x), step_ms)
    hold = min(horizon, x.size // 4)
    if hold < 8 or np.isfinite(x[-hold:]).sum() < hold // 2:
        return "mstl", mstl_forecast(x, horizon, step_ms, seasons)
    actual = x[-hold:]
    ok = np.isfinite(actual)
    head = x[:-hold]
    point, fitted = harmonic_fit(head, hold, step_ms)
    ar = _ar1_correction((head - fitted)[np.isfinite(head)], hold)
    medians = {"harmonic": point + ar, "seasonal-naive": seasonal_naive_median(head, hold, step_ms)}
    if _mstl_adds(seasons, x.size, step_ms):
        medians["mstl"] = holdout_mstl(head, hold, step_ms, seasons)
    errors = {name: float(np.abs(medians[name] - actual)[ok].mean()) for name in medians}
    errors["seasonal-naive"] *= 1.0 + SWITCH_MARGIN
    best = min((name for name in CANDIDATES if name in errors), key=lambda name: errors[name])
    if best == "mstl" and _within_noise(medians["mstl"], medians["harmonic"], actual, ok):
        best = "harmonic"
    if best == "harmonic":
        start = np.r_[fitted, point]
        final = harmonic_fit(x, horizon, step_ms, start=start, rounds=WARM_ROUNDS)
        return best, _harmonic_quantiles(x, *final, horizon)
    if best == "mstl":
        return best, mstl_forecast(x, horizon, step_ms, seasons)
    return best, seasonal_naive(x, horizon, step_ms)


TIE_Z = 2.0


def _within_noise(winner: np.ndarray, other: np.ndarray, actual: np.ndarray, ok: np.ndarray) -> bool:
    """Whether `winner`'s lower holdout error is within TIE_Z standard errors of the mean paired
    difference of the absolute errors (treated as independent: a conservative tie, the errors
    along a holdout are correlated, so this flips only where the two are truly close).

    Why: MSTL without a season is a robust local trend whose level is the median of the last 8
    points; on a clean line + noise it won about a third of single holdouts by chance, 0.8-0.9
    off the line where the harmonic fit is 0.05 off (20 seeds, mean error 0.23 → 0.12 with the
    tie going to the harmonic fit); in the benchmark only memory-leak @1m changed
    (MASE 11.18 → 11.11).
    """
    d = (np.abs(other - actual) - np.abs(winner - actual))[ok]
    if d.size < 8:
        return False
    return float(d.mean()) < TIE_Z * float(d.std()) / np.sqrt(d.size)


HOLDOUT_SEASON_POINTS = 144  # the shortest season keeps at least this many points in holdout_mstl
MAX_DECIMATION = 4


def holdout_mstl(head: np.ndarray, hold: int, step_ms: int, seasons: list[int]) -> np.ndarray:
    """MSTL's holdout median (hold,), fitted at 1/d of the resolution where every season is long.

    Why: MSTL's cost grows with the points (augurs: ~0.85 µs a point and season) and a 3-day
    season at 5 minutes (864 steps) made the holdout fit and the final fit 3.3 of memory-leak
    @5m's 11.3 ms. The holdout only decides between candidates, and there the decomposition wins or
    loses by orders of magnitude (memory-leak @5m / @15m: MSTL 1.5-2.4e7 vs the others' 2.8e7-3.9e9
    mean absolute error; at half or quarter resolution 1.7-7.7e7): means of d consecutive
    points keep a season of ≥ HOLDOUT_SEASON_POINTS·d steps whole. The final forecast, when MSTL
    wins, is fitted at full resolution (selected_forecast)."""
    held = [p for p in seasons if 2 * p <= head.size]
    d = int(np.clip(min(held) // HOLDOUT_SEASON_POINTS, 1, MAX_DECIMATION)) if held else 1
    if d == 1 or any(p % d for p in held):
        return mstl_forecast(head, hold, step_ms, seasons)[4]
    x = forward_fill(head)
    x = x[x.size % d :].reshape(-1, d).mean(axis=1)
    coarse = mstl_forecast(x, -(-hold // d), step_ms * d, [p // d for p in held])[4]
    return np.repeat(coarse, d)[:hold]


def _mstl_adds(seasons: list[int], n: int, step_ms: int) -> bool:
    """Whether MSTL is worth its cost as a candidate (see selected_forecast)."""
    held = [p for p, _ in harmonic_periods(n, step_ms) if n >= 2 * p]
    return not seasons or any(all(abs(s - p) > 0.02 * p for p in held) for s in seasons)


def statistical_forecast(history: np.ndarray, horizon: int, step_ms: int) -> np.ndarray:
    """(9, horizon) quantiles for one series (see selected_forecast)."""
    return selected_forecast(history, horizon, step_ms)[1]


def _harmonic_quantiles(x: np.ndarray, point: np.ndarray, fitted: np.ndarray, horizon: int) -> np.ndarray:
    """The point forecast with a band from the recent residuals' spread, widened like fit_trend's."""
    residuals = (x - fitted)[np.isfinite(x)]
    q, walk_sd = _band(residuals[-AR_WINDOW:])
    # An exact fit (a noise-free line + day) has no residual spread; the band is kept at 1 % of a
    # typical step so that float rounding of the actuals still falls inside it.
    steps = np.abs(np.diff(x[np.isfinite(x)]))
    floor = 0.01 * float(steps.mean()) * np.abs(_Z) / _Z[-1] if steps.size else 0.0
    q = np.sign(_Z) * np.maximum(np.abs(q), floor)
    point = point + _ar1_correction(residuals, horizon)
    return np.sort(_Trend(0.0, 0.0, q, walk_sd).quantiles(horizon) + point[None, :], axis=0)


def _ar1_correction(residuals: np.ndarray, horizon: int) -> np.ndarray:
    """The regression's errors as an AR(1): the last residual, decaying as rho^h.

    Why: a level that departs from the fit for a while (the PostgreSQL load at 15 minutes sits
    +250…500 QPS off for 7-hour blocks) is followed at the origin and forgotten over the
    horizon at the rate the residuals forget it; white-noise residuals give rho ≈ 0, no change.
    rho: lag-1 autocorrelation of the last AR_WINDOW residuals around their median, in [0, 0.99].
    """
    r = residuals[-AR_WINDOW:]
    if r.size < 16:
        return np.zeros(horizon)
    r = r - np.median(r)
    rho = float(np.clip(np.dot(r[1:], r[:-1]) / max(float(np.dot(r, r)), 1e-300), 0.0, 0.99))
    return r[-1] * rho ** np.arange(1, horizon + 1)


def mstl_forecast(history: np.ndarray, horizon: int, step_ms: int,
                  seasons: list[int] | None = None) -> np.ndarray:
    """(9, horizon) quantiles from MSTL + robust trend; seasonal-naive when augurs is missing.
    `seasons`: already detected on this series (else detect_seasons)."""
    x = forward_fill(np.asarray(history, dtype=np.float64))
    finite = int(np.isfinite(np.asarray(history, dtype=np.float64)).sum())
    if finite < 16:
        return seasonal_naive(history, horizon, step_ms)
    if seasons is None:
        seasons = detect_seasons(x, step_ms)
    seasons = [p for p in seasons if 2 * p <= x.size]
    if not seasons:
        trend = fit_trend(x, horizon)
        return np.sort(trend.quantiles(horizon), axis=0)
    try:
        import augurs
    except ImportError:
        return seasonal_naive(history, horizon, step_ms)
    model = _AugursTrend(horizon)
    mstl = augurs.MSTL.custom_trend(seasons, model)
    mstl.fit(x)
    point = np.asarray(mstl.predict(horizon, None).point(), dtype=np.float64)
    assert model.fitted is not None
    band = model.fitted.quantiles(horizon)
    seasonal = point - band[4]
    return np.sort(band + seasonal[None, :], axis=0)


class StatisticalForecaster:
    """`model: statistical`; the fallback when Toto's weights cannot be loaded."""

    name = "statistical"

    def submit(self, job: ForecastJob) -> Future[ForecastOutput]:
        future: Future[ForecastOutput] = Future()
        try:
            q = np.stack([statistical_forecast(row, job.horizon, job.step_ms) for row in job.context], axis=1)
            future.set_result(ForecastOutput(q, self.name))
        except Exception as exc:  # a model error must reach the query, not kill the caller
            future.set_exception(exc)
        return future

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "baseline": True, "method": method()}


def method() -> str:
    try:
        import augurs  # noqa: F401

        return ("calendar harmonic regression, augurs MSTL + robust trend (seasons from the ACF) or "
                "seasonal-naive, by holdout")
    except ImportError:
        return "seasonal-naive (augurs not installed)"


class StatisticalRuntime(NoSettings):
    """The fallback as a model runtime: instant, no checkpoint, picked by `model: statistical`."""

    name = "statistical"
    instant = True
    query_model = "statistical"

    def load(self, settings: ModelSettings, config: ProcessConfig, warmup: bool) -> LoadedModel:
        model = StatisticalForecaster()
        return LoadedModel(model, model, model.describe())

    def probe(self, loaded: LoadedModel, settings: ModelSettings, ctx: RequestContext) -> Probe:
        return Probe(True, f"statistical fallback ready ({method()}; no checkpoint needed)")
