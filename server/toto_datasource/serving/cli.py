"""`toto-datasource serve-model`: run Toto behind OIP v2, on plain grpcio or on a Ray cluster.

    toto-datasource serve-model --checkpoint DIR --address 127.0.0.1:8001        # one process
    toto-datasource serve-model --checkpoint DIR --ray --replicas 2 --grpc-port 9000  # Ray Serve

With --ray it connects to RAY_ADDRESS (or --ray-address; "local" starts a throwaway one),
starts Serve with the gRPC proxy on --grpc-port, deploys the app and waits until its replicas
are ready; --detach then returns and leaves the app running (Serve apps outlive their driver).
The bearer token is read from the environment variable named by --token-env, never argv.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("serve-model", help="serve the Toto model over the Open Inference Protocol v2 (gRPC)")
    p.add_argument("--checkpoint", default=os.environ.get("GF_PLUGIN_MODEL", ""), help="directory or hub id")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--model-name", default="toto", help="the OIP model name clients ask for")
    p.add_argument("--token-env", default="TOTO_INFERENCE_TOKEN", help="env var holding the bearer token")
    p.add_argument("--max-rows", type=int, default=256, help="rows per request advertised to clients")
    p.add_argument("--max-cells", type=int, default=0, help="rows × variates × length per model call")
    p.add_argument("--address", default="127.0.0.1:8001", help="plain grpcio: where to listen")
    p.add_argument("--tls-cert", default="", help="plain grpcio: PEM certificate chain file")
    p.add_argument("--tls-key", default="", help="plain grpcio: PEM private key file")
    p.add_argument("--ray", action="store_true", help="deploy on Ray Serve instead of one process")
    p.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS", "auto"))
    p.add_argument("--app-name", default="toto")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs reserved per replica")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per replica")
    p.add_argument("--grpc-port", type=int, default=9000, help="Serve's gRPC proxy port")
    p.add_argument("--http-port", type=int, default=8000, help="Serve's HTTP proxy port (unused by OIP)")
    p.add_argument("--batch-wait-ms", type=float, default=0.0,
                   help="@serve.batch wait for more rows (0: merge only what queued meanwhile; ray_app.py)")
    p.add_argument("--max-batch-rows", type=int, default=128, help="rows per Serve batch")
    p.add_argument("--detach", action="store_true", help="--ray: return once deployed")
    p.add_argument("--direct-ingress", action="store_true",
                   help="--ray: each replica also serves OIP on its own gRPC port (from 40000), without the "
                        "proxy hop; needs RAY_SERVE_ENABLE_DIRECT_INGRESS=1 in the Ray nodes' env (set here "
                        "for --ray-address local); prints the replicas' addresses (ray_tuning.py)")
    p.add_argument("--log-level", default="info")
    return p


def _options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .engine import ServingOptions

    if not args.checkpoint:
        sys.exit("serve-model needs --checkpoint (or GF_PLUGIN_MODEL)")
    return ServingOptions(
        checkpoint=args.checkpoint,
        device=args.device,
        dtype=args.dtype,
        model_name=args.model_name,
        token=os.environ.get(args.token_env, ""),
        max_rows=args.max_rows,
        max_cells=args.max_cells,
    )


def serve_plain(args: argparse.Namespace) -> None:
    from .engine import ServingEngine
    from .oip import OIPServicer, build_server

    engine = ServingEngine(_options(args)).load()
    tls = None
    if args.tls_cert or args.tls_key:
        with open(args.tls_key, "rb") as k, open(args.tls_cert, "rb") as c:
            tls = (k.read(), c.read())
    server, port = build_server(OIPServicer(engine), args.address, tls=tls)
    server.start()
    host = args.address.rsplit(":", 1)[0]
    print(
        f"toto-datasource serving OIP v2 model {args.model_name!r} on {host}:{port}",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
        pass
    server.stop(grace=1).wait(1.5)
    os._exit(0)  # torch's and grpc's worker threads must not hold the exit


def deploy_ray(args: argparse.Namespace) -> None:
    import ray
    from ray import serve
    from ray.serve.config import HTTPOptions, gRPCOptions

    from .ray_app import SERVICER_FUNCTION, TotoOIP
    from .ray_tuning import DIRECT_INGRESS_ENV, PROXY_ENV, REPLICA_ENV

    options = _options(args)
    node_env = {**PROXY_ENV, **(DIRECT_INGRESS_ENV if args.direct_ingress else {})}
    for name, value in node_env.items():  # reaches the proxy only of a Ray that ray.init starts here
        os.environ.setdefault(name, value)
    ray.init(address=None if args.ray_address == "local" else args.ray_address, log_to_driver=False)
    serve.start(
        http_options=HTTPOptions(host="127.0.0.1", port=args.http_port),
        grpc_options=gRPCOptions(port=args.grpc_port, grpc_servicer_functions=[SERVICER_FUNCTION]),
    )
    env = {**REPLICA_ENV, **({args.token_env: options.token} if options.token else {})}
    app = TotoOIP.options(
        num_replicas=args.replicas,
        ray_actor_options={
            "num_cpus": args.num_cpus,
            "num_gpus": args.num_gpus,
            "runtime_env": {"env_vars": env},
        },
    ).bind(
        checkpoint=options.checkpoint,
        device=options.device,
        dtype=options.dtype,
        model_name=options.model_name,
        token_env=args.token_env if options.token else "",
        max_rows=options.max_rows,
        max_cells=options.max_cells,
        max_batch_rows=args.max_batch_rows,
        batch_wait_timeout_s=args.batch_wait_ms / 1000,
        client_concurrency=args.replicas,
    )
    # gRPC routes by app name, but the proxy only knows apps that have a route prefix.
    serve.run(app, name=args.app_name, route_prefix=f"/{args.app_name}", blocking=False)
    print(
        f"Ray Serve app {args.app_name!r}: {args.replicas} replica(s) ready; "
        f"OIP v2 on gRPC port {args.grpc_port}",
        file=sys.stderr,
        flush=True,
    )
    if args.direct_ingress:
        found = ", ".join(direct_ingress_addresses(args.app_name))
        print(f"direct ingress (OIP v2 on each replica's own port): "
              f"{found or 'none; set RAY_SERVE_ENABLE_DIRECT_INGRESS=1 in the Ray nodes env'}",
              file=sys.stderr, flush=True)
    if args.detach:
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    serve.delete(args.app_name)


def direct_ingress_addresses(app_name: str) -> list[str]:
    """The app's replicas' own gRPC addresses, from the Serve controller's target groups (Serve's
    alpha API, what its HAProxy ingress reads); [] when direct ingress is off (the groups are then
    the proxies, on the usual port)."""
    import ray
    from ray.serve.context import _get_global_client
    from ray.serve.schema import RequestProtocol

    from .ray_tuning import DIRECT_INGRESS_MIN_GRPC_PORT

    controller = _get_global_client()._controller
    groups = ray.get(controller.get_target_groups.remote(app_name))
    return [f"{t.ip}:{t.port}" for g in groups if g.protocol == RequestProtocol.GRPC
            for t in g.targets if t.port >= DIRECT_INGRESS_MIN_GRPC_PORT]


def run(args: argparse.Namespace) -> None:
    import logging

    # The server server is not a Grafana plugin: plain stderr lines, not the plugin's hclog format.
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.ray:
        deploy_ray(args)
    else:
        serve_plain(args)
