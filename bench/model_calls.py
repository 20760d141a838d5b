"""What the benchmarks share: the machine line every table records, the random-weight checkpoints,
and one direct model call on the engine's prepared input (the anchor a plugin is compared with)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))


def machine() -> str:
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        model = m.group(1).strip() if m else model
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{model}, {os.cpu_count()} cores ({platform.machine()}, Linux {platform.release()}), no GPU"


def load_model(checkpoint: Path):  # type: ignore[no-untyped-def]
    from toto_datasource.core.settings import ModelSettings
    from toto_datasource.engine.toto import load_toto

    return load_toto(ModelSettings(checkpoint=str(checkpoint), device="cpu"))


def direct_call(loaded, values: np.ndarray, horizon: int) -> float:  # type: ignore[no-untyped-def]
    """The engine's prepared input through one run_forecast call; returns seconds."""
    from toto_datasource.engine.prepare import pad_to, prepare_context
    from toto_datasource.engine.toto import run_forecast

    rows = [prepare_context(r[None, :], values.shape[1]) for r in values]
    length = max(r.length for r in rows)
    rows = [pad_to(r, length) for r in rows]
    v = np.stack([r.values for r in rows])
    m = np.stack([r.mask for r in rows])
    started = time.perf_counter()
    run_forecast(loaded, v, m, np.zeros((len(rows), 1), np.int64), horizon, has_missing_values=not m.all())
    return time.perf_counter() - started


def random_checkpoint(size: str) -> Path:
    """The random-weight checkpoint of this architecture under var/ (written on first use)."""
    checkpoint = ROOT / "var" / "checkpoints" / f"toto-2.0-{size}-random"
    if not (checkpoint / "model.safetensors").exists():
        from toto_datasource.engine.toto import write_random_checkpoint

        write_random_checkpoint(checkpoint, size)
    return checkpoint
