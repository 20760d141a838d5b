"""Batched and unbatched calls of the real 4m model give the same numbers (the scheduler's
batching is exact, whatever rows share a call)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from engine_fakes import WAIT
from toto_datasource.engine.scheduler import BatchingForecaster
from toto_datasource.engine.types import ForecastJob


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint: Path):  # type: ignore[no-untyped-def]
    from toto_datasource.core.settings import ModelSettings
    from toto_datasource.engine.toto import load_toto

    return load_toto(ModelSettings(checkpoint=str(tiny_checkpoint), device="cpu"))


def test_batched_and_unbatched_results_are_equal(tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Concurrent jobs of different lengths, gaps and horizons batched together equal each run alone."""
    from toto_datasource.engine.toto import run_forecast

    gate = threading.Event()
    entered = threading.Event()

    def runner(batch):  # type: ignore[no-untyped-def]
        values, mask, ids, horizon = batch.values, batch.mask, batch.series_ids, batch.horizon
        has_missing, block = batch.has_missing_values, batch.decode_block_size
        entered.set()
        assert gate.wait(WAIT)
        return run_forecast(
            tiny_model, values, mask, ids, horizon, has_missing_values=has_missing, decode_block_size=block
        )

    rng = np.random.default_rng(0)

    def make(n: int, length: int, level: float) -> np.ndarray:
        t = np.arange(length)
        x = (
            level
            + level * 0.1 * np.sin(t[None, :] / (5.0 + np.arange(n)[:, None]))
            + rng.normal(0, 1, (n, length))
        )
        return x

    gappy = make(2, 1800, 50.0)
    gappy[0, 100:400] = np.nan
    gappy[1, -5:] = np.nan
    jobs = [
        ForecastJob(make(3, 2048, 100.0), 256),
        ForecastJob(make(1, 1300, 1e4), 200),
        ForecastJob(gappy, 240),
        ForecastJob(make(2, 2000, 3.0), 256),
    ]
    batched_engine = BatchingForecaster("toto", runner)
    alone_engine = BatchingForecaster("toto", runner)
    try:
        warm = batched_engine.submit(ForecastJob(make(1, 64, 1.0), 8))
        assert entered.wait(WAIT)
        futures = [batched_engine.submit(j) for j in jobs]
        gate.set()
        warm.result(timeout=WAIT)
        batched = [f.result(timeout=120) for f in futures]
        assert batched_engine.calls == 2  # all four jobs (8 rows) in one forecast() call
        for job, out in zip(jobs, batched, strict=True):
            alone = np.concatenate(
                [
                    alone_engine.submit(ForecastJob(row[None, :], job.horizon)).result(timeout=120).quantiles
                    for row in job.context
                ],
                axis=1,
            )
            assert np.isfinite(out.quantiles).all()
            scale = np.abs(alone).max(axis=(0, 2), keepdims=True)  # per-series magnitude
            rel = np.abs(out.quantiles - alone) / scale
            assert rel.max() <= 1e-5, rel.max()
    finally:
        batched_engine.close()
        alone_engine.close()
