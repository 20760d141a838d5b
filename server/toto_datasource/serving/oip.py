"""An Open Inference Protocol v2 servicer for Toto, and a plain grpcio server to run it.

The servicer answers ModelInfer by decoding the request into a PreparedBatch and running it
through `ServingEngine` (the in-process engine code) via a `MergingRunner` (merging.py): one
model call at a time (on a CPU two concurrent calls only share the same cores, and block
decoding keeps state on the model), and requests that arrive while it runs queue up and go
into the next call together, with no timer. Why: with 4 calls in flight from the plugin, 16
concurrent 1-series clients arrive as ~3.5-row requests; served one by one under a lock the
engine ran 3.5 rows per call and gave 0.59x the in-process throughput (median of 5 alternating
3 s windows, 2 shared cores); merged, 7 rows per call and 0.78x (0.86x with 2 calls in flight,
1.07x with 1; merging.py). So ModelMetadata advertises `max_concurrency` 1, and the plugin keeps
one call in flight here. Ray Serve (ray_app.py) does the same with @serve.batch across
replicas; this server is for local runs, tests and one-model servers.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import grpc

from .._proto.inference import grpc_predict_v2_pb2 as pb
from .._proto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from ..engine.remote import contract
from .engine import ServingEngine
from .merging import CallerGone, MergedCallFailed, MergingRunner

log = logging.getLogger(__name__)
SERVER_NAME = "toto-forecast-oip"
SERVER_VERSION = "0.1.0"
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class OIPServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, engine: ServingEngine) -> None:
        self.engine = engine
        self.runner = MergingRunner(engine)

    # -- helpers --------------------------------------------------------------------------
    def _check(self, context: grpc.ServicerContext, model: str | None = None) -> None:
        if not self.engine.authorized(context.invocation_metadata()):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if model is not None and model != self.engine.options.model_name:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"model {model!r} is not served here (this server has {self.engine.options.model_name!r})",
            )

    @property
    def ready(self) -> bool:
        return self.engine.loaded is not None

    # -- OIP v2 ---------------------------------------------------------------------------
    def ServerLive(self, request, context):  # type: ignore[no-untyped-def]
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):  # type: ignore[no-untyped-def]
        self._check(context)
        return pb.ServerReadyResponse(ready=self.ready)

    def ModelReady(self, request, context):  # type: ignore[no-untyped-def]
        self._check(context, request.name)
        return pb.ModelReadyResponse(ready=self.ready)

    def ServerMetadata(self, request, context):  # type: ignore[no-untyped-def]
        self._check(context)
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=SERVER_VERSION, extensions=[])

    def ModelMetadata(self, request, context):  # type: ignore[no-untyped-def]
        self._check(context, request.name)
        counters = {
            "model_calls": str(self.engine.calls),
            "model_rows": str(self.engine.rows),
            "merged_calls": str(self.runner.rounds),
            "merged_requests": str(self.runner.requests_run),
            # one model here, and queued requests merge: a client gains nothing from a second call
            contract.PROP_MAX_CONCURRENCY: "1",
        }
        return contract.model_metadata(self.engine.options.model_name, {**self.engine.properties, **counters})

    def ModelInfer(self, request, context):  # type: ignore[no-untyped-def]
        self._check(context, request.model_name)
        try:
            batch = contract.decode_request(request)
        except contract.ContractError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if batch.rows > self.engine.options.max_rows:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{batch.rows} rows in one request; this server takes at most {self.engine.options.max_rows}",
            )
        try:
            quantiles = self.runner.run(batch, gone=lambda: not context.is_active())
        except CallerGone as exc:  # gave up while waiting for the model: dropped, not run
            context.abort(grpc.StatusCode.CANCELLED, str(exc))
        except MergedCallFailed as exc:
            context.abort(grpc.StatusCode.INTERNAL, f"the model failed: {exc}")
        return contract.encode_response(quantiles, request)


def build_server(
    servicer: pb_grpc.GRPCInferenceServiceServicer,
    address: str,
    workers: int = 32,
    tls: tuple[bytes, bytes] | None = None,
) -> tuple[grpc.Server, int]:
    """A not-yet-started grpcio server on `address`; `tls` = (PEM key, PEM cert chain) or plaintext.
    Returns it and the bound port."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="oip"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    if tls:
        port = server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    log.info("serving OIP v2", extra={"kv": {"address": address, "port": port}})
    return server, port
