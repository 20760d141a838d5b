"""`toto-datasource demo`: the main job, end to end, the way Grafana runs it.

Starts the plugin as a child process with go-plugin's handshake, checks health, sends a real
QueryData for the PostgreSQL scenario over gRPC, decodes the Arrow frames, prints the overload
verdict and writes a PNG. Without Toto weights (no network, no local checkpoint) it says so and
uses the statistical fallback (model "statistical"), labelled as such; random weights are never shown
as a forecast. It also backtests the models on the scenario's own past and prints that line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from ._proto.pluginv2 import backend_pb2 as pb
from .core.config import ProcessConfig
from .core.settings import DEFAULT_MODEL
from .frames import decode_frame
from .plugin.host import PluginProcess
from .report import NO_PLOT, model_label_for, plot, read_forecasts, verdict

BASELINES = ("statistical", "seasonal-naive")
BACKTEST_WINDOWS = 8
HOW_TO_POINT = (
    "To use the real weights offline, download them where there is internet "
    "(`huggingface-cli download Datadog/Toto-2.0-22m --local-dir /opt/toto/Toto-2.0-22m`) and run "
    "`make demo MODEL=/opt/toto/Toto-2.0-22m` (or set GF_PLUGIN_MODEL)."
)


def _context(model: str) -> pb.PluginContext:
    settings = pb.DataSourceInstanceSettings(uid="demo", name="Toto Forecast (demo)", jsonData=json.dumps(
        {"model": model}).encode())
    return pb.PluginContext(pluginId="toto-forecast-datasource", dataSourceInstanceSettings=settings)


def _query(plugin: PluginProcess, ctx: pb.PluginContext, model: str, now_ms: int,
           query_type: str = "forecast") -> pb.DataResponse:
    body = {"refId": "A", "queryType": query_type, "source": "demo", "scenario": "postgres-load",
            "horizon": "2h", "quantiles": [0.1, 0.5, 0.9], "includeHistory": True, "model": model,
            "backtestWindows": BACKTEST_WINDOWS}
    query = pb.DataQuery(
        refId="A", json=json.dumps(body).encode(), intervalMS=60_000, maxDataPoints=2000,
        timeRange=pb.TimeRange(fromEpochMS=now_ms - 36 * 3_600_000, toEpochMS=now_ms + 2 * 3_600_000),
    )
    response = plugin.data.QueryData(pb.QueryDataRequest(pluginContext=ctx, queries=[query]), timeout=300)
    return response.responses["A"]


def run_demo(args: argparse.Namespace, config: ProcessConfig) -> int:
    model = args.model or config.model or DEFAULT_MODEL
    print(f"Starting the plugin as Grafana does (go-plugin handshake over a unix socket); model: {model}")
    with PluginProcess(env={"GF_PLUGIN_MODEL": model}) as plugin:
        print(f"  handshake after {plugin.start_seconds:.2f} s: {plugin.handshake_line.strip()}")
        ctx = _context(model)
        if model in BASELINES:
            return _answer(plugin, ctx, model, args)
        started = time.monotonic()
        health = plugin.wait_until_loaded(ctx, args.wait)
        print(f"  CheckHealth after {time.monotonic() - started:.1f} s: "
              f"{'OK' if health.status == pb.CheckHealthResponse.OK else 'ERROR'}: {health.message}")
        details = json.loads(health.jsonDetails or b"{}").get("model", {})
        use = "toto"
        if health.status != pb.CheckHealthResponse.OK:
            print("\nThe Toto weights could not be loaded, so this demo cannot show a Toto forecast.\n"
                  f"{HOW_TO_POINT}\n"
                  "Running on the statistical fallback instead (labelled as such below).\n")
            use = "statistical"
        elif details.get("randomWeights"):
            now = int(time.time() * 1000)
            t = time.perf_counter()
            toto = _query(plugin, ctx, "toto", now)
            print(f"  Toto path exercised with a random-weight test checkpoint: status {toto.status}, "
                  f"{len(toto.frames)} frames in {(time.perf_counter() - t) * 1000:.0f} ms.")
            print(f"\nThose numbers come from random weights and are not a forecast.\n{HOW_TO_POINT}\n"
                  "Showing the statistical fallback instead (labelled as such below).\n")
            use = "statistical"
        return _answer(plugin, ctx, use, args)


def _backtest(plugin: PluginProcess, ctx: pb.PluginContext, use: str, now: int) -> None:
    """The same query as a backtest: every model re-forecasts the last 8 × 2 h and is scored."""
    t = time.perf_counter()
    response = _query(plugin, ctx, use, now, "backtest")
    elapsed = (time.perf_counter() - t) * 1000
    if response.status != 200:
        print(f"\nBACKTEST failed with status {response.status}: {response.error}")
        return
    meta = decode_frame(response.frames[0]).meta
    custom = meta.custom if meta is not None and isinstance(meta.custom, dict) else {}
    models = ", ".join(custom.get("backtest", {}).get("models", []))
    print(f"\nBACKTEST ({BACKTEST_WINDOWS} windows of 2 h on its own past, models: {models}; "
          f"{elapsed:.0f} ms): {custom.get('summary', '')}")


def _answer(plugin: PluginProcess, ctx: pb.PluginContext, use: str, args: argparse.Namespace) -> int:
    now = int(time.time() * 1000)
    t = time.perf_counter()
    response = _query(plugin, ctx, use, now)
    elapsed = (time.perf_counter() - t) * 1000
    if response.status != 200:
        print(f"QueryData failed with status {response.status}: {response.error}")
        return 1
    frames = [decode_frame(b) for b in response.frames]
    model_label = model_label_for(use)
    print(f"QueryData: status {response.status}, {len(frames)} Arrow frames in {elapsed:.0f} ms "
          f"[{frames[-1].meta.executed_query_string if frames[-1].meta else ''}]")
    for s in read_forecasts(frames):
        print(f"\nVERDICT ({model_label}): {verdict(s, args.threshold, 'above', 'QPS')}")
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        drawn = plot(args.plot, s, args.threshold, model_label)
        print(f"Plot: {os.path.abspath(args.plot)}" if drawn else f"Plot: {NO_PLOT}")
    _backtest(plugin, ctx, use, now)
    started = time.perf_counter()
    code = plugin.shutdown()
    print(f"Plugin stopped by GRPCController.Shutdown in {time.perf_counter() - started:.2f} s "
          f"(exit {code}).")
    return 0
