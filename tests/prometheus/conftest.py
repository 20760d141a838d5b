"""Session fixtures: a real Prometheus with weeks of backfilled history (and a 1 s self-scrape),
a second one behind TLS + bcrypt basic auth, and a fake upstream for faults Prometheus cannot show.
"""

from __future__ import annotations

import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

try:
    import toto_datasource  # noqa: F401
except ModuleNotFoundError:  # not installed into the venv: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "server"))

from . import prom_fakes, prom_server, prom_synthetic
from .prom_testkit import BASIC_HASH, BASIC_PASSWORD, BASIC_USER, MAX_SAMPLES, AuthEnv, PromEnv

SELF_SCRAPE = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: self
    scrape_interval: 1s
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
NO_SCRAPE = "global:\n  scrape_interval: 1m\nscrape_configs: []\n"


@pytest.fixture(scope="session")
def prom_bins() -> tuple[str, str]:
    try:
        return prom_server.ensure_binaries()
    except prom_server.PrometheusUnavailable as exc:  # a core suite: fail, never skip
        pytest.fail(f"{exc}; install Debian's prometheus and openssl packages (make test does as root)")


@pytest.fixture(scope="session")
def synthetic() -> prom_synthetic.Synthetic:
    # End an hour before the current hour: the history sits wholly in backfilled blocks, apart
    # from the head block the live self-scrape writes to.
    end = (int(time.time()) // 3600) * 3600 - 3600
    return prom_synthetic.generate(end)


@pytest.fixture(scope="session")
def prom(
    prom_bins: tuple[str, str], synthetic: prom_synthetic.Synthetic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PromEnv]:
    prometheus, promtool = prom_bins
    work = tmp_path_factory.mktemp("prometheus")
    openmetrics = work / "history.om"
    prom_synthetic.write_openmetrics(
        openmetrics, synthetic.series.values(), {"toto_test_requests_total": "counter"}
    )
    prom_server.backfill(promtool, openmetrics, work / "data")
    openmetrics.unlink()
    server = prom_server.start(prometheus, work, work / "data", SELF_SCRAPE)
    version = httpx.get(f"{server.url}/api/v1/status/buildinfo", timeout=5).json()["data"]["version"]
    prom_synthetic.LOOKBACK_INCLUSIVE = int(version.split(".")[0]) < 3
    try:
        yield PromEnv(server.url, synthetic, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def auth_prom(prom_bins: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthEnv]:
    """Prometheus's own --web.config.file: bcrypt basic auth and TLS with a self-signed cert."""
    prometheus, _ = prom_bins
    work = tmp_path_factory.mktemp("prometheus-auth")
    cert, key = prom_server.self_signed_cert(work)
    web = (f"basic_auth_users:\n  {BASIC_USER}: {BASIC_HASH}\n"
           f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    ca_pem = cert.read_text()
    client_kwargs: dict[str, object] = {
        "auth": (BASIC_USER, BASIC_PASSWORD), "verify": ssl.create_default_context(cadata=ca_pem)
    }
    server = prom_server.start(
        prometheus,
        work,
        work / "data",
        NO_SCRAPE,
        web_config_yaml=web,
        extra_args=(f"--query.max-samples={MAX_SAMPLES}",),
        scheme="https",
        client_kwargs=client_kwargs,
    )
    try:
        yield AuthEnv(server.url, ca_pem, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fake() -> Iterator[prom_fakes.FakeUpstream]:
    upstream = prom_fakes.start_fake()
    try:
        yield upstream
    finally:
        upstream.stop()
