"""The Toto engine on the real toto2 code path (4m random-weight checkpoint): faithfulness to a
direct `model.forecast` call, the TOTO2_NOTES pitfalls, the fast path, bf16 and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_queries
from toto_datasource.core import settings as backend_settings
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.errors import BackendError
from toto_datasource.core.settings import DataSourceSettings, ModelSettings
from toto_datasource.engine.baseline import seasonal_naive
from toto_datasource.engine.cache import CachingForecaster
from toto_datasource.engine.prepare import FORECAST_KWARGS, pad_to, prepare_context
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.engine.scheduler import BatchingForecaster
from toto_datasource.engine.toto import load_toto, run_forecast
from toto_datasource.engine.types import QUANTILE_LEVELS, ForecastJob
from toto_datasource.frames.arrow import decode_frame, encode_frame
from toto_datasource.service import DataQueryInput, ForecastDataSource

WAIT = 120


@pytest.fixture(scope="module")
def model_settings(tiny_checkpoint: Path) -> ModelSettings:
    return ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="module")
def loaded(model_settings: ModelSettings):  # type: ignore[no-untyped-def]
    return load_toto(model_settings)


@pytest.fixture(scope="module")
def registry(model_settings: ModelSettings):  # type: ignore[no-untyped-def]
    reg = ModelRegistry(warmup=False)
    slot = reg.ensure(model_settings)
    assert slot.ready.wait(WAIT) and slot.state == "ready", slot.error
    yield reg
    reg.close()


@pytest.fixture()
def engine(loaded):  # type: ignore[no-untyped-def]
    def runner(batch):  # type: ignore[no-untyped-def]
        values, mask, ids, horizon = batch.values, batch.mask, batch.series_ids, batch.horizon
        has_missing, block = batch.has_missing_values, batch.decode_block_size
        return run_forecast(
            loaded, values, mask, ids, horizon, has_missing_values=has_missing, decode_block_size=block
        )

    f = BatchingForecaster("toto", runner)
    yield f
    f.close()


def direct(loaded, context: np.ndarray, horizon: int, length: int | None = None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A direct toto2 call on the engine's prepared input: (9, n, horizon)."""
    import torch

    rows = [prepare_context(r[None, :], context.shape[1]) for r in context]
    length = length or max(r.length for r in rows)
    rows = [pad_to(r, length) for r in rows]
    inputs = {
        "target": torch.tensor(np.stack([r.values for r in rows])),
        "target_mask": torch.tensor(np.stack([r.mask for r in rows])),
        "series_ids": torch.zeros(len(rows), 1, dtype=torch.long),
    }
    assert FORECAST_KWARGS == {"scaler_fallback_min_obs": 8, "quantile_real_cap_k": 1e4}
    with torch.inference_mode():
        q = loaded.model.forecast(
            inputs, horizon, has_missing_values=True, scaler_fallback_min_obs=8, quantile_real_cap_k=1e4
        )
    return q[:, :, 0, :].double().numpy()


def test_served_numbers_equal_a_direct_toto2_call(registry, loaded, model_settings) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    n, horizon, step = 300, 24, 60_000
    ts = [1_700_000_000_000 + i * step for i in range(n)]
    values = np.stack(
        [
            200 + 20 * np.sin(np.arange(n) / 9.0) + rng.normal(0, 2, n),
            5e6 + 1e5 * np.cos(np.arange(n) / 30.0) + rng.normal(0, 1e3, n),
            np.abs(rng.normal(0, 1, n)) * (np.arange(n) % 17 == 0),
        ]
    )  # sparse, intermittent
    values[0, 40:90] = np.nan  # a gap: sent as null
    body = {
        "source": "inline",
        "horizon": horizon,
        "includeHistory": False,
        "quantiles": list(QUANTILE_LEVELS),
        "series": [
            {
                "name": f"s{i}",
                "labels": {"i": str(i)},
                "timestamps": ts,
                "values": [None if np.isnan(v) else float(v) for v in row],
            }
            for i, row in enumerate(values)
        ],
    }
    ds = ForecastDataSource(registry)
    settings = DataSourceSettings(uid="t", model=model_settings)
    q = DataQueryInput("A", "forecast", json.dumps(body).encode(), 0, ts[-1])
    result = run_queries(ds, settings, [q])["A"]
    assert result.error is None, result.error
    frames = [decode_frame(encode_frame(f, "A")) for f in result.frames]  # what goes over the wire
    assert len(frames) == 3
    want = direct(loaded, values, horizon)
    for i, frame in enumerate(frames):
        got = {
            f.labels["quantile"]: f.values.to_numpy(zero_copy_only=False).astype(np.float64)
            for f in frame.fields[1:]
        }
        for k, level in enumerate(QUANTILE_LEVELS):
            g = got[f"{level:.1f}"]
            w = want[k, i]
            assert g.shape == (horizon,)
            rel = np.abs(g - w) / np.maximum(np.abs(w), 1e-6 * np.abs(want[:, i]).max())
            assert rel.max() <= 1e-5, (i, level, rel.max())
    assert isinstance(registry.forecaster(model_settings), CachingForecaster)


