"""Series far below toto2's scaler floor come back in data units (engine/toto_runner.py)."""

from __future__ import annotations

import numpy as np
import pytest
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.settings import ModelSettings
from toto_datasource.engine.batch import PreparedBatch
from toto_datasource.engine.local_toto import LocalTotoRuntime
from toto_datasource.engine.prepare import prepare_context
from toto_datasource.engine.toto_runner import (
    in_data_units,
    magnitude_factors,
    restore_magnitudes,
    toto_runner,
)
from toto_datasource.engine.types import ForecastJob


def test_factors_only_for_small_rows() -> None:
    values = np.array([[1e-10, -3e-10, 2e-10], [5.0, 1.0, 2.0], [0.0, 0.0, 0.0], [np.nan, np.nan, np.nan]])
    f = magnitude_factors(values)
    assert f[1] == f[2] == f[3] == 1.0
    assert 1.0 <= 3e-10 * f[0] < 2.0
    assert np.log2(f[0]) == int(np.log2(f[0]))  # a power of two: the round trip is exact


def test_masked_values_do_not_count() -> None:
    values = np.array([[1e-9, 1e-9, 100.0]])
    mask = np.array([[True, True, False]])
    assert 1.0 <= 1e-9 * magnitude_factors(values, mask)[0] < 2.0
    assert magnitude_factors(values)[0] == 1.0


def test_restore_divides_per_row() -> None:
    f = np.array([[4.0, 1.0]])  # (B=1, V=2)
    q = np.ones((9, 1, 2, 3))
    out = restore_magnitudes(q, f)
    assert out.shape == q.shape
    np.testing.assert_allclose(out[:, 0, 0], 0.25)
    np.testing.assert_allclose(out[:, 0, 1], 1.0)


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):  # type: ignore[no-untyped-def]
    from toto_datasource.engine.toto import load_toto

    return load_toto(ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu"))


def _tiny_sine() -> np.ndarray:
    t = np.arange(256)
    return 1e-10 * (2.0 + np.sin(2 * np.pi * t / 32))


def test_runner_is_the_direct_call_on_the_rescaled_input(loaded) -> None:  # type: ignore[no-untyped-def]
    from toto_datasource.engine.toto import run_batch, run_forecast

    p = prepare_context(np.stack([_tiny_sine(), 300 + 10 * np.sin(np.arange(256) / 5)]), 256)
    values = p.values[:, None, :].astype(np.float32)  # (B=2, V=1, L)
    mask, ids = p.mask[:, None, :], np.zeros((2, 1), np.int64)
    batch = PreparedBatch(values, mask, ids, 16)
    out = toto_runner(loaded)(batch)
    np.testing.assert_array_equal(out, in_data_units(lambda b: run_batch(loaded, b))(batch))
    f = magnitude_factors(values, mask)
    assert f[0, 0] > 1e9 and f[1, 0] == 1.0
    direct = run_forecast(loaded, (values * f[..., None]).astype(np.float32), mask, ids, 16)
    # The small row is the direct toto2 call on the rescaled input, divided back; the other is untouched.
    np.testing.assert_allclose(out[:, 0] * f[0, 0], direct[:, 0], rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], run_forecast(loaded, values, mask, ids, 16)[:, 1], rtol=1e-6)
    # And in data units: within a few signal ranges of the series, unlike the raw call.
    assert np.abs(out[:, 0] - 2e-10).max() < 50 * 2e-10
    raw = run_forecast(loaded, values, mask, ids, 16)
    assert np.abs(raw[:, 0] - 2e-10).max() > 1e3 * np.abs(out[:, 0] - 2e-10).max()


def test_local_runtime_answers_in_data_units(tiny_checkpoint) -> None:  # type: ignore[no-untyped-def]
    runtime = LocalTotoRuntime().load(ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu"),
                                     ProcessConfig(), False)
    try:
        out = runtime.uncached.submit(ForecastJob(_tiny_sine()[None, :], 16)).result(timeout=120)
    finally:
        runtime.close()
    assert out.quantiles.shape == (9, 1, 16)
    assert np.abs(out.quantiles - 2e-10).max() < 50 * 2e-10


def test_rescaling_twice_is_rescaling_once(loaded) -> None:  # type: ignore[no-untyped-def]
    """What lets the plugin rescale before sending and an inference server rescale again: the
    numbers are the same bit for bit whichever side does it, or both."""
    rows = [_tiny_sine(), 1e4 * _tiny_sine(), 1e2 * _tiny_sine(), 1e22 * _tiny_sine()]  # 3e-10 … 3e12
    p = prepare_context(np.stack(rows), 256)
    batch = PreparedBatch(p.values[:, None, :], p.mask[:, None, :], np.zeros((4, 1), np.int64), 16)
    once = toto_runner(loaded)
    np.testing.assert_array_equal(in_data_units(once)(batch), once(batch))
