"""The Open Inference Protocol v2 contract for Toto: tensor names, dtypes, shapes, parameters.

The plugin's RemoteRunner and the plain and Ray Serve servers import this one module — the
plugin encodes a PreparedBatch and decodes quantiles, the servers do the reverse — so the wire
format is written down once; docs/REMOTE_INFERENCE.md is its prose form, for engines that are
not ours. The names, shapes and checks live in the protobuf-free engine/oip_tensors.py, which
the KServe and Triton models (serving/kserve_model.py, serving/triton_model.py) use without our
protobuf 7 stubs.

Tensors travel as raw little-endian bytes (`raw_input_contents` / `raw_output_contents`): for
64 series × 2048 points that is 1.05 MB up and 0.59 MB down, against 2.6 / 3.1 MB and ~500 ms
more for JSON (measured when the wire format was chosen). Typed `contents` are accepted on
decode for engines that send them. Quantiles go back as FP32, which is what the model computes,
and both ends run the same Toto runner (engine/toto_runner.py: rows below toto2's scale floor
rescaled by a power of two on either side, or both), so remote ≡ in-process exactly, at every
magnitude.
"""

from __future__ import annotations

import numpy as np

from ..._proto.inference import grpc_predict_v2_pb2 as pb
from ..batch import PreparedBatch
from ..oip_tensors import (  # noqa: F401  (re-exported: both ends name the contract from here)
    DECODE_BLOCK_SIZE,
    HAS_MISSING_VALUES,
    HORIZON,
    INPUTS,
    NUMPY_DTYPES,
    OUTPUTS,
    PROP_CHECKPOINT,
    PROP_DEVICE,
    PROP_DTYPE,
    PROP_MAX_CONCURRENCY,
    PROP_MAX_ROWS,
    PROP_PARAMETERS,
    PROP_QUANTILE_LEVELS,
    QUANTILES,
    SERIES_IDS,
    TARGET,
    TARGET_MASK,
    ContractError,
    TensorSpec,
    prepared_batch,
)
from ..types import QUANTILE_LEVELS

# OIP datatype name → little-endian numpy dtype, and the typed-contents field that carries it.
_DTYPES = {
    "FP32": (NUMPY_DTYPES["FP32"], "fp32_contents"),
    "BOOL": (NUMPY_DTYPES["BOOL"], "bool_contents"),
    "INT64": (NUMPY_DTYPES["INT64"], "int64_contents"),
}


def _param(value: bool | int) -> pb.InferParameter:
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    return pb.InferParameter(int64_param=int(value))


def _raw(array: np.ndarray, datatype: str) -> bytes:
    return np.ascontiguousarray(array, dtype=_DTYPES[datatype][0]).tobytes()


def _decode_tensor(tensor, raw: bytes | None, expected: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    if tensor.datatype != expected:
        raise ContractError(f"tensor {tensor.name!r} must be {expected}, got {tensor.datatype!r}")
    shape = tuple(int(d) for d in tensor.shape)
    if any(d < 0 for d in shape):
        raise ContractError(f"tensor {tensor.name!r} has a negative dimension {shape}")
    dtype, field = _DTYPES[expected]
    if raw is not None:
        array = np.frombuffer(raw, dtype=dtype).copy()  # writable: torch refuses read-only buffers
    else:
        array = np.asarray(getattr(tensor.contents, field), dtype=dtype)
    if array.size != int(np.prod(shape, dtype=np.int64)):
        raise ContractError(f"tensor {tensor.name!r}: {array.size} elements do not fill shape {list(shape)}")
    return array.reshape(shape)


def _tensors(tensors, raw_contents) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    if raw_contents and len(raw_contents) != len(tensors):
        raise ContractError(f"{len(raw_contents)} raw buffers for {len(tensors)} tensors")
    specs = {s.name: s for s in (*INPUTS, *OUTPUTS)}
    out = {}
    for i, tensor in enumerate(tensors):
        spec = specs.get(tensor.name)
        if spec is None:
            continue  # extra tensors are ignored, like any OIP server ignores unknown outputs
        out[tensor.name] = _decode_tensor(tensor, raw_contents[i] if raw_contents else None, spec.datatype)
    return out


# -- client side --------------------------------------------------------------------------
def encode_request(batch: PreparedBatch, model: str, request_id: str = "") -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=model, id=request_id)
    req.parameters[HORIZON].CopyFrom(_param(batch.horizon))
    req.parameters[HAS_MISSING_VALUES].CopyFrom(_param(bool(batch.has_missing_values)))
    req.parameters[DECODE_BLOCK_SIZE].CopyFrom(_param(int(batch.decode_block_size or 0)))
    for spec, array in zip(INPUTS, (batch.values, batch.mask, batch.series_ids), strict=True):
        req.inputs.add(name=spec.name, datatype=spec.datatype, shape=list(array.shape))
        req.raw_input_contents.append(_raw(array, spec.datatype))
    req.outputs.add(name=QUANTILES)
    return req


def decode_response(resp: pb.ModelInferResponse, rows: int, variates: int, horizon: int) -> np.ndarray:
    """→ (9, rows, variates, horizon) float64, checked against what was asked."""
    tensors = _tensors(resp.outputs, resp.raw_output_contents)
    if QUANTILES not in tensors:
        raise ContractError(f"the response has no {QUANTILES!r} output")
    q = tensors[QUANTILES]
    want = (len(QUANTILE_LEVELS), rows, variates)
    if q.ndim != 4 or q.shape[:3] != want or q.shape[3] < horizon:
        raise ContractError(f"{QUANTILES!r} has shape {list(q.shape)}, expected {[*want, horizon]}")
    return q[..., :horizon].astype(np.float64)


# -- server side --------------------------------------------------------------------------
def _int_param(req: pb.ModelInferRequest, name: str) -> int | None:
    """The integer parameter `name`, None when absent."""
    p = req.parameters.get(name)
    kind = None if p is None else p.WhichOneof("parameter_choice")
    if kind is None:
        return None
    if kind not in ("int64_param", "uint64_param"):
        raise ContractError(f"parameter {name!r} must be an integer, got {kind}")
    return int(getattr(p, kind))


def decode_request(req: pb.ModelInferRequest) -> PreparedBatch:
    missing = req.parameters.get(HAS_MISSING_VALUES)
    return prepared_batch(
        _tensors(req.inputs, req.raw_input_contents),
        _int_param(req, HORIZON),
        _int_param(req, DECODE_BLOCK_SIZE),
        bool(missing.bool_param) if missing is not None and missing.HasField("bool_param") else None,
    )


def encode_response(
    quantiles: np.ndarray, req: pb.ModelInferRequest, version: str = ""
) -> pb.ModelInferResponse:
    resp = pb.ModelInferResponse(model_name=req.model_name, model_version=version, id=req.id)
    resp.outputs.add(name=QUANTILES, datatype="FP32", shape=list(quantiles.shape))
    resp.raw_output_contents.append(_raw(quantiles, "FP32"))
    return resp


def model_metadata(
    name: str, properties: dict[str, str], platform: str = "toto-2"
) -> pb.ModelMetadataResponse:
    resp = pb.ModelMetadataResponse(name=name, platform=platform, versions=["1"])
    for spec in INPUTS:
        resp.inputs.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
    for spec in OUTPUTS:
        resp.outputs.add(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
    resp.properties.update({PROP_QUANTILE_LEVELS: ",".join(str(q) for q in QUANTILE_LEVELS), **properties})
    return resp