def test_engine_equals_direct_call_on_an_odd_length_context(engine, loaded) -> None:  # type: ignore[no-untyped-def]
    x = 10 + np.sin(np.arange(1000) / 11.0)[None, :]  # 1000 is not a multiple of 32: left-padded
    got = engine.submit(ForecastJob(x, 50)).result(timeout=WAIT).quantiles
    np.testing.assert_allclose(got, direct(loaded, x, 50), rtol=1e-5, atol=1e-5)


PITFALLS = {
    "length-not-multiple-of-32": lambda x: x[:, :1001],
    "nan-anywhere": lambda x: np.where(np.arange(x.shape[1]) % 13 == 0, np.nan, x),
    "nan-in-last-patch": lambda x: np.concatenate([x[:, :-20], np.full((1, 20), np.nan)], axis=1),
    "inf-values": lambda x: np.where(np.arange(x.shape[1]) % 50 == 0, np.inf, x),
    "constant": lambda x: np.full_like(x, 42.0),
    "huge-1e30": lambda x: x * 1e30,
    "all-missing": lambda x: np.full_like(x, np.nan),
    "one-point": lambda x: x[:, -1:],
}


@pytest.mark.parametrize("name", list(PITFALLS))
def test_pitfalls_give_finite_forecasts(engine, name: str) -> None:  # type: ignore[no-untyped-def]
    x = PITFALLS[name](100 + 10 * np.sin(np.arange(2048) / 8.0)[None, :])
    out = engine.submit(ForecastJob(x, 64)).result(timeout=WAIT).quantiles
    assert out.shape == (9, 1, 64)
    assert np.isfinite(out).all(), name
    assert (np.diff(out, axis=0) >= 0).all()  # quantiles never cross
    if name == "constant":
        np.testing.assert_allclose(out, 42.0, rtol=1e-3)


