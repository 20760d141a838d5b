"""Model-side speed-ups on the real toto2 code: folding the unit-scaling constants (exact) and
opt-in int8."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from toto_datasource.core.settings import ModelSettings
from toto_datasource.engine import fold
from toto_datasource.engine.batch import PreparedBatch
from toto_datasource.engine.prepare import FORECAST_KWARGS
from toto_datasource.engine.toto import load_toto, run_batch, run_forecast, write_random_checkpoint

# int8 dynamic quantisation error bound, max |Δ| / output range on the probe batch. Measured
# 4m random weights: see test output; the issue measured 2.7 % for 22m at batch 1.
INT8_MAX_RELATIVE_ERROR = 0.1


@pytest.fixture(scope="module")
def checkpoint_22m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "toto-2.0-22m-random", "22m")


def _original(checkpoint: Path):  # type: ignore[no-untyped-def]
    from toto2 import Toto2Model

    return Toto2Model.from_pretrained(str(checkpoint)).eval()


def _batch(rows: int = 3, context: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs with left padding and a gap, as the engine prepares them."""
    inputs = fold.probe_inputs(rows, context, level=1.0)
    return inputs["target"].numpy(), inputs["target_mask"].numpy(), inputs["series_ids"].numpy()


def _spread(x: np.ndarray) -> float:
    return float(x.max() - x.min())


@pytest.fixture(scope="module")
def checkpoint_313m_wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """313m's width (d_model 1024, 16 heads) with 2 of its 24 layers: its shapes, cheaply."""
    return write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "313m-wide", "313m", num_layers=2)


@pytest.mark.parametrize("size", ["4m", "22m", "313m-wide"])
def test_folded_model_matches_unfolded(
    size: str, tiny_checkpoint: Path, checkpoint_22m: Path, checkpoint_313m_wide: Path
) -> None:
    paths = {"4m": tiny_checkpoint, "22m": checkpoint_22m, "313m-wide": checkpoint_313m_wide}
    original = _original(paths[size])
    folded, report = fold.fold_unit_scaling(original)
    assert report.leftover_unit_scaled == 0 and report.transformer_layers == original.config.num_layers
    for level in (1.0, 1e3):  # absolute tolerance only means something at level ~1
        relative, absolute = fold.verify_folded(original, folded, horizon=96, level=level, **FORECAST_KWARGS)
        assert relative <= 1e-6, (level, relative)
        if level == 1.0:
            assert absolute <= 1e-6, absolute
    # block decoding (KV cache path) too
    relative, _ = fold.verify_folded(original, folded, horizon=128, decode_block_size=64)
    assert relative <= 1e-6


def test_load_toto_serves_the_folded_model(tiny_checkpoint: Path) -> None:
    import dd_unit_scaling as uu

    loaded = load_toto(ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu"))
    assert loaded.fold["relative"] <= 1e-6
    assert not any(isinstance(m, uu.Linear) for m in loaded.model.modules())
    values, mask, ids = _batch()
    inputs = {"target": torch.tensor(values), "target_mask": torch.tensor(mask),
              "series_ids": torch.tensor(ids)}
    with torch.inference_mode():
        reference = _original(tiny_checkpoint).forecast(inputs, 96, **FORECAST_KWARGS).double().numpy()
    out = run_forecast(loaded, values, mask, ids, 96)
    assert np.abs(out - reference).max() <= 1e-6 * _spread(reference)
    info = loaded.describe()
    assert info["folded"]["layers"] == 4


def test_int8_runs_and_stays_close(tiny_checkpoint: Path) -> None:
    settings = ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu")
    fp32 = load_toto(settings)
    int8 = load_toto(replace(settings, dtype="int8"))
    error = int8.describe()["int8"]
    assert error["quantisedLayers"] > 0 and 0 < error["maxError"] <= INT8_MAX_RELATIVE_ERROR, error
    values, mask, ids = _batch()
    a, b = run_forecast(fp32, values, mask, ids, 64), run_forecast(int8, values, mask, ids, 64)
    assert np.isfinite(b).all()
    assert np.abs(a - b).max() <= INT8_MAX_RELATIVE_ERROR * _spread(a)


def test_run_batch_wraps_run_forecast(tiny_checkpoint: Path) -> None:
    loaded = load_toto(ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu"))
    values, mask, ids = _batch()
    batch = PreparedBatch(values, mask, ids, 48)
    np.testing.assert_array_equal(run_batch(loaded, batch), run_forecast(loaded, values, mask, ids, 48))
