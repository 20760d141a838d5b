"""Accuracy benchmark: rolling-origin MASE / CRPS / 10-90 % coverage per scenario and model.

    PYTHONPATH=server .venv/bin/python bench/accuracy.py [--origins 8] [--quick] [--results]

Data: each demo scenario (sources/demo.py SCENARIOS) at 1, 5 and 15 minute steps, and the
Prometheus test generator's load series (tests/prometheus/prom_synthetic.py) at 1 and 5 minutes.
Each setting: 8 origins, the last 8 horizon-long windows, 2048 points of context before each.
Scores from toto_datasource.querytypes.accuracy (MASE scaled by the in-sample one-step naive MAE).
Models: seasonal-naive, naive (last value), statistical (the fallback), statsforecast MSTL and
AutoETS as peers when installed, Toto 4m random weights (speed only, never accuracy).
Cost: CPU ms per series (process time of the forecast calls / number of windows).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
sys.path.insert(0, str(ROOT / "tests" / "prometheus"))

from toto_datasource.engine.baseline import seasonal_naive  # noqa: E402
from toto_datasource.engine.statistical import mstl_forecast, statistical_forecast  # noqa: E402
from toto_datasource.querytypes.accuracy import Scores, rolling_origins, score_windows  # noqa: E402
from toto_datasource.sources.base import TimeGrid  # noqa: E402
from toto_datasource.sources.demo import SCENARIOS  # noqa: E402

CONTEXT = 2048
HORIZON = {1: 120, 5: 144, 15: 96}  # steps: 2 h, 12 h, 24 h
END_MS = 1_767_225_600_000 + 7 * 3_600_000  # a fixed instant: results are reproducible
_Z = np.array([-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816])

# One series' forecaster: (context, horizon, step_ms) → (9, horizon).
SeriesModel = Callable[[np.ndarray, int, int], np.ndarray]


def naive_last(context: np.ndarray, horizon: int, step_ms: int) -> np.ndarray:
    x = context[np.isfinite(context)]
    sd = float(np.std(np.diff(x))) if x.size > 2 else 0.0
    h = np.sqrt(np.arange(1, horizon + 1))
    return x[-1] + _Z[:, None] * sd * h[None, :]


def _calendar(step_ms: int, n: int) -> list[int]:
    out = []
    for ms in (3_600_000, 86_400_000, 7 * 86_400_000):
        if ms % step_ms == 0 and 2 <= ms // step_ms <= n // 2:
            out.append(ms // step_ms)
    return out


def _sf_quantiles(fc: dict, horizon: int) -> np.ndarray:
    mean = np.asarray(fc["mean"], np.float64)
    rows = [fc[f"lo-{lv}"] for lv in (80, 60, 40, 20)] + [mean] + [fc[f"hi-{lv}"] for lv in (20, 40, 60, 80)]
    return np.sort(np.asarray(rows, np.float64), axis=0)


def sf_models(autoets: bool) -> dict[str, SeriesModel]:
    try:
        from statsforecast.models import MSTL, AutoETS
    except ImportError:
        return {}

    def mstl(context: np.ndarray, horizon: int, step_ms: int) -> np.ndarray:
        x = np.nan_to_num(context, nan=float(np.nanmean(context)))
        seasons = _calendar(step_ms, x.size) or [1]
        m = MSTL(season_length=seasons, trend_forecaster=AutoETS(model="ZZN"))
        return _sf_quantiles(m.forecast(y=x, h=horizon, level=[20, 40, 60, 80]), horizon)

    def ets(context: np.ndarray, horizon: int, step_ms: int) -> np.ndarray:
        x = np.nan_to_num(context, nan=float(np.nanmean(context)))
        seasons = _calendar(step_ms, x.size)
        m = AutoETS(season_length=seasons[-1] if seasons else 1)
        return _sf_quantiles(m.forecast(y=x, h=horizon, level=[20, 40, 60, 80]), horizon)

    models: dict[str, SeriesModel] = {"statsforecast MSTL": mstl}
    if autoets:  # ~4 s a fit at a 60-step season: 25 settings x 8 origins take over an hour
        models["statsforecast AutoETS"] = ets
    return models


def toto_model() -> SeriesModel | None:
    checkpoint = ROOT / "var" / "checkpoints" / "toto-2.0-4m-random"
    if not (checkpoint / "model.safetensors").exists():
        return None
    from toto_datasource.core.settings import ModelSettings
    from toto_datasource.engine.prepare import prepare_context
    from toto_datasource.engine.toto import load_toto, run_forecast

    loaded = load_toto(ModelSettings(checkpoint=str(checkpoint), device="cpu"))

    def toto(context: np.ndarray, horizon: int, step_ms: int) -> np.ndarray:
        p = prepare_context(context[None, :], CONTEXT)
        out = run_forecast(loaded, p.values[None], p.mask[None], np.zeros((1, 1), np.int64), horizon)
        return out[:, 0, 0, :]

    return toto


def settings(quick: bool) -> list[tuple[str, int, np.ndarray]]:
    """(label, step minutes, full history) for every setting."""
    out = []
    steps = (5,) if quick else (1, 5, 15)
    for step_min in steps:
        for name, make in SCENARIOS.items():
            count = CONTEXT + 8 * HORIZON[step_min]
            values = make(TimeGrid(END_MS, step_min * 60_000, count)).values.astype(np.float64)
            out.append((f"{name} @{step_min}m", step_min, values))
    if not quick:
        from prom_synthetic import expected_on_grid, generate

        syn = generate(END_MS // 1000 - (END_MS // 1000) % 3600, many=0)
        for step_min in (1, 5):
            count = CONTEXT + 8 * HORIZON[step_min]
            start = syn.end_s - (count - 1) * step_min * 60
            for key in ("load_a", "load_b", "load_c"):
                values = expected_on_grid(syn.series[key], start, step_min * 60, count)
                out.append((f"prom {key} @{step_min}m", step_min, values))
    return out


def evaluate(models: dict[str, SeriesModel], origins: int, quick: bool) -> list[dict]:
    rows = []
    for label, step_min, values in settings(quick):
        horizon = HORIZON[step_min]
        windows = rolling_origins(values, origins, horizon, CONTEXT)
        for model_name, model in models.items():
            t = time.process_time()
            q = np.stack([model(w.context, horizon, step_min * 60_000) for w in windows], axis=1)
            cost = (time.process_time() - t) * 1000 / len(windows)
            s: Scores = score_windows(windows, q)
            rows.append({"setting": label, "model": model_name, "cost_ms": cost, **s.as_dict()})
            print(f"{label:28s} {model_name:24s} MASE {s.mase:8.3f} CRPS {s.crps:7.4f} "
                  f"cov {s.coverage:4.2f} {cost:8.1f} ms", flush=True)
    return rows


def markdown(rows: list[dict], models: list[str], command: str, seconds: float) -> str:
    load = os.getloadavg()
    lines = [
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} — accuracy, rolling origin — `{command}`", "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU, "
        f"{platform.system()} {platform.release()}; run time {seconds:.0f} s; load average at the end "
        f"{load[0]:.1f} (1 min) / {load[2]:.1f} (15 min), shared with other sessions, so the ms are "
        "CPU (process) time, not wall time. Context 2048 points, 8 origins, horizon 120 / 144 / 96 "
        "steps at 1 / 5 / 15 min. MASE scaled by the in-sample one-step naive MAE (lower is "
        "better); CRPS = mean weighted quantile loss over p10..p90; cover = share of actuals in "
        "p10..p90 (0.8 is calibrated). Toto 4m: random weights: speed only, not accuracy.", "",
        "| setting | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    by = {(r["setting"], r["model"]): r for r in rows}
    for setting in dict.fromkeys(r["setting"] for r in rows):
        cells = []
        finite = [by[(setting, m)]["mase"] for m in models if (setting, m) in by and "Toto" not in m]
        best = min(v for v in finite if np.isfinite(v)) if finite else None
        for m in models:
            r = by.get((setting, m))
            if r is None:
                cells.append("–")
                continue
            mark = "**" if best is not None and r["mase"] == best and "Toto" not in m else ""
            cells.append(f"{mark}{r['mase']:.2f}{mark} / {r['crps']:.3f} / {r['coverage']:.2f}")
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    lines += ["", "Cells: MASE / CRPS / cover; bold: best MASE without Toto.", "",
              "| model | CPU ms per series, median over settings | max |", "|---|---|---|"]
    for m in models:
        costs = [r["cost_ms"] for r in rows if r["model"] == m]
        lines.append(f"| {m} | {np.median(costs):.1f} | {max(costs):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origins", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="5-minute demo scenarios only")
    parser.add_argument("--no-peers", action="store_true", help="skip statsforecast (slow: seconds/series)")
    parser.add_argument("--autoets", action="store_true", help="add statsforecast AutoETS (~4 s a fit)")
    parser.add_argument("--results", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    models: dict[str, SeriesModel] = {
        "seasonal-naive": seasonal_naive, "naive": naive_last, "MSTL+trend (augurs)": mstl_forecast,
        "statistical": statistical_forecast,
    }
    if not args.no_peers:
        models.update(sf_models(args.autoets))
    toto = toto_model()
    if toto is not None:
        models["Toto 4m (random weights: speed only, not accuracy)"] = toto
    started = time.perf_counter()
    rows = evaluate(models, args.origins, args.quick)
    text = markdown(rows, list(models), "bench/accuracy.py " + " ".join(sys.argv[1:]),
                    time.perf_counter() - started)
    print(text)
    if args.results:
        with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
