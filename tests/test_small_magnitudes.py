"""Series far below toto2's scaler floor come back in data units (issue 14, small magnitudes)."""

from __future__ import annotations

import numpy as np
import pytest
from toto_datasource.engine.prepare import magnitude_factors, prepare_context, restore_magnitudes


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
    from toto_datasource.settings import ModelSettings

    return load_toto(ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu"))


def test_tiny_series_forecast_in_data_units(loaded) -> None:  # type: ignore[no-untyped-def]
    from toto_datasource.engine.toto import run_forecast

    t = np.arange(256)
    x = 1e-10 * (2.0 + np.sin(2 * np.pi * t / 32))
    p = prepare_context(x[None, :], 256)
    values, mask, ids = p.values[None], p.mask[None], np.zeros((1, 1), np.int64)
    f = magnitude_factors(values, mask)
    assert f.shape == (1, 1) and f[0, 0] > 1e9
    rescaled = run_forecast(loaded, values * f[..., None], mask, ids, 16)
    direct = run_forecast(loaded, (values * f[..., None]).astype(np.float32), mask, ids, 16)
    out = restore_magnitudes(rescaled, f)
    # The rescaled path is the direct toto2 call on the rescaled input, divided back.
    np.testing.assert_allclose(out * f[0, 0], direct, rtol=1e-6)
    # And it is in data units: within a few signal ranges of the series, unlike the raw call.
    assert np.abs(out - 2e-10).max() < 50 * 2e-10
    raw = run_forecast(loaded, values, mask, ids, 16)
    assert np.abs(raw - 2e-10).max() > 1e3 * np.abs(out - 2e-10).max()
