"""`toto-datasource forecast`: a CSV or a demo scenario in, forecast CSV + PNG + summary out.

Runs in-process through the same query → source → engine → frames path as the plugin.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from datetime import datetime

from .core.config import ProcessConfig
from .core.request import background
from .core.settings import DEFAULT_MODEL, RawSettings
from .engine.registry import ModelRegistry
from .report import NO_PLOT, model_label_for, plot, read_forecasts, verdict, write_csv
from .service import DataQueryInput, ForecastDataSource

BASELINES = ("statistical", "seasonal-naive")


def _timestamp_ms(text: str) -> int:
    try:
        value = float(text)
        return int(value if value > 1e11 else value * 1000)  # epoch ms or epoch s
    except ValueError:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def read_csv_series(path: str) -> list[dict]:
    """First column: timestamps; every other column: one series named by its header."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], [r for r in rows[1:] if r]
    timestamps = [_timestamp_ms(r[0]) for r in body]
    series = []
    for col, name in enumerate(header[1:], start=1):
        values = [float(r[col]) if r[col].strip() not in ("", "NaN", "nan") else None for r in body]
        series.append({"name": name, "labels": {"series": name}, "timestamps": timestamps, "values": values})
    return series


def run_forecast_command(args: argparse.Namespace, config: ProcessConfig) -> int:
    model = args.model or config.model or DEFAULT_MODEL
    query: dict = {"horizon": int(args.horizon) if args.horizon.isdigit() else args.horizon,
                   "includeHistory": True, "model": model if model in BASELINES else "toto"}
    if args.input:
        query.update(source="inline", series=read_csv_series(args.input))
    else:
        query.update(source="demo", scenario=args.demo)
        if args.step:
            query["step"] = args.step
    registry = ModelRegistry(config.with_values(model=""), warmup=False)
    ds = ForecastDataSource(registry)
    checkpoint = model if model not in BASELINES else DEFAULT_MODEL
    settings = ds.parse_settings(RawSettings(json_data={"model": checkpoint}))
    if query["model"] == "toto":
        handle = registry.ensure(settings.model)
        handle.ready.wait()
        if handle.state != "ready":
            print(f"Toto could not be loaded: {handle.error}\nUsing the statistical fallback instead.")
            query["model"] = "statistical"
        elif handle.info.get("randomWeights"):
            print("This checkpoint has random weights (a test model); its output is not a forecast. "
                  "Using the statistical fallback instead.")
            query["model"] = "statistical"
    now = int(time.time() * 1000)
    request = DataQueryInput("A", "", json.dumps(query).encode(), now - 86_400_000, now, 60_000, 1000)
    result = ds.query_data(ds.instance(settings), [request], background())["A"]
    if result.error is not None:
        print(f"error ({result.error.status}): {result.error.message}")
        return 1
    forecasts = read_forecasts(result.frames)
    label = model_label_for(query["model"])
    write_csv(args.output, forecasts)
    for s in forecasts:
        if args.threshold is not None:
            print(verdict(s, args.threshold, args.direction))
        else:
            print(f"{s.name}: median {s.quantiles[0.5][0]:.4g} → {s.quantiles[0.5][-1]:.4g} over "
                  f"{len(s.future_ms)} steps ({label})")
    if forecasts and not plot(args.plot, forecasts[0], args.threshold, label):
        print(f"wrote {args.output}; {NO_PLOT}")
        return 0
    print(f"wrote {args.output} and {args.plot}")
    return 0
