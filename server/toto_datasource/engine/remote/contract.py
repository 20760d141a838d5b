"""The Open Inference Protocol v2 contract for Toto: tensor names, dtypes, shapes, parameters.

Both ends import this one module — the plugin's RemoteRunner encodes a PreparedBatch and
decodes quantiles, the serving app does the reverse — so the wire format is written down once
(docs/REMOTE_INFERENCE.md is its prose form for engines we do not ship: Triton, KServe).

Tensors travel as raw little-endian bytes (`raw_input_contents` / `raw_output_contents`): for
64 series × 2048 points that is 1.05 MB up and 0.59 MB down, against 2.6 / 3.1 MB and ~500 ms
more for JSON (issue 15). Typed `contents` are accepted on decode for engines that send them.
Quantiles go back as FP32, which is what the model computes, so remote ≡ in-process exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._proto.inference import grpc_predict_v2_pb2 as pb
from ..batch import PreparedBatch
from ..types import QUANTILE_LEVELS

TARGET, TARGET_MASK, SERIES_IDS, QUANTILES = "target", "target_mask", "series_ids", "quantiles"
HORIZON, DECODE_BLOCK_SIZE, HAS_MISSING_VALUES = "horizon", "decode_block_size", "has_missing_values"

# OIP datatype name → little-endian numpy dtype, and the typed-contents field that carries it.
_DTYPES = {
    "FP32": ("<f4", "fp32_contents"),
    "BOOL": ("|b1", "bool_contents"),
    "INT64": ("<i8", "int64_contents"),
}

# ModelMetadata.properties keys the plugin reads (all values are strings in OIP).
PROP_MAX_ROWS = "max_rows"
PROP_CHECKPOINT, PROP_DEVICE, PROP_DTYPE, PROP_PARAMETERS = "checkpoint", "device", "dtype", "parameters"
PROP_QUANTILE_LEVELS = "quantile_levels"
# How many calls a client should keep in flight: more only queue on the engine's side.
PROP_MAX_CONCURRENCY = "max_concurrency"


class ContractError(ValueError):
    """A request or response that does not follow the contract (the message says which part)."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1: variable


INPUTS = (
    TensorSpec(TARGET, "FP32", (-1, -1, -1)),  # [rows, variates, length], length % 32 == 0
    TensorSpec(TARGET_MASK, "BOOL", (-1, -1, -1)),  # same shape; True = observed
    TensorSpec(SERIES_IDS, "INT64", (-1, -1)),  # [rows, variates]
)
OUTPUTS = (TensorSpec(QUANTILES, "FP32", (len(QUANTILE_LEVELS), -1, -1, -1)),)  # [9, rows, variates, horizon]


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
def _int_param(req: pb.ModelInferRequest, name: str, default: int | None = None) -> int:
    p = req.parameters.get(name)
    if p is None or p.WhichOneof("parameter_choice") is None:
        if default is None:
            raise ContractError(f"parameter {name!r} is required")
        return default
    kind = p.WhichOneof("parameter_choice")
    if kind not in ("int64_param", "uint64_param"):
        raise ContractError(f"parameter {name!r} must be an integer, got {kind}")
    return int(getattr(p, kind))


def decode_request(req: pb.ModelInferRequest) -> PreparedBatch:
    tensors = _tensors(req.inputs, req.raw_input_contents)
    for spec in INPUTS:
        if spec.name not in tensors:
            raise ContractError(f"input {spec.name!r} ({spec.datatype}) is missing")
    values, mask, ids = tensors[TARGET], tensors[TARGET_MASK], tensors[SERIES_IDS]
    if values.ndim != 3 or mask.shape != values.shape or ids.shape != values.shape[:2]:
        raise ContractError(
            f"shapes do not agree: target {list(values.shape)}, target_mask {list(mask.shape)}, "
            f"series_ids {list(ids.shape)} (want [rows, variates, length] twice and [rows, variates])"
        )
    if values.shape[2] % 32 or values.shape[2] == 0:
        raise ContractError(f"target length {values.shape[2]} must be a positive multiple of 32 (left-pad)")
    horizon = _int_param(req, HORIZON)
    if horizon < 1:
        raise ContractError("parameter 'horizon' must be at least 1")
    block = _int_param(req, DECODE_BLOCK_SIZE, 0)
    missing = req.parameters.get(HAS_MISSING_VALUES)
    has_missing = (
        bool(missing.bool_param) if missing is not None and missing.HasField("bool_param") else not mask.all()
    )
    return PreparedBatch(values, mask, ids, horizon, has_missing, block or None)


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
