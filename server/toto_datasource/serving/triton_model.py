"""Toto on NVIDIA Triton Inference Server through PyTriton: the OIP v2 contract served by Triton.

    python -m toto_datasource.serving.triton_model --checkpoint DIR [--grpc_port 8001 --http_port 8000]

Runs in PyTriton's environment, not the plugin's: nvidia-pytriton 0.7 needs numpy < 2 and its
tritonclient brings protobuf 6, where this project's protobuf 7 stubs refuse to load, so this
module imports only protobuf-free code of ours (engine/oip_tensors.py, serving/engine.py,
serving/merging.py; never toto_datasource._proto or engine.remote; an import-linter contract
keeps it so). PyTriton starts the `tritonserver` binary of its wheel with a Python-backend
model that forwards each request to a callable in this process; the callable runs the same
ServingEngine (and MergingRunner) as serve-model and KServe, so answers equal the in-process
engine within float32 rounding (one request alone: bit for bit).

Triton's batching: none. The model is bound with `batching=False` (Triton's max_batch_size 0),
so the shapes Triton checks and advertises are the contract's own ([rows, variates, length],
[rows, variates], [9, rows, variates, horizon]): the contract's leading `rows` is not Triton's
batch dimension, and Triton's dynamic batcher, which only stacks requests of equal shapes, is
off. Rows are merged here instead: `--instances` (4, the plugin's default calls in flight)
Triton model instances hand concurrent requests to this process, and the ones that queue behind
a running model call share the next one (serving/merging.py), as on serve-model and KServe.

What Triton does not pass on: ModelMetadata has name, versions, platform ("python") and the
tensors, no custom properties. So the plugin's CheckHealth says "checkpoint unknown", it keeps
its default 4 calls in flight and splits batches at its default 256 rows (keep --max_rows
>= 256). Errors raised here reach the client as Triton's INTERNAL with the message (and
PyTriton's traceback): the plugin answers 502 with the server's detail. Requests whose tensors
do not match the bound names, dtypes or ranks Triton itself rejects with INVALID_ARGUMENT.
Auth: none on inference, health and metadata. Triton can require a header on them
(`--grpc-restricted-protocol=<protocols>:<key>=<value>`), but PyTriton 0.7 splits Triton's
arguments on spaces (TritonServerConfig.to_args_list), so `authorization=Bearer <token>` cannot
be passed through it: put the bearer-token check at the ingress, as for KServe. PyTriton's own
guard (header `triton-access-token`, a random token) stays on Triton's admin protocols
(model-repository, shared-memory, statistics, trace, logging). Binding: gRPC and HTTP on
`--address` (127.0.0.1 by default), metrics off.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

import numpy as np
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from ..engine import oip_tensors as oip
from ..engine.batch import PreparedBatch
from .engine import ServingEngine, ServingOptions, add_model_arguments
from .merging import MergingRunner

log = logging.getLogger(__name__)

_NUMPY = {"FP32": np.float32, "BOOL": np.bool_, "INT64": np.int64}


def batch_of(inputs: dict[str, np.ndarray], params: dict[str, Any] | None) -> PreparedBatch:
    """One PyTriton request (its arrays and request parameters) → the PreparedBatch."""
    # writable copies in the contract's dtypes: torch refuses read-only buffers
    tensors = {s.name: np.array(inputs[s.name], dtype=oip.NUMPY_DTYPES[s.datatype])
               for s in oip.INPUTS if s.name in inputs}
    return oip.batch_from_parameters(tensors, params or {})


class TotoTritonModel:
    """The callable PyTriton binds: one list of requests in, one dict of outputs per request out."""

    def __init__(self, options: ServingOptions) -> None:
        self.options = options
        self.engine = ServingEngine(options)
        self.runner: MergingRunner | None = None
        self.requests = 0
        self._lock = threading.Lock()

    def load(self) -> TotoTritonModel:
        self.engine.load()
        self.runner = MergingRunner(self.engine)
        return self

    def __call__(self, requests: list[Any]) -> list[dict[str, np.ndarray]]:
        assert self.runner is not None, "infer before load"
        out = []
        for request in requests:  # batching=False: Triton hands one request per call
            batch = batch_of(request.data, request.parameters)
            if batch.rows > self.options.max_rows:
                raise oip.ContractError(
                    f"{batch.rows} rows in one request; this server takes at most {self.options.max_rows}")
            quantiles = self.runner.run(batch)
            with self._lock:
                self.requests += 1
            out.append({oip.QUANTILES: np.ascontiguousarray(quantiles, dtype=np.float32)})
        return out


def tensors() -> tuple[list[Tensor], list[Tensor]]:
    """The contract's inputs and outputs as PyTriton tensors (shapes as is: no batch dimension)."""
    def tensor(spec: oip.TensorSpec) -> Tensor:
        return Tensor(name=spec.name, dtype=_NUMPY[spec.datatype], shape=spec.shape)

    return [tensor(s) for s in oip.INPUTS], [tensor(s) for s in oip.OUTPUTS]


def triton_config(address: str, grpc_port: int, http_port: int) -> TritonConfig:
    return TritonConfig(grpc_address=address, grpc_port=grpc_port, http_address=address, http_port=http_port,
                        allow_metrics=False)


def serve(options: ServingOptions, address: str, grpc_port: int, http_port: int, instances: int,
          workspace: str | None = None) -> None:
    model = TotoTritonModel(options).load()
    inputs, outputs = tensors()
    # PyTriton's token guard (header `triton-access-token`, a random token by default) kept on
    # Triton's admin protocols (model-repository, shared-memory, ...); the plugin uses none of them.
    with Triton(config=triton_config(address, grpc_port, http_port),
                workspace=workspace) as triton:
        triton.bind(
            model_name=options.model_name,
            infer_func=[model] * max(1, instances),  # Triton instances: concurrent requests reach the runner
            inputs=inputs,
            outputs=outputs,
            config=ModelConfig(batching=False),
            strict=True,
        )
        log.info("Toto model %r on Triton: gRPC %s:%d", options.model_name, address, grpc_port)
        try:
            triton.serve()
        finally:
            log.info("served %d requests in %d model calls (%d rows)", model.requests,
                     model.engine.calls, model.engine.rows)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # PyTriton's serve() stops Triton and its workspace on SIGINT only


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--address", default="127.0.0.1", help="Triton binds gRPC and HTTP here")
    parser.add_argument("--grpc_port", type=int, default=8001)
    parser.add_argument("--http_port", type=int, default=8000, help="PyTriton loads the model through it")
    parser.add_argument("--instances", type=int, default=4,
                        help="Triton model instances (concurrent requests handed to the merging runner)")
    parser.add_argument("--max_rows", type=int, default=256,
                        help="rows per request (more: an error); keep >= 256, the plugin's split size "
                             "when the server's metadata does not say (Triton's never does)")
    parser.add_argument("--workspace", default=None,
                        help="PyTriton's workspace (Triton's binaries, model store); default: a new one")
    parser.add_argument("--no_warmup", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = ServingOptions(args.checkpoint, args.device, args.dtype, args.model_name,
                             max_rows=args.max_rows, warmup=not args.no_warmup)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` (a container stop) shuts down as Ctrl-C does
    serve(options, args.address, args.grpc_port, args.http_port, args.instances, args.workspace)


if __name__ == "__main__":
    main()
