"""Build the gRPC server and run it either as Grafana's child (plugin mode) or by hand.

Plugin mode follows go-plugin's server contract: check the magic cookie
and protocol versions, listen on a unix socket, print the handshake as the first and only
stdout line, then send all later stdout to stderr, ignore SIGINT and exit on Shutdown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .._proto.goplugin import grpc_controller_pb2_grpc as ctl_grpc
from .._proto.pluginv2 import backend_pb2_grpc as pb_grpc
from ..service import ForecastDataSource
from .admission import AdmissionInterceptor, Limits
from .executor import ElasticThreadPool
from .memory import trim_heap
from .servicers import ControllerServicer, DataServicer, DiagnosticsServicer, Edge, ResourceServicer

MAGIC_COOKIE_KEY = "grafana_plugin_type"
MAGIC_COOKIE_VALUE = "datasource"
APP_PROTOCOL_VERSION = "2"
CORE_PROTOCOL_VERSION = "1"
MAX_RECEIVE_BYTES = 64 * 1024 * 1024
# Threads for RPCs (ProcessConfig.max_rpc_threads). Data calls may take all but RESERVED_THREADS;
# CheckHealth at most HEALTH_THREADS of those; the rest always answer grpc.health,
# CollectMetrics and Shutdown.
RESERVED_THREADS = 8
HEALTH_THREADS = 4
SHUTDOWN_DEADLINE_S = 1.5  # go-plugin kills 2 s after Shutdown; the process is gone before
NOT_A_PLUGIN = (
    "This is a Grafana backend plugin: Grafana starts it. To run the server by hand, use "
    "`toto-datasource serve --address 127.0.0.1:50051`."
)


class HandshakeError(SystemExit):
    def __init__(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        super().__init__(1)


def check_environment(environ: dict[str, str]) -> None:
    if environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        raise HandshakeError(NOT_A_PLUGIN)
    offered = [v.strip() for v in environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",") if v.strip()]
    if APP_PROTOCOL_VERSION not in offered:
        raise HandshakeError(
            f"Grafana offered plugin protocol versions {offered or 'none'} (PLUGIN_PROTOCOL_VERSIONS); "
            f"this plugin speaks version {APP_PROTOCOL_VERSION}. Upgrade Grafana or the plugin."
        )


def build_server(ds: ForecastDataSource, stop: threading.Event, *, honour_shutdown: bool) -> grpc.Server:
    threads = max(RESERVED_THREADS + 2, ds.config.max_rpc_threads)
    limits = Limits(data=threads - RESERVED_THREADS, health=HEALTH_THREADS)
    server = grpc.server(
        ElasticThreadPool(threads, name="grpc", on_idle=trim_heap if ds.config.malloc_trim else None),
        interceptors=[AdmissionInterceptor(limits)],
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", -1),
        ],
    )
    edge = Edge(ds)  # the CPU slots and instance lookups every capability shares
    pb_grpc.add_DataServicer_to_server(DataServicer(edge), server)
    pb_grpc.add_DiagnosticsServicer_to_server(DiagnosticsServicer(edge), server)
    pb_grpc.add_ResourceServicer_to_server(ResourceServicer(edge), server)
    ctl_grpc.add_GRPCControllerServicer_to_server(ControllerServicer(stop, honour_shutdown), server)
    health_servicer = health.HealthServicer()
    for name in ("plugin", ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server


def socket_path(environ: dict[str, str]) -> str:
    directory = environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix="plugin", dir=directory)
    os.close(fd)
    os.unlink(path)
    return path


def send_stdout_to_stderr() -> None:
    """After the handshake nothing may reach stdout: not print(), not a C library's banner."""
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr


def serve_plugin(ds: ForecastDataSource, on_ready: threading.Thread | None = None) -> None:
    environ = dict(os.environ)
    check_environment(environ)
    stop = threading.Event()
    # Before the handshake: a SIGTERM right after it (`docker stop` of Grafana's container) must
    # already find the handler that removes the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = build_server(ds, stop, honour_shutdown=True)
    path = socket_path(environ)
    server.add_insecure_port(f"unix:{path}")
    server.start()
    group = environ.get("PLUGIN_UNIX_SOCKET_GROUP")
    if group:
        import grp

        os.chown(path, -1, grp.getgrnam(group).gr_gid)
        os.chmod(path, 0o660)
    sys.stdout.write(f"{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{path}|grpc|\n")
    send_stdout_to_stderr()
    if on_ready is not None:
        on_ready.start()
    stop.wait()
    exit_within(server, path, SHUTDOWN_DEADLINE_S)


def exit_within(server: grpc.Server, path: str, budget_s: float) -> None:
    """End the process within `budget_s` whatever is in flight: the socket goes first (nothing new
    can connect), in-flight calls get what is left of the budget to finish, then os._exit (a
    stuck worker thread or a non-daemon library thread cannot keep the process alive)."""
    started = time.monotonic()
    watchdog = threading.Timer(budget_s + 0.2, os._exit, args=(0,))
    watchdog.daemon = True
    watchdog.start()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    grace = max(0.0, budget_s - 0.5)
    server.stop(grace=grace).wait(max(0.0, budget_s - (time.monotonic() - started)))
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(0)


def serve_standalone(ds: ForecastDataSource, address: str, on_ready: threading.Thread | None = None,
                     health_address: str = "") -> None:
    """A server on its own (the sidecar, a GPU host): TCP, Grafana connects through the sidecar
    launcher. It ignores go-plugin's Shutdown, which every Grafana that stops its launcher sends
    (the server is shared: it keeps serving and keeps its loaded model), and stops on
    SIGINT/SIGTERM (the container runtime). `health_address`: HTTP /livez and /readyz."""
    stop = threading.Event()
    server = build_server(ds, stop, honour_shutdown=False)
    port = server.add_insecure_port(address)
    if port == 0:
        raise SystemExit(f"toto-datasource serve: cannot listen on {address} (in use, or not an address "
                         "of this host)")
    server.start()
    host = address.rsplit(":", 1)[0]
    probes = None
    if health_address:
        from .probes import ProbeEndpoint

        loopback = "127.0.0.1" if host in ("0.0.0.0", "[::]", "") else host
        models = lambda: [  # noqa: E731
            {"checkpoint": h.settings.checkpoint, "runtime": h.runtime.name, "state": str(h.state)}
            for h in ds.registry.handles()
        ]
        probes = ProbeEndpoint(health_address, f"{loopback}:{port}", stop, models).start()
    print(f"toto-datasource serving pluginv2 on {host}:{port}"
          + (f", probes on http://{health_address.rsplit(':', 1)[0]}:{probes.port}/livez and /readyz"
             if probes else ""), file=sys.stderr, flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if on_ready is not None:
        on_ready.start()
    stop.wait()
    if probes is not None:
        probes.stop()
    server.stop(grace=1).wait(1.5)