def test_pitfalls_batched_together_equal_each_run_alone(engine) -> None:  # type: ignore[no-untyped-def]
    """Rows are independent: a batch of every pitfall (padded to one length, gaps, inf, 1e30, all
    missing) gives each row what it gets alone, so batching never changes a user's numbers."""
    base = 100 + 10 * np.sin(np.arange(2048) / 8.0)[None, :]
    jobs = [ForecastJob(f(base), 64) for f in PITFALLS.values()]
    alone = [engine.submit(job).result(timeout=WAIT).quantiles for job in jobs]
    calls = engine.calls
    futures = [engine.submit(job) for job in jobs]
    together = [f.result(timeout=WAIT).quantiles for f in futures]
    assert engine.calls - calls < len(PITFALLS)  # at least some rows shared a model call
    for name, a, t in zip(PITFALLS, alone, together, strict=True):
        assert np.isfinite(t).all(), name
        scale = max(1.0, float(np.abs(a).max()))
        np.testing.assert_allclose(t, a, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


def test_invalid_jobs_fail_clearly() -> None:
    with pytest.raises(ValueError, match="horizon"):
        ForecastJob(np.ones((1, 64)), 0)


def test_complete_batches_take_the_fast_path_with_equal_results(loaded) -> None:  # type: ignore[no-untyped-def]
    seen: list[bool] = []

    def runner(batch):  # type: ignore[no-untyped-def]
        values, mask, ids, horizon = batch.values, batch.mask, batch.series_ids, batch.horizon
        has_missing, block = batch.has_missing_values, batch.decode_block_size
        seen.append(has_missing)
        return run_forecast(
            loaded, values, mask, ids, horizon, has_missing_values=has_missing, decode_block_size=block
        )

    engine = BatchingForecaster("toto", runner)
    try:
        x = 50 + 5 * np.sin(np.arange(1024) / 6.0)[None, :] + np.arange(3)[:, None]
        fast = engine.submit(ForecastJob(x, 96)).result(timeout=WAIT).quantiles
        assert seen == [False]
        prepared = [prepare_context(r[None, :], 1024) for r in x]
        values = np.stack([p.values for p in prepared])
        mask = np.stack([p.mask for p in prepared])
        ids = np.zeros((3, 1), dtype=np.int64)
        masked = run_forecast(loaded, values, mask, ids, 96, has_missing_values=True)[:, :, 0, :]
        np.testing.assert_allclose(fast, masked, rtol=1e-5, atol=1e-5 * np.abs(masked).max())
    finally:
        engine.close()


def test_bfloat16_is_close_to_float32_even_on_a_large_offset(model_settings) -> None:  # type: ignore[no-untyped-def]
    """bf16 weights, fp32 target under autocast: casting the raw series to bf16 would erase the
    signal on a 1e9 offset (8 mantissa bits); this path keeps it."""
    from dataclasses import replace

    fp32 = load_toto(model_settings)
    bf16 = load_toto(replace(model_settings, dtype="bfloat16"))
    assert bf16.describe()["dtype"] == "bfloat16"
    t = np.arange(1024)
    x = np.stack([1e9 + 1e6 * np.sin(t / 10.0), 20 + 3 * np.cos(t / 7.0)]).astype(np.float32)[:, None, :]
    mask = np.ones_like(x, dtype=bool)
    ids = np.zeros((2, 1), dtype=np.int64)
    a = run_forecast(fp32, x, mask, ids, 64)
    b = run_forecast(bf16, x, mask, ids, 64)
    assert np.isfinite(b).all()
    for row, amplitude in ((0, 1e6), (1, 3.0)):
        err = np.abs(a[:, row] - b[:, row]).max() / amplitude
        assert err < 0.05, (row, err)  # within 5 % of the series' own variation


def test_registry_reports_loading_then_ready(registry, model_settings) -> None:  # type: ignore[no-untyped-def]
    forecaster = registry.forecaster(model_settings)
    assert forecaster.describe()["randomWeights"] is True
    assert forecaster.describe()["cache"]["ttlSeconds"] > 0
    with pytest.raises(BackendError) as err:
        registry.forecaster(ModelSettings(checkpoint="/nonexistent/checkpoint", device="cpu"))
    assert err.value.status in (400, 503)  # 503 while it loads in the background
    slot = registry.ensure(ModelSettings(checkpoint="/nonexistent/checkpoint", device="cpu"))
    assert slot.ready.wait(WAIT)
    with pytest.raises(BackendError) as err:
        registry.forecaster(ModelSettings(checkpoint="/nonexistent/checkpoint", device="cpu"))
    # the admin's configuration, not a bug: a 400 that names the directory
    assert err.value.status == 400 and "/nonexistent/checkpoint does not exist" in err.value.message


def test_model_settings_are_checked_when_the_settings_are_parsed() -> None:
    for json_data, field in (({"device": "tpu"}, "device"), ({"dtype": "float64"}, "dtype"),
                             ({"device": "cuda:x"}, "device")):
        with pytest.raises(BackendError) as err:
            backend_settings.model_settings(json_data, ProcessConfig())
        assert err.value.status == 400 and err.value.message.startswith(f"data source setting {field}:")
    good = backend_settings.model_settings({"device": "cuda:1", "dtype": "bfloat16"}, ProcessConfig())
    assert good.device == "cuda:1"


def test_baseline_follows_the_trend_and_does_not_echo_a_spike() -> None:
    """Hourly season at 1 min steps, +0.1 per step: the offline fallback must continue the line."""
    n, season = 600, 60
    t = np.arange(n + 120)
    truth = 100 + 0.1 * t + 5 * np.sin(2 * np.pi * t / season)
    history = truth[:n].copy()
    history[n - 30] += 200  # a one-off spike half a season ago
    q = seasonal_naive(history, 120, 60_000)
    assert q.shape == (9, 120) and np.all(np.diff(q, axis=0) >= 0)
    np.testing.assert_allclose(q[4], truth[n:], atol=1e-6)  # exact for trend + season
    assert q[8].max() < truth[n:].max() + 50  # the spike is not repeated a season later
