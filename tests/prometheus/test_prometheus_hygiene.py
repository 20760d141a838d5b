"""History hygiene in isolation: grid placement, counter detection, names, request splitting."""

from __future__ import annotations

import numpy as np
import pytest
from toto_datasource.core.series import TimeGrid
from toto_datasource.core.settings import RawSettings
from toto_datasource.service import parse_data_source_settings
from toto_datasource.sources.prometheus import (
    MAX_POINTS_PER_REQUEST,
    PrometheusSource,
    chunks,
    looks_like_counter,
    place_on_grid,
    redact_url,
    series_name,
)

from .prom_fakes import FakeUpstream
from .prom_testkit import grid, request, settings


def test_place_on_grid_snaps_and_keeps_the_last_duplicate() -> None:
    g = TimeGrid(end_ms=10_000, step_ms=1000, count=11)  # 0 s .. 10 s
    out = np.full(g.count, np.nan)
    ts = np.array([0.0, 1.0, 2.2, 3.0, 3.0, 4.6, 12.0, -5.0])
    vals = np.array([0, 1, 2, 3, 3.5, 5, 99, 99], dtype=float)
    misaligned, duplicates = place_on_grid(g, ts, vals, out)
    # 2.2 → 2 and 4.6 → 5 are misaligned, 3 s comes twice; 12 s and -5 s fall outside the grid.
    assert (misaligned, duplicates) == (2, 1)
    assert out[3] == 3.5  # the later of two samples at 3 s wins
    np.testing.assert_array_equal(out[[0, 1, 2, 5]], [0, 1, 2, 5])
    assert np.isnan(out[[4, 6, 7, 8, 9, 10]]).all()
    out2 = np.full(g.count, np.nan)
    assert place_on_grid(g, np.array([1.0, 1.2]), np.array([1.0, 2.0]), out2) == (1, 1)


def test_float_second_timestamps_are_not_misaligned() -> None:
    g = TimeGrid(end_ms=1_795_575_600_123, step_ms=15_000, count=4000)
    ts = g.timestamps_ms() / 1000.0  # what Prometheus prints: float seconds
    out = np.full(g.count, np.nan)
    assert place_on_grid(g, ts, np.arange(g.count, dtype=float), out) == (0, 0)
    np.testing.assert_array_equal(out, np.arange(g.count))


def test_counter_detection() -> None:
    rising = np.cumsum(np.full(500, 3.0))
    with_reset = rising.copy()
    with_reset[300:] -= with_reset[300]
    assert looks_like_counter({"__name__": "http_requests_total"}, np.sin(np.arange(100.0)))
    assert looks_like_counter({"__name__": "rpc_duration_seconds_bucket"}, rising)
    assert looks_like_counter({}, with_reset)
    assert not looks_like_counter({}, rising)  # disk usage also only rises: no reset, no warning
    assert not looks_like_counter({}, 100 + np.sin(np.arange(500.0)))  # a gauge
    sawtooth = np.tile(np.arange(10.0), 50)  # drops every 10 points: a gauge, not a counter
    assert not looks_like_counter({}, sawtooth)
    assert not looks_like_counter({}, with_reset[:20])  # too short to tell
    gaps = with_reset.copy()
    gaps[::7] = np.nan
    assert looks_like_counter({"job": "x"}, gaps)


@pytest.mark.parametrize(
    ("labels", "legend", "name"),
    [
        ({"__name__": "up", "job": "a", "instance": "x:1"}, "", 'up{instance="x:1", job="a"}'),
        ({"__name__": "up"}, "", "up"),
        ({"job": "a"}, "", '{job="a"}'),
        ({}, "", "sum(rate(x[5m]))"),
        ({"__name__": "up", "instance": "x:1"}, "{{instance}}", "x:1"),
        ({"__name__": "up", "instance": "x:1"}, "{{ __name__ }} on {{instance}} ({{nope}})", "up on x:1 ()"),
        ({"instance": "x"}, "static", "static"),
    ],
)
def test_series_names(labels: dict[str, str], legend: str, name: str) -> None:
    assert series_name(labels, legend, "sum(rate(x[5m]))") == name


@pytest.mark.parametrize(
    "count", [1, MAX_POINTS_PER_REQUEST, MAX_POINTS_PER_REQUEST + 1, 3 * MAX_POINTS_PER_REQUEST + 7]
)
def test_chunks_cover_the_grid_exactly(count: int) -> None:
    g = TimeGrid(end_ms=1_795_575_600_000, step_ms=30_000, count=count)
    parts = chunks(g)
    assert all(p.count <= MAX_POINTS_PER_REQUEST and p.step_ms == g.step_ms for p in parts)
    joined = np.concatenate([p.timestamps_ms() for p in parts])
    np.testing.assert_array_equal(joined, g.timestamps_ms())


def test_redact_url() -> None:
    url = "https://user:pw@prom.example:9090/prefix/?token=x"
    assert redact_url(url) == "https://***@prom.example:9090/prefix/"
    assert redact_url(url, userinfo="") == "https://prom.example:9090/prefix/"  # what requests go to
    assert redact_url("http://127.0.0.1:9090") == "http://127.0.0.1:9090"
    assert redact_url("http://u:p@[::1]:9090/") == "http://***@[::1]:9090/"


def test_settings_repr_hides_url_credentials() -> None:
    """Settings end up in log lines and tracebacks: neither the URL's password nor a secret shows."""
    ds = parse_data_source_settings(RawSettings(
        json_data={"prometheusUrl": "http://admin:hunter2-pw@prom:9090/api?key=k3y", "authType": "bearer"},
        secure={"bearerToken": "tok-abc-123"},
    ))
    for text in (repr(ds), str(ds), repr(ds.part("prometheus")), f"{ds}"):
        assert "hunter2-pw" not in text and "admin" not in text and "k3y" not in text
        assert "tok-abc-123" not in text
        assert "url='http://***@prom:9090/api'" in text and "auth='bearer'" in text


def test_misaligned_duplicate_and_infinite_points_from_an_upstream(fake: FakeUpstream) -> None:
    src = PrometheusSource(settings(f"{fake.url}/misaligned"), 500)
    history = src.fetch(request("odd", grid(1_700_000_000, 60, 10)))
    src.close()
    values = history.series[0].values
    assert values[2] == 2.5 and values[3] == 3.25  # snapped; the later duplicate won
    assert np.isnan(values[6])  # +Inf is masked, never handed to the model
    text = " ".join(history.notices)
    assert "2 points were off the 1m grid or duplicated and were snapped to the nearest step" in text
    assert "1 infinite values were treated as missing" in text
