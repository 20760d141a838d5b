"""The model side of remote inference: the SAME engine code as in-process, behind OIP.

`ServingEngine` loads Toto with engine/toto.py's `load_toto` and runs each decoded PreparedBatch
through the in-process runtime's own runner (engine/toto_runner.py: the forecast options, the
KV-cache reset, rows below toto2's scale floor rescaled), so a remote answer equals the
in-process one bit for bit for every input, tiny magnitudes included (the quantiles travel as
the FP32 the model computed, divided back by a power of two where a row was rescaled). Every
inference server we ship runs it: serve-model (oip.py), Ray Serve (ray_app.py), KServe
(kserve_model.py) and Triton (triton_model.py). `run_merged` merges several requests' batches
into one model call (rows are independent and left padding with masked zeros does not change a
row's forecast, up to float32 rounding: CPU kernels round a row ~1 ulp differently by batch
shape, e.g. the last row of an odd-sized batch with 2 torch threads; see serving/merging.py),
and `run` splits a call under the same cell cap as the in-process scheduler.
"""

from __future__ import annotations

import argparse
import hmac
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..core.settings import ModelSettings
from ..engine import oip_tensors as contract  # protobuf-free: the KServe model imports this module
from ..engine.batch import BatchRunner, PreparedBatch
from ..engine.toto_runner import max_batch_cells


@dataclass(frozen=True)
class ServingOptions:
    checkpoint: str
    device: str = "auto"
    dtype: str = "float32"
    model_name: str = "toto"
    token: str = ""  # required `authorization: Bearer` value; empty = no check
    max_rows: int = 256  # advertised to clients: they split larger jobs
    max_cells: int = 0  # rows × variates × length per model call; 0: by device, as in process
    warmup: bool = True


@dataclass
class ServingEngine:
    options: ServingOptions
    loaded: Any = None  # engine/toto.py's TotoModel
    runner: BatchRunner | None = None
    max_cells: int = 0
    calls: int = 0
    rows: int = 0
    properties: dict[str, str] = field(default_factory=dict)

    def load(self) -> ServingEngine:
        from ..core.config import ProcessConfig
        from ..engine.threads import pin_threads
        from ..engine.toto import load_toto
        from ..engine.toto_runner import toto_runner

        o = self.options
        config = ProcessConfig.from_environment()  # the server's own environment, read at its start
        pin_threads(config)  # TOTO_TORCH_THREADS=N, as in the plugin
        self.loaded = load_toto(ModelSettings(o.checkpoint, o.device, o.dtype), fold=config.fold)
        self.runner = toto_runner(self.loaded)
        self.max_cells = o.max_cells or max_batch_cells(self.loaded.device)
        info = self.loaded.describe()
        self.properties = {
            contract.PROP_CHECKPOINT: info["checkpoint"],
            contract.PROP_DEVICE: info["device"],
            contract.PROP_DTYPE: info["dtype"],
            contract.PROP_PARAMETERS: str(info["parameters"]),
            contract.PROP_MAX_ROWS: str(o.max_rows),
            "device_name": info["deviceName"],
            "random_weights": str(info["randomWeights"]).lower(),
            "max_cells": str(self.max_cells),
            "pid": str(os.getpid()),
        }
        if o.warmup:
            self.warm_up()
        return self

    def warm_up(self) -> float:
        """One call per path (complete and padded) so the first real request pays no first-call cost."""
        started = time.perf_counter()
        for length, missing in ((128, False), (96, True)):
            padded = -(-length // 32) * 32
            values = np.zeros((2, 1, padded), np.float32)
            values[..., padded - length :] = np.sin(np.arange(length) / 10.0)
            mask = np.zeros_like(values, bool)
            mask[..., padded - length :] = True
            self.run(PreparedBatch(values, mask, np.zeros((2, 1), np.int64), 64, missing))
        return time.perf_counter() - started

    def authorized(self, metadata: Sequence[tuple[str, Any]]) -> bool:
        if not self.options.token:
            return True
        sent = next((str(v) for k, v in metadata if k.lower() == "authorization"), "")
        return hmac.compare_digest(sent.encode(), f"Bearer {self.options.token}".encode())

    def run(self, batch: PreparedBatch) -> np.ndarray:
        """(9, B, V, H) float32, split into calls of at most `max_cells` rows × variates × length."""
        assert self.runner is not None, "run before load"
        rows, variates, length = batch.values.shape
        per_call = max(1, self.max_cells // max(1, variates * length))
        outputs = []
        for i in range(0, rows, per_call):
            part = slice(i, i + per_call)
            out = self.runner(replace(batch, values=batch.values[part], mask=batch.mask[part],
                                      series_ids=batch.series_ids[part]))
            self.calls += 1
            self.rows += out.shape[1]
            # exact: the model's float32, widened, or divided back by a power of two
            outputs.append(out.astype(np.float32))
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)


def merge_key(batch: PreparedBatch) -> tuple[int, int | None, int, int]:
    """Batches that can share one model call: same variates per row and decoding mode, and the
    same power-of-two buckets (in patches) of length and horizon, as the plugin's scheduler groups."""
    length, horizon = batch.values.shape[2], batch.horizon
    return (
        batch.values.shape[1],
        batch.decode_block_size,
        math.ceil(math.log2(max(1, length // 32))),
        math.ceil(math.log2(max(1, math.ceil(horizon / 32)))),
    )


def run_merged(engine: ServingEngine, batches: list[PreparedBatch]) -> list[np.ndarray]:
    """Run many requests' batches as few model calls; each gets back its own (9, b, V, h) slice."""
    results: list[np.ndarray | None] = [None] * len(batches)
    groups: dict[tuple[int, int | None, int, int], list[int]] = {}
    for i, b in enumerate(batches):
        groups.setdefault(merge_key(b), []).append(i)
    for members in groups.values():
        if len(members) == 1:
            results[members[0]] = engine.run(batches[members[0]])
            continue
        parts = [batches[i] for i in members]
        length = max(p.values.shape[2] for p in parts)
        horizon = max(p.horizon for p in parts)

        def left_pad(a: np.ndarray, length: int = length) -> np.ndarray:
            return np.pad(a, ((0, 0), (0, 0), (length - a.shape[2], 0)))

        merged = PreparedBatch(
            np.concatenate([left_pad(p.values) for p in parts]),
            np.concatenate([left_pad(p.mask) for p in parts]),
            np.concatenate([p.series_ids for p in parts]),
            horizon,
            any(p.has_missing_values or p.values.shape[2] < length for p in parts),
            parts[0].decode_block_size,
        )
        out = engine.run(merged)
        start = 0
        for i, p in zip(members, parts, strict=True):
            results[i] = out[:, start : start + p.rows, :, : p.horizon]
            start += p.rows
    return results  # type: ignore[return-value]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every engine's own server takes for the model (KServe's, Triton's), in their
    snake_case style."""
    parser.add_argument("--checkpoint", required=True, help="a Toto 2 checkpoint directory")
    parser.add_argument("--model_name", default="toto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
