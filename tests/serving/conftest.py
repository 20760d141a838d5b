"""Fixtures for remote inference: one loaded engine, a plain OIP server on 127.0.0.1 in front of it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from toto_datasource.engine.batch import PreparedBatch
from toto_datasource.serving.engine import ServingEngine, ServingOptions
from toto_datasource.serving.oip import OIPServicer, build_server

TOKEN = "test-inference-token"


def prepared_batch(
    rows: int, length: int = 512, horizon: int = 64, seed: int = 0, gaps: bool = True, **kw
) -> PreparedBatch:  # type: ignore[no-untyped-def]
    """Rows of noisy sines (some with leading padding and gaps), as the scheduler would build them."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    values = (
        np.sin(t / 7.0 + rng.uniform(0, 6, (rows, 1, 1))) * rng.uniform(1, 100, (rows, 1, 1))
        + rng.normal(0, 0.3, (rows, 1, length))
    ).astype(np.float32)
    mask = np.ones_like(values, dtype=bool)
    if gaps:
        for r in range(0, rows, 2):
            pad = int(rng.integers(1, length // 2))
            values[r, :, :pad] = 0.0
            mask[r, :, :pad] = False
            mask[r, :, length - 100 : length - 90] = False
    return PreparedBatch(values, mask, np.zeros((rows, 1), np.int64), horizon, bool(not mask.all()), **kw)


# Peaks two and six orders of magnitude under the runner's rescaling threshold (1e-2; toto2's
# scale floor is 1e-6), and a huge one: every engine must answer these as in process.
PEAKS = (1e-4, 1e-8, 1e12)


def magnitudes_batch(length: int = 256, horizon: int = 40, seed: int = 5) -> PreparedBatch:
    """prepared_batch's rows (gaps, left padding) rescaled to the peaks of PEAKS, plus one as is."""
    batch = prepared_batch(rows=len(PEAKS) + 1, length=length, horizon=horizon, seed=seed)
    peak = np.where(batch.mask, np.abs(batch.values), 0).max(axis=(1, 2))
    scale = np.array([*PEAKS, peak[-1]]) / peak
    values = (batch.values * scale[:, None, None]).astype(np.float32)
    return PreparedBatch(values, batch.mask, batch.series_ids, horizon, batch.has_missing_values)


def assert_in_data_units(quantiles: np.ndarray) -> None:
    """The magnitudes_batch rows' forecasts are on their series' scale: the random 4m checkpoint
    forecasts within 0.13 of each row's peak; toto2 alone, at its scale floor, gave the 1e-8 row
    quantiles up to 17 times its peak."""
    for row, peak in enumerate(PEAKS):
        largest = np.abs(quantiles[:, row]).max()
        assert peak / 100 < largest < 5 * peak, (peak, largest)


@pytest.fixture(scope="session")
def serving_engine(tiny_checkpoint: Path) -> ServingEngine:
    return ServingEngine(
        ServingOptions(str(tiny_checkpoint), device="cpu", token=TOKEN, max_rows=8, warmup=False)
    ).load()


@dataclass
class Gate:
    """A model runner the test can hold: calls block until `open` is set (no sleeps in tests)."""

    open: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)


@dataclass
class OIPServer:
    address: str
    servicer: OIPServicer
    gate: Gate


@pytest.fixture()
def oip_server(serving_engine: ServingEngine) -> Iterator[OIPServer]:
    gate = Gate()
    gate.open.set()
    servicer = OIPServicer(serving_engine)
    real_run = serving_engine.run

    def gated_run(batch: PreparedBatch) -> np.ndarray:
        gate.entered.set()
        gate.open.wait(30)
        return real_run(batch)

    serving_engine.run = gated_run  # type: ignore[method-assign]
    server, port = build_server(servicer, "127.0.0.1:0", workers=8)
    server.start()
    try:
        yield OIPServer(f"127.0.0.1:{port}", servicer, gate)
    finally:
        gate.open.set()
        server.stop(0).wait(5)
        serving_engine.run = real_run  # type: ignore[method-assign]
