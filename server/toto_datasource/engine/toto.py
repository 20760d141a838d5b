"""Loading Toto 2.0 and running one `forecast()` call. Everything torch-specific lives here.

Imported only from the loader thread: `import toto2` costs ~7 s and ~1 GB, and the plugin
must print its handshake line long before that.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backend.settings import ModelSettings
from .batch import PreparedBatch
from .prepare import FORECAST_KWARGS


@dataclass
class LoadedModel:
    model: Any  # toto2.Toto2Model
    checkpoint: str
    device: str
    device_name: str
    dtype: str
    parameters: int
    load_seconds: float

    def describe(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "device": self.device,
            "deviceName": self.device_name,
            "dtype": self.dtype,
            "parameters": self.parameters,
            "loadSeconds": round(self.load_seconds, 3),
            "randomWeights": os.path.exists(os.path.join(self.checkpoint, "RANDOM_WEIGHTS")),
        }


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


def load_toto(settings: ModelSettings) -> LoadedModel:
    """Load a checkpoint (local directory or hub id) through Toto2Model.from_pretrained."""
    started = time.perf_counter()
    # Fail fast rather than hang when the hub is unreachable (air-gapped installs).
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    import torch
    from toto2 import Toto2Model

    device = resolve_device(settings.device)
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    if settings.dtype not in dtypes:
        raise CheckpointError(f"dtype {settings.dtype!r} is not supported; use float32 or bfloat16")
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
    model = model.to(device=device, dtype=dtypes[settings.dtype]).eval()
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    return LoadedModel(
        model=model,
        checkpoint=checkpoint,
        device=device,
        device_name=name,
        dtype=settings.dtype,
        parameters=sum(p.numel() for p in model.parameters()),
        load_seconds=time.perf_counter() - started,
    )


def run_forecast(
    loaded: LoadedModel,
    values: np.ndarray,
    mask: np.ndarray,
    series_ids: np.ndarray,
    horizon: int,
    *,
    has_missing_values: bool = True,
    decode_block_size: int | None = None,
) -> np.ndarray:
    """One `forecast()` call on a prepared (B, V, L) batch → (9, B, V, horizon) float64."""
    import torch

    model = loaded.model
    dtype = next(model.parameters()).dtype
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


def run_batch(loaded: LoadedModel, batch: PreparedBatch) -> np.ndarray:
    """The local backend's batch runner: one scheduler chunk, one `forecast()` call."""
    return run_forecast(
        loaded, batch.values, batch.mask, batch.series_ids, batch.horizon,
        has_missing_values=batch.has_missing_values, decode_block_size=batch.decode_block_size,
    )


def write_random_checkpoint(directory: str | Path, size: str = "4m", seed: int = 0) -> Path:
    """Write a seeded random-weight checkpoint of a released Toto 2.0 architecture.

    Tests and the offline demo load it through the same `from_pretrained` path as production.
    Its forecasts are meaningless numbers, never to be shown as a forecast.
    """
    import torch
    from toto2 import Toto2Model, Toto2ModelConfig

    # (d_model, d_ff, heads, layers) of the released Toto-2.0 checkpoints' config.json files.
    shapes = {"4m": (256, 688, 4, 4), "22m": (512, 1368, 8, 6), "313m": (1024, 2736, 16, 24)}
    d_model, d_ff, heads, layers = shapes[size]
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
