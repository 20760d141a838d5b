"""Fixtures: the Go stand-in for Grafana's query API, alone and in front of the real Prometheus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus.conftest import prom, prom_bins, synthetic  # noqa: F401  (the real Prometheus)
from prometheus.prom_testkit import PromEnv

from . import standin


@pytest.fixture(scope="session")
def grafana() -> Iterator[standin.Standin]:
    server = standin.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def grafana_prom(prom: PromEnv) -> Iterator[standin.Standin]:  # noqa: F811
    server = standin.start(prom.url)
    try:
        yield server
    finally:
        server.stop()
