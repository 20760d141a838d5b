"""`toto-datasource`: plugin mode (default), serve, forecast, demo, tiny-model."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from . import plugin_install
from .core.settings import ModelSettings
from .serving import cli as serving_cli

TINY_MODEL_DIR = Path("var/checkpoints/toto-2.0-4m-random")


def _default_model_settings(ds) -> ModelSettings | None:  # type: ignore[no-untyped-def]
    """The model an unconfigured data source gets (admin pins included: GF_PLUGIN_MODEL, or
    GF_PLUGIN_INFERENCE_URL for an inference server), or None when those pins are invalid
    (every query then reports the 400)."""
    from .core.errors import BackendError
    from .core.settings import RawSettings

    try:
        return ds.parse_settings(RawSettings()).model
    except BackendError:
        return None


def process_config(environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """The process's config, read once here; a knob with a bad value ends the start with a
    message naming it (Grafana shows it in the plugin's log)."""
    from .core.config import ConfigError, ProcessConfig

    try:
        return ProcessConfig.from_environment(environ)
    except ConfigError as exc:
        print(f"toto-datasource: invalid configuration: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _data_source(preload: bool, config=None):  # type: ignore[no-untyped-def]
    """The data source with its model registry; the default model starts loading in the background."""
    from .engine.registry import ModelRegistry
    from .service import ForecastDataSource

    registry = ModelRegistry(config if config is not None else process_config())
    ds = ForecastDataSource(registry)
    default = _default_model_settings(ds) if preload else None
    loader = threading.Thread(target=registry.ensure, args=(default,), daemon=True) if default else None
    return ds, loader


def cmd_plugin(args: argparse.Namespace) -> None:
    # gRPC's C core writes its own log lines straight to stderr as plain text (e.g. an info line when a
    # inference server's connection sends GOAWAY), which breaks Grafana's hclog JSON stream: errors only.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from .plugin.server import check_environment

    check_environment(dict(os.environ))  # before anything slow: a clear message when run by hand
    from .plugin.logging import setup_logging
    from .plugin.server import serve_plugin

    ds, loader = _data_source(preload=True)
    setup_logging(ds.config.log_level)
    serve_plugin(ds, on_ready=loader)


# The knobs `serve` takes as flags; the rest come from its TOTO_<KEY> environment.
SERVE_FLAGS = ("model", "device", "dtype", "inference_url", "inference_model", "log_level")


def serve_config(args: argparse.Namespace, environ: dict[str, str]):  # type: ignore[no-untyped-def]
    """A server on its own (a sidecar) is not started by Grafana, so it receives no GF_PLUGIN_*:
    its config is its own TOTO_<KEY> environment, then its flags. A GF_PLUGIN_* variable in its
    environment is not Grafana's and is not read."""
    own = {k: v for k, v in environ.items() if not k.startswith("GF_PLUGIN_")}
    flags = {key: getattr(args, key) for key in SERVE_FLAGS if getattr(args, key)}
    return process_config(own).with_values(**flags)


def cmd_serve(args: argparse.Namespace) -> None:
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from .plugin.logging import setup_logging
    from .plugin.server import serve_standalone

    config = serve_config(args, dict(os.environ))
    setup_logging(config.log_level)
    ds, loader = _data_source(preload=True, config=config)
    serve_standalone(ds, args.address, on_ready=loader, health_address=args.health_address)


def cmd_tiny_model(args: argparse.Namespace) -> None:
    from .engine.toto import write_random_checkpoint

    out = write_random_checkpoint(args.output, args.size, args.seed)
    print(f"wrote a random-weight Toto-2.0-{args.size} checkpoint to {out}")


def cmd_forecast(args: argparse.Namespace) -> None:
    from .forecast_cli import run_forecast_command

    sys.exit(run_forecast_command(args, process_config()))


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    sys.exit(run_demo(args, process_config()))


def cmd_schema(args: argparse.Namespace) -> None:
    """The query schema of the built-in sources and query types (query.schema.json is its output)."""
    import json

    from .core.config import ProcessConfig
    from .engine.registry import ModelRegistry
    from .service import ForecastDataSource

    print(json.dumps(ForecastDataSource(ModelRegistry(ProcessConfig(), warmup=False)).schema(), indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toto-datasource", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("plugin", help="run as a Grafana plugin (the default; Grafana starts it)")
    serve = sub.add_parser("serve", help="the plugin server on its own (a sidecar): pluginv2 gRPC on TCP")
    serve.add_argument("--address", default=os.environ.get("TOTO_ADDRESS", "127.0.0.1:50051"),
                       help="where Grafana's launcher connects (keep it on 127.0.0.1: no authentication)")
    serve.add_argument("--health-address", default=os.environ.get("TOTO_HEALTH_ADDRESS", ""),
                       help="HTTP /livez and /readyz for a kubelet, e.g. 0.0.0.0:8081 (default: none)")
    serve.add_argument("--model", default="", help="checkpoint dir or hub id, every data source (TOTO_MODEL)")
    serve.add_argument("--device", default="", help="auto, cpu, cuda, cuda:N (TOTO_DEVICE)")
    serve.add_argument("--dtype", default="", help="float32, bfloat16, int8 (TOTO_DTYPE)")
    serve.add_argument("--inference-url", default="", help="send every model call to this OIP v2 server")
    serve.add_argument("--inference-model", default="", help="the model name there (default toto)")
    serve.add_argument("--log-level", default="", help="debug, info, warn, error (TOTO_LOG_LEVEL)")
    tiny = sub.add_parser("tiny-model", help="write a seeded random-weight checkpoint (tests, offline demo)")
    tiny.add_argument("--output", default=str(TINY_MODEL_DIR))
    tiny.add_argument("--size", default="4m", choices=["4m", "22m", "313m"])
    tiny.add_argument("--seed", type=int, default=0)
    fc = sub.add_parser("forecast", help="forecast a CSV or a demo scenario; write CSV and PNG")
    src = fc.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="CSV with a timestamp column (epoch s/ms or ISO 8601) and value columns")
    src.add_argument("--demo", help="demo scenario, e.g. postgres-load")
    fc.add_argument("--horizon", default="1h", help="duration (2h) or steps (120)")
    fc.add_argument("--step", default="", help="demo step, e.g. 1m")
    fc.add_argument("--threshold", type=float)
    fc.add_argument("--direction", default="above", choices=["above", "below"])
    fc.add_argument("--model", default="", help="checkpoint dir or hub id, or statistical / seasonal-naive")
    fc.add_argument("--output", default="forecast.csv")
    fc.add_argument("--plot", default="forecast.png")
    demo = sub.add_parser("demo", help="the main job: Grafana-style QueryData for the PostgreSQL scenario")
    demo.add_argument(
        "--model", default="", help="checkpoint dir or hub id (default: GF_PLUGIN_MODEL or the hub)"
    )
    demo.add_argument("--plot", default="var/demo/postgres-forecast.png")
    demo.add_argument("--threshold", type=float, default=500.0)
    demo.add_argument("--wait", type=float, default=180.0, help="seconds to wait for the model to load")
    sub.add_parser("schema", help="print the query JSON schema (regenerates query.schema.json)")
    serving_cli.add_parser(sub)
    plugin_install.add_parser(sub)
    return parser


COMMANDS = {
    None: cmd_plugin,
    "plugin": cmd_plugin,
    "serve": cmd_serve,
    "tiny-model": cmd_tiny_model,
    "forecast": cmd_forecast,
    "demo": cmd_demo,
    "schema": cmd_schema,
    "serve-model": lambda args: serving_cli.run(args),
    "install-plugin": lambda args: sys.exit(plugin_install.run(args)),
}


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    COMMANDS[args.command](args)
