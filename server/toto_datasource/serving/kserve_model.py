"""Toto as a KServe Python model: the OIP v2 contract served by KServe's own ModelServer.

    python -m toto_datasource.serving.kserve_model --checkpoint DIR [--grpc_port 8081 --http_port 8080]

Runs in KServe's environment, not the plugin's: KServe 0.21 needs protobuf < 7, this project
pins protobuf 7, so this module imports only protobuf-free code of ours (engine/oip_tensors.py,
serving/engine.py, serving/merging.py; never toto_datasource._proto) and KServe's own OIP
messages. Same engine code as the plain server (serving/oip.py): ServingEngine loads and runs
the checkpoint, and a MergingRunner runs requests that queue behind a model call as one call
(KServe's Python server does not batch across requests itself), so answers equal the
in-process engine within float32 rounding.

What KServe 0.21 does not pass on (measured against its gRPC servicer): ModelMetadata carries
only name, inputs and outputs — no `properties` and an empty platform — so the plugin's
CheckHealth says "checkpoint unknown" and the plugin keeps its default 4 calls in flight (they
merge here). KServe has no auth of its own (put the bearer token check in front of it, e.g.
the ingress), and it binds gRPC on [::] and HTTP on 0.0.0.0 whatever the arguments: the test
runs it in a loopback-only network namespace (tests/serving/kserve_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from typing import Any

import kserve
import numpy as np
from grpc_interceptor import exceptions as grpc_status
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse, to_http_parameters

from ..engine import oip_tensors as oip
from ..engine.batch import PreparedBatch
from .engine import ServingEngine, ServingOptions, add_model_arguments
from .merging import CallerGone, MergedCallFailed, MergingRunner


def _tensor(infer_input: Any, datatype: str) -> np.ndarray:
    if infer_input.datatype != datatype:
        raise oip.ContractError(
            f"tensor {infer_input.name!r} must be {datatype}, got {infer_input.datatype!r}")
    try:
        array = infer_input.as_numpy()
    except ValueError as exc:  # raw bytes that do not fill the shape
        raise oip.ContractError(f"tensor {infer_input.name!r}: {exc}") from exc
    # a writable copy in the contract's dtype: torch refuses read-only buffers
    return np.array(array, dtype=oip.NUMPY_DTYPES[datatype])


def batch_of(request: InferRequest) -> PreparedBatch:
    """KServe's decoded InferRequest → the PreparedBatch, with the plain server's checks."""
    specs = {s.name: s for s in oip.INPUTS}
    tensors = {i.name: _tensor(i, specs[i.name].datatype) for i in request.inputs if i.name in specs}
    return oip.batch_from_parameters(tensors, to_http_parameters(request.parameters or {}))


class TotoKServeModel(kserve.Model):
    def __init__(self, options: ServingOptions) -> None:
        super().__init__(options.model_name)
        self.options = options
        self.engine = ServingEngine(options)
        self.runner: MergingRunner | None = None

    def load(self) -> bool:
        self.engine.load()
        self.runner = MergingRunner(self.engine)
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in oip.INPUTS]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in oip.OUTPUTS]

    async def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> InferResponse:
        assert self.runner is not None, "predict before load"
        try:
            batch = batch_of(payload)
        except oip.ContractError as exc:
            raise InvalidInput(str(exc)) from exc  # KServe answers INVALID_ARGUMENT
        if batch.rows > self.options.max_rows:
            raise grpc_status.ResourceExhausted(
                f"{batch.rows} rows in one request; this server takes at most {self.options.max_rows}"
            )
        gone = threading.Event()  # the caller cancelled or its deadline passed: drop it if still queued
        try:
            quantiles = await asyncio.to_thread(self.runner.run, batch, gone.is_set)
        except asyncio.CancelledError:
            gone.set()
            raise
        except CallerGone as exc:
            raise grpc_status.Cancelled(str(exc)) from exc
        except MergedCallFailed as exc:
            raise grpc_status.Internal(f"the model failed: {exc}") from exc
        # raw bytes set here: KServe 0.21's to_grpc tests `output.data and ...` and fails on an
        # ndarray passed as `data` ("truth value of an array ... is ambiguous")
        output = InferOutput(oip.QUANTILES, list(quantiles.shape), "FP32")
        output.set_data_from_numpy(np.ascontiguousarray(quantiles, dtype=oip.NUMPY_DTYPES["FP32"]))
        return InferResponse(payload.id, self.name, [output], use_binary_outputs=True)


def main(argv: list[str] | None = None) -> None:
    # KServe's own flags (--grpc_port, --http_port, ...) are read by kserve.model_server from
    # sys.argv when it is imported; these are ours, and the rest is left to KServe.
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--max_rows", type=int, default=256,
                        help="rows per request (more: RESOURCE_EXHAUSTED); keep >= 256, the plugin's "
                             "split size when the server's metadata does not say (KServe's never does)")
    parser.add_argument("--no_warmup", action="store_true")
    args, _ = parser.parse_known_args(argv)
    options = ServingOptions(args.checkpoint, args.device, args.dtype, args.model_name,
                             max_rows=args.max_rows, warmup=not args.no_warmup)
    model = TotoKServeModel(options)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
