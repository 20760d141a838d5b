"""The reference Ray Serve deployment: Toto behind OIP v2, through Serve's gRPC proxy.

Serve's proxy takes our generated `add_GRPCInferenceServiceServicer_to_server` (gRPC options
`grpc_servicer_functions`, serve_config.yaml) and routes each OIP method by name to the
method of the same name here. ModelInfer decodes the request and joins a `@serve.batch`
queue that counts rows (`batch_size_fn`), not requests: one model call takes up to
`max_batch_rows` rows from any number of concurrent requests, merged by `run_merged` exactly
as the plugin's scheduler merges jobs, split under the memory cap, and run through the same
Toto runner as in-process (serving/engine.py). The model runs in a
worker thread so the replica's event loop keeps answering health and metadata meanwhile.

`batch_wait_timeout_s` (default 0): how long a batch waits for company before it starts. Serve
runs one batch at a time per replica, so rows that arrive while the model is busy are merged into
the next call anyway; a wait only delays a lone request. Measured on 2 shared cores (timestamps
inside the replica, settings alternated on one replica with one plugin in front):
5 ms cost a sequential 1-series call 5.9 ms inside the replica (0: 0.5 ms) and 1 series × 16 clients got
104–120 series/s against 143–173 with no wait (the plugin already merges its clients' jobs and
keeps one call in flight per replica, so there was no company to wait for). 1 ms cost 1.7 ms and
bought nothing. Raise it only for many small independent callers without a plugin in front:
without the plugin, 16 direct callers got 1.1–1.3 rows per call at 5 ms and 6–7 at 50 ms.

The rest of Serve's cost is its proxy → replica hop (~9–10 ms of a call on 2 cores; the plain
grpcio server adds 1.4 ms in all); ray_tuning.py has the Serve flags that shorten it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import grpc
import numpy as np
from ray import serve

from .._proto.inference import grpc_predict_v2_pb2 as pb
from ..engine.batch import PreparedBatch
from ..engine.remote import contract
from .engine import ServingEngine, ServingOptions, run_merged
from .oip import SERVER_NAME, SERVER_VERSION

log = logging.getLogger(__name__)
SERVICER_FUNCTION = (
    "toto_datasource._proto.inference.grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server"
)
DEFAULT_BATCH_WAIT_S = 0.0


def _rows(batches: list[PreparedBatch]) -> int:
    return sum(b.rows for b in batches)


@serve.deployment(
    name="TotoOIP", max_ongoing_requests=256, health_check_period_s=5, health_check_timeout_s=30
)
class TotoOIP:
    def __init__(
        self,
        checkpoint: str,
        device: str = "auto",
        dtype: str = "float32",
        model_name: str = "toto",
        token_env: str = "",
        max_rows: int = 256,
        max_cells: int = 0,
        max_batch_rows: int = 128,
        batch_wait_timeout_s: float = DEFAULT_BATCH_WAIT_S,
        client_concurrency: int = 1,
    ) -> None:
        token = os.environ.get(token_env, "") if token_env else ""  # a secret stays out of the config
        self.engine = ServingEngine(
            ServingOptions(checkpoint, device, dtype, model_name, token, max_rows, max_cells)
        ).load()
        self._batched.set_max_batch_size(max_batch_rows)
        self._batched.set_batch_wait_timeout_s(batch_wait_timeout_s)
        # advertised as max_concurrency: calls a plugin keeps in flight (about one per replica).
        # One plugin, one replica, 1 series x 16 clients: 120 series/s with 1 call in flight,
        # 64 with 4 (each call then carries 3.5 rows and @serve.batch's 5 ms finds little to add).
        self.client_concurrency = max(1, int(client_concurrency))
        self.in_flight = 0
        self.model_calls = 0
        log.info("TotoOIP replica ready", extra={"kv": self.engine.properties})

    # -- helpers --------------------------------------------------------------------------
    def _refuse(self, grpc_context: Any, model: str | None) -> bool:
        """Set an error status on the call when it is not for us; True = answer empty."""
        if not self.engine.authorized(grpc_context.invocation_metadata()):
            grpc_context.set_code(grpc.StatusCode.UNAUTHENTICATED)
            grpc_context.set_details("missing or wrong bearer token")
            return True
        if model is not None and model != self.engine.options.model_name:
            grpc_context.set_code(grpc.StatusCode.NOT_FOUND)
            grpc_context.set_details(f"model {model!r} is not served here")
            return True
        return False

    def _properties(self) -> dict[str, str]:
        return {
            **self.engine.properties,
            "in_flight": str(self.in_flight),
            "model_calls": str(self.engine.calls),
            "model_rows": str(self.engine.rows),
            contract.PROP_MAX_CONCURRENCY: str(self.client_concurrency),
        }

    # -- OIP v2 (names must match the service's methods) ----------------------------------
    async def ServerLive(self, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, grpc_context: Any) -> pb.ServerReadyResponse:
        if self._refuse(grpc_context, None):
            return pb.ServerReadyResponse()
        return pb.ServerReadyResponse(ready=True)  # a replica exists only once its model is loaded

    async def ModelReady(self, request: pb.ModelReadyRequest, grpc_context: Any) -> pb.ModelReadyResponse:
        if self._refuse(grpc_context, request.name):
            return pb.ModelReadyResponse()
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, grpc_context: Any
    ) -> pb.ServerMetadataResponse:
        if self._refuse(grpc_context, None):
            return pb.ServerMetadataResponse()
        return pb.ServerMetadataResponse(name=f"{SERVER_NAME}-ray-serve", version=SERVER_VERSION)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, grpc_context: Any
    ) -> pb.ModelMetadataResponse:
        if self._refuse(grpc_context, request.name):
            return pb.ModelMetadataResponse()
        return contract.model_metadata(self.engine.options.model_name, self._properties(), "toto-2/ray-serve")

    async def ModelInfer(self, request: pb.ModelInferRequest, grpc_context: Any) -> pb.ModelInferResponse:
        if self._refuse(grpc_context, request.model_name):
            return pb.ModelInferResponse()
        try:
            batch = contract.decode_request(request)
        except contract.ContractError as exc:
            grpc_context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            grpc_context.set_details(str(exc))
            return pb.ModelInferResponse()
        if batch.rows > self.engine.options.max_rows:
            grpc_context.set_code(grpc.StatusCode.RESOURCE_EXHAUSTED)
            grpc_context.set_details(f"{batch.rows} rows; this server takes {self.engine.options.max_rows}")
            return pb.ModelInferResponse()
        self.in_flight += 1
        try:
            quantiles = await self._batched(batch)
        finally:
            self.in_flight -= 1
        return contract.encode_response(quantiles, request)

    @serve.batch(max_batch_size=128, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S, batch_size_fn=_rows)
    async def _batched(self, batches: list[PreparedBatch]) -> list[np.ndarray]:
        return await asyncio.to_thread(run_merged, self.engine, batches)


def build_app(args: dict[str, Any]) -> Any:
    """Application builder for `serve deploy` / `serve run` (import_path ...ray_app:build_app).

    args: checkpoint (required), device, dtype, model_name, token_env (the name of an env var
    holding the bearer token), max_rows, max_cells, max_batch_rows, batch_wait_timeout_s,
    client_concurrency (calls each plugin keeps in flight: about the number of replicas).
    """
    if "checkpoint" not in args:
        raise ValueError("the Toto Serve app needs args.checkpoint (a directory or a hub id)")
    return TotoOIP.bind(**args)
