"""Loading Toto 2.0 and running one `forecast()` call. Everything torch-specific lives here.

Imported only from the loader thread: `import toto2` costs ~7 s and ~1 GB, and the plugin
must print its handshake line long before that.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.settings import ModelSettings
from .batch import PreparedBatch
from .prepare import FORECAST_KWARGS

log = logging.getLogger(__name__)

FOLD_TOLERANCE = 1e-5
"""Folded vs unfolded max |Δ| / output range above which the fold is rejected (measured: ~1e-7)."""

INT8_ERROR_NOTE = "int8 (dynamic quantisation) is approximate: maxError is relative to the output range"


@dataclass
class TotoModel:
    model: Any  # toto2.Toto2Model (folded, maybe int8-quantised)
    checkpoint: str
    device: str
    device_name: str
    dtype: str
    parameters: int
    load_seconds: float
    # {"relative": …, "absolute": …} vs the unfolded model, or {"off": reason}
    fold: dict[str, Any] = field(default_factory=dict)
    int8_error: dict[str, float] | None = None  # dtype int8: error vs the folded fp32 model

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "checkpoint": self.checkpoint,
            "device": self.device,
            "deviceName": self.device_name,
            "dtype": self.dtype,
            "parameters": self.parameters,
            "loadSeconds": round(self.load_seconds, 3),
            "randomWeights": os.path.exists(os.path.join(self.checkpoint, "RANDOM_WEIGHTS")),
            "folded": self.fold,
        }
        if self.int8_error is not None:
            info["int8"] = {**self.int8_error, "note": INT8_ERROR_NOTE}
        return info


class CheckpointError(Exception):
    """The checkpoint could not be loaded; the message tells the admin what to configure."""


def resolve_device(requested: str) -> str:
    import torch

    if requested in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(f"device {requested!r} was configured but no CUDA GPU is visible to the plugin")
    return requested


def _describe_failure(checkpoint: str, exc: Exception) -> str:
    hint = (
        "Download the weights where there is internet access "
        f"(`huggingface-cli download {checkpoint} --local-dir DIR`) and set the data source's "
        "Model field, or `model = DIR` under [plugin.toto-forecast-datasource] in grafana.ini, "
        "to that directory."
    )
    if os.path.isdir(checkpoint):
        if not os.path.exists(os.path.join(checkpoint, "config.json")):
            return f"cannot load Toto checkpoint from directory {checkpoint}: it has no config.json."
        return f"cannot load Toto checkpoint from directory {checkpoint}: {type(exc).__name__}: {exc}"
    if checkpoint.startswith(("/", ".", "~")):
        return f"cannot load Toto checkpoint: directory {checkpoint} does not exist."
    return (
        f"cannot load Toto checkpoint {checkpoint!r} from the Hugging Face hub "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}). {hint}"
    )


def _fold(model: Any, fold: bool) -> tuple[Any, dict[str, Any]]:
    """The folded model when it matches the unfolded one on a probe batch, else the original."""
    from .fold import fold_unit_scaling, verify_folded

    if not fold:
        return model, {"off": "TOTO_FOLD=0"}
    try:
        folded, report = fold_unit_scaling(model)
        relative, absolute = verify_folded(model, folded, **FORECAST_KWARGS)
    except Exception as exc:  # a toto2 version whose modules we do not know: serve it unfolded
        log.warning("could not fold the unit-scaling constants, serving the model unfolded: %s", exc)
        return model, {"off": f"{type(exc).__name__}: {exc}"[:200]}
    if not relative <= FOLD_TOLERANCE:
        log.warning("folded model differs from the original by %.2g of the output range; unfolded", relative)
        return model, {"off": f"mismatch {relative:.2g} of the output range"}
    return folded, {"relative": relative, "absolute": absolute, "layers": report.transformer_layers}


def _quantise_int8(model: Any) -> tuple[Any, dict[str, float]]:
    """Dynamic int8 quantisation of every nn.Linear of the folded model, with its measured error."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    from .fold import probe_inputs, relative_error

    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantised = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)
    inputs = probe_inputs(level=1.0)
    with torch.inference_mode():
        reference = model.forecast(inputs, 64, **FORECAST_KWARGS)
        approx = quantised.forecast(inputs, 64, **FORECAST_KWARGS)
    relative, absolute = relative_error(reference, approx)
    layers = sum(1 for m in quantised.modules() if "quantized" in type(m).__module__ and hasattr(m, "weight"))
    return quantised, {"maxError": relative, "maxAbsError": absolute, "quantisedLayers": layers}


