"""The protobuf-free half of the OIP v2 contract: tensor and parameter names, shapes, checks.

engine/remote/contract.py adds the protobuf messages on top; this half exists so an engine
whose OIP runtime is not ours can implement the same contract without importing our generated
stubs. KServe 0.21's Python server needs protobuf < 7 and runs in its own virtualenv; this
project's stubs are protobuf 7 gencode and refuse to load there ("Detected incompatible
Protobuf Gencode/Runtime versions ...: gencode 7.35.1 runtime 6.33.6"), so
serving/kserve_model.py builds its PreparedBatch with `prepared_batch` from here, with the same
checks as the plain server's `decode_request`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .batch import PreparedBatch
from .types import QUANTILE_LEVELS

TARGET, TARGET_MASK, SERIES_IDS, QUANTILES = "target", "target_mask", "series_ids", "quantiles"
HORIZON, DECODE_BLOCK_SIZE, HAS_MISSING_VALUES = "horizon", "decode_block_size", "has_missing_values"

# OIP datatype name → little-endian numpy dtype.
NUMPY_DTYPES = {"FP32": "<f4", "BOOL": "|b1", "INT64": "<i8"}

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


def prepared_batch(
    tensors: dict[str, np.ndarray], horizon: int | None, decode_block_size: int | None = None,
    has_missing_values: bool | None = None,
) -> PreparedBatch:
    """Decoded input tensors and request parameters → the PreparedBatch the engine runs.

    `horizon` None = the parameter was absent; `has_missing_values` None = computed from the mask.
    Raises ContractError naming what does not follow the contract."""
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
    if horizon is None:
        raise ContractError(f"parameter {HORIZON!r} is required")
    if horizon < 1:
        raise ContractError("parameter 'horizon' must be at least 1")
    has_missing = bool(not mask.all()) if has_missing_values is None else bool(has_missing_values)
    return PreparedBatch(values, mask, ids, int(horizon), has_missing, int(decode_block_size or 0) or None)


def _int_parameter(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"parameter {name!r} must be an integer, got {type(value).__name__}")
    return value


def batch_from_parameters(tensors: dict[str, np.ndarray], params: Mapping[str, Any]) -> PreparedBatch:
    """prepared_batch() for servers that hand the request parameters over as plain Python values
    (KServe's `to_http_parameters`, PyTriton's `request.parameters`), with their types checked."""
    missing = params.get(HAS_MISSING_VALUES)
    return prepared_batch(
        tensors,
        _int_parameter(params, HORIZON),
        _int_parameter(params, DECODE_BLOCK_SIZE),
        missing if isinstance(missing, bool) else None,
    )
