"""Read forecast frames back as numbers and say what they mean, for the CLI and the demo."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .frames.model import Frame
from .plot import plot_forecast
from .querytypes.accuracy import backtest_line, plural
from .querytypes.crossing import Direction, first_crossing

__all__ = ["backtest_line", "model_label_for", "plot", "plural", "read_forecasts", "verdict", "write_csv"]


@dataclass
class SeriesForecast:
    name: str
    history_ms: np.ndarray
    history: np.ndarray
    future_ms: np.ndarray
    quantiles: dict[float, np.ndarray]  # level → values


def _ms(frame: Frame) -> np.ndarray:
    return frame.fields[0].values.cast("int64").to_numpy() // 1_000_000


def _values(field) -> np.ndarray:  # type: ignore[no-untyped-def]
    return field.values.to_numpy(zero_copy_only=False).astype(np.float64)


def read_forecasts(frames: list[Frame]) -> list[SeriesForecast]:
    """Pair each forecast frame with the history frame of the same series, if any."""
    history: dict[str, Frame] = {}
    out = []
    for frame in frames:
        if not frame.name.endswith(" forecast"):
            history[frame.name] = frame
            continue
        name = frame.name.removesuffix(" forecast")
        quantiles = {float((f.labels or {})["quantile"]): _values(f) for f in frame.fields[1:]}
        h = history.get(name)
        out.append(
            SeriesForecast(
                name,
                _ms(h) if h else np.zeros(0, np.int64),
                _values(h.fields[1]) if h else np.zeros(0),
                _ms(frame),
                quantiles,
            )
        )
    return out


MODEL_LABELS = {"toto": "Toto 2.0", "statistical": "statistical fallback (not Toto)",
                "seasonal-naive": "seasonal-naive baseline (not Toto)"}


def model_label_for(model: str) -> str:
    """How the demo and the CLI name the model that produced a forecast."""
    return MODEL_LABELS.get(model, f"{model} (not Toto)")


def verdict(s: SeriesForecast, threshold: float, direction: Direction, unit: str = "") -> str:
    """"db_qps: p90 crosses 500 QPS in 14 steps (≈ 14:35 UTC)", or why it does not."""
    q = 0.9 if direction == "above" else 0.1
    band = s.quantiles.get(q, s.quantiles[0.5])
    label = f"p{round(q * 100)}" if q in s.quantiles else "p50"
    verb = "crosses" if direction == "above" else "falls to"
    at = first_crossing(band, threshold, direction)
    unit_text = f" {unit}" if unit else ""
    if at is None:
        extreme = band.max() if direction == "above" else band.min()
        horizon_min = (s.future_ms[-1] - s.history_ms[-1]) / 60000 if s.history_ms.size else len(band)
        side = "below" if direction == "above" else "above"
        which = "peak" if direction == "above" else "low"
        return (f"{s.name}: {label} stays {side} {threshold:g}{unit_text} "
                f"for the next {plural(round(horizon_min), 'min')} ({which} {label} = "
                f"{extreme:.0f}{unit_text})")
    when = datetime.fromtimestamp(s.future_ms[at] / 1000, tz=UTC).strftime("%H:%M UTC")
    median_at = first_crossing(s.quantiles[0.5], threshold, direction)
    median_text = (f"; median in {plural(median_at + 1, 'step')}" if median_at is not None
                   else "; median stays clear")
    return (f"{s.name}: {label} {verb} {threshold:g}{unit_text} in {plural(at + 1, 'step')} "
            f"(≈ {when}){median_text}")


def write_csv(path: str, forecasts: list[SeriesForecast]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        levels = sorted(forecasts[0].quantiles) if forecasts else []
        writer.writerow(["series", "timestamp", *[f"p{round(q * 100)}" for q in levels]])
        for s in forecasts:
            for i, t in enumerate(s.future_ms):
                iso = datetime.fromtimestamp(t / 1000, tz=UTC).isoformat()
                writer.writerow([s.name, iso, *[f"{s.quantiles[q][i]:.6g}" for q in levels]])


NO_PLOT = "no PNG: matplotlib is not installed (it comes with the toto extra, or pip install matplotlib)"


def plot(path: str, s: SeriesForecast, threshold: float | None, model_label: str) -> bool:
    """Write the PNG; False when matplotlib is missing (the base install: the numbers still print)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    lower = s.quantiles.get(0.1, s.quantiles[0.5])
    upper = s.quantiles.get(0.9, s.quantiles[0.5])
    plot_forecast(path, f"{s.name}: forecast by {model_label}", s.history_ms, s.history, s.future_ms,
                  s.quantiles[0.5], lower, upper, threshold, model_label)
    return True