def load_toto(settings: ModelSettings, *, fold: bool = True) -> TotoModel:
    """Load a checkpoint (local directory or hub id) through Toto2Model.from_pretrained.

    Then fold the unit-scaling constants into the weights (exact, verified on a probe batch;
    `fold=False` is TOTO_FOLD=0) and quantise to int8 when dtype is "int8" (CPU only, approximate,
    never the default). The model runs eagerly (bench/RESULTS.md, "torch.compile on serve-model").
    """
    started = time.perf_counter()
    if not settings.checkpoint.startswith(("/", ".", "~")) and not os.path.isdir(settings.checkpoint):
        from .hub import hub_unreachable  # a hub id: ≤ 2 s probe, not a 35 s download timeout

        if (reason := hub_unreachable(settings.checkpoint)) is not None:
            raise CheckpointError(reason)
    # Fail fast rather than hang when the hub is unreachable (air-gapped installs).
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    import torch
    from toto2 import Toto2Model

    device = resolve_device(settings.device)
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.float32}
    if settings.dtype not in dtypes:
        raise CheckpointError(f"dtype {settings.dtype!r} is not supported; use float32, bfloat16 or int8")
    if settings.dtype == "int8" and device != "cpu":
        raise CheckpointError("dtype int8 (dynamic quantisation) runs on the CPU only; use device cpu")
    if device.startswith("cuda"):
        # TF32 tensor-core matmuls for fp32 (what Datadog's BOOM notebook uses): ~1e-3 relative.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
    checkpoint = (
        str(Path(settings.checkpoint).expanduser())
        if settings.checkpoint.startswith("~")
        else settings.checkpoint
    )
    try:
        model = Toto2Model.from_pretrained(checkpoint, map_location=device)
    except Exception as exc:  # hub errors, bad files: all become one actionable message
        raise CheckpointError(_describe_failure(checkpoint, exc)) from exc
    model = model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    # Fold in float32 (before any bf16 cast) so the scales are applied at full precision.
    model, folded = _fold(model, fold)
    int8_error = None
    if settings.dtype == "int8":
        model, int8_error = _quantise_int8(model)
    else:
        model = model.to(device=device, dtype=dtypes[settings.dtype]).eval()
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    return TotoModel(
        model=model,
        checkpoint=checkpoint,
        device=device,
        device_name=name,
        dtype=settings.dtype,
        parameters=parameters,
        load_seconds=time.perf_counter() - started,
        fold=folded,
        int8_error=int8_error,
    )


def run_forecast(
    loaded: TotoModel,
    values: np.ndarray,
    mask: np.ndarray,
    series_ids: np.ndarray,
    horizon: int,
    *,
    has_missing_values: bool = True,
    decode_block_size: int | None = None,
) -> np.ndarray:
    """A prepared (B, V, L) batch → (9, B, V, horizon) float64: one `forecast()` call."""
    import torch

    model = loaded.model
    dtype = torch.float32 if loaded.dtype == "int8" else next(model.parameters()).dtype
    # The target stays float32 even for a bfloat16 model: bf16 has 8 mantissa bits, so casting the
    # raw (un-normalised) series would erase any signal riding on a large offset (1e9 ± 1e6 →
    # forecast error ≈ 2× the signal, measured). Autocast runs the matmuls in bf16 while the
    # model's causal scaler sees full-precision values.
    device_type = loaded.device.split(":")[0]
    inputs = {
        "target": torch.as_tensor(values, device=loaded.device, dtype=torch.float32),
        "target_mask": torch.as_tensor(mask, device=loaded.device, dtype=torch.bool),
        "series_ids": torch.as_tensor(series_ids, device=loaded.device, dtype=torch.long),
    }
    autocast = (torch.autocast(device_type, dtype=dtype) if dtype != torch.float32
                else contextlib.nullcontext())
    try:
        with torch.inference_mode(), autocast:
            out = model.forecast(
                inputs,
                horizon,
                decode_block_size=decode_block_size,
                has_missing_values=has_missing_values,
                **FORECAST_KWARGS,
            )
    except Exception as exc:
        if device_type == "cuda" and "out of memory" in str(exc).lower():
            torch.cuda.empty_cache()  # give the split-and-retry in the scheduler a clean pool
        raise
    finally:
        if decode_block_size:
            # Block decoding leaves a shape-keyed KV cache on the model, which a later call of
            # another batch shape would reuse wrongly: drop it after every block-decoded call.
            model._kv_cache = None
            model._kv_cache_key = None
    return out.float().cpu().numpy().astype(np.float64)


def run_batch(loaded: TotoModel, batch: PreparedBatch) -> np.ndarray:
    """One PreparedBatch → (9, B, V, horizon) float64, in the units the model saw: every engine
    calls it through engine/toto_runner.py, which rescales rows below toto2's scale floor."""
    return run_forecast(
        loaded, batch.values, batch.mask, batch.series_ids, batch.horizon,
        has_missing_values=batch.has_missing_values, decode_block_size=batch.decode_block_size,
    )


def write_random_checkpoint(
    directory: str | Path, size: str = "4m", seed: int = 0, num_layers: int | None = None
) -> Path:
    """Write a seeded random-weight checkpoint of a released Toto 2.0 architecture.

    `num_layers` overrides the depth (a 313m-wide model with 2 layers is cheap enough for tests).

    Tests and the offline demo load it through the same `from_pretrained` path as production.
    Its forecasts are meaningless numbers, never to be shown as a forecast.
    """
    import torch
    from toto2 import Toto2Model, Toto2ModelConfig

    # (d_model, d_ff, heads, layers) of the released Toto-2.0 checkpoints' config.json files.
    shapes = {"4m": (256, 688, 4, 4), "22m": (512, 1368, 8, 6), "313m": (1024, 2736, 16, 24)}
    d_model, d_ff, heads, layers = shapes[size]
    layers = num_layers or layers
    config = Toto2ModelConfig(
        patch_size=32,
        d_model=d_model,
        d_ff=d_ff,
        num_heads=heads,
        num_layers=layers,
        layer_group_size=layers,
        num_variate_layers_per_group=1,
        variate_layer_first=False,
        residual_attn_ratio=Toto2ModelConfig.compute_residual_attn_ratio(4096, 32),
        norm_eps=1e-4,
        attn_bias=True,
        mlp_bias=False,
        per_dim_scale=True,
        use_xpos=True,
        residual_mult=0.75,
        qk_norm=False,
        qk_norm_include_weight=False,
        norm_include_weight=False,
    )
    torch.manual_seed(seed)
    model = Toto2Model(config)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    (out / "RANDOM_WEIGHTS").write_text(
        f"Random-weight Toto-2.0-{size} architecture (seed {seed}) for tests. Not a forecasting model.\n"
    )
    return out
