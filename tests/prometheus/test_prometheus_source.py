"""PrometheusSource against a real Prometheus holding three weeks of backfilled, known history."""

from __future__ import annotations

import time
from contextlib import closing

import numpy as np
import pytest
from toto_datasource.core.errors import BackendError
from toto_datasource.core.request import RequestContext
from toto_datasource.sources.base import History, TimeGrid
from toto_datasource.sources.prometheus import MAX_POINTS_PER_REQUEST, PrometheusSource

from .prom_synthetic import DAY, expected_on_grid
from .prom_testkit import PromEnv, grid, poll, request, settings

CTX = RequestContext()


@pytest.fixture
def source(prom: PromEnv):
    src = PrometheusSource(settings(prom.url), max_series=500)
    yield src
    src.close()


def by_instance(history: History) -> dict[str, np.ndarray]:
    return {s.labels.get("instance", ""): s.values for s in history.series}


def test_values_and_labels_match_the_backfill_exactly(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 60, 8192)  # ~5.7 days: the gap, the spike and the NaN samples are inside
    history = source.fetch(request("toto_test_load", g))
    assert history.grid == g
    assert len(history.series) == 3
    for s in history.series:
        truth = syn.series[f"load_{s.labels['instance']}"]
        assert s.labels == truth.all_labels  # __name__ included
        assert s.values.dtype == np.float64 and s.values.shape == (g.count,)
        np.testing.assert_array_equal(s.values, expected_on_grid(truth, g.start_ms // 1000, 60, g.count))
    assert history.series[0].name == 'toto_test_load{env="prod", instance="a", job="app"}'
    assert "toto_test_load" in history.executed_query and "step=1m" in history.executed_query


def test_gaps_and_nan_samples_become_masked_points(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 60, 8192)
    values = by_instance(source.fetch(request("toto_test_load", g)))
    ts = g.timestamps_ms() // 1000
    gap_start, gap_end = syn.gap
    # Prometheus repeats the last sample for the 5-minute lookback, then nothing until the gap ends.
    inside = (ts >= gap_start + 300) & (ts < gap_end)
    assert inside.sum() > 300 and np.isnan(values["b"][inside]).all()
    assert (
        np.isfinite(values["b"][ts == gap_start - 60]).all() and np.isfinite(values["b"][ts == gap_end]).all()
    )
    assert np.isnan(values["a"][np.isin(ts, syn.nan_s)]).all()
    assert np.isfinite(values["a"]).sum() == g.count - len(syn.nan_s)


def test_injected_spike_is_at_its_known_time(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 60, 8192)
    c = by_instance(source.fetch(request('toto_test_load{instance="c"}', g)))["c"]
    assert g.timestamps_ms()[int(np.nanargmax(c))] == syn.spike_s * 1000


@pytest.mark.parametrize("count", [MAX_POINTS_PER_REQUEST, MAX_POINTS_PER_REQUEST + 1, 20_000])
def test_long_history_is_split_into_range_requests_and_merged(
    prom: PromEnv, source: PrometheusSource, count: int
) -> None:
    syn = prom.data
    g = grid(syn.end_s, 60, count)  # 20,000 minutes ≈ 13.9 days of the three weeks
    history = source.fetch(request('toto_test_load{instance="b"}', g))
    truth = syn.series["load_b"]
    np.testing.assert_array_equal(
        history.series[0].values, expected_on_grid(truth, g.start_ms // 1000, 60, count)
    )
    requests = -(-count // MAX_POINTS_PER_REQUEST)
    assert (f"({requests} requests" in history.executed_query) == (requests > 1)


def test_legend_format_and_default_names(prom: PromEnv, source: PrometheusSource) -> None:
    g = grid(prom.data.end_s, 300, 64)
    named = source.fetch(request("toto_test_load", g, legend="{{instance}} / {{ job }} {{missing}}"))
    assert [s.name for s in named.series] == ["a / app ", "b / app ", "c / app "]
    grouped = source.fetch(request("sum by (job) (toto_test_load)", g))
    assert [(s.name, s.labels) for s in grouped.series] == [('{job="app"}', {"job": "app"})]
    total = source.fetch(request("sum(toto_test_load)", g))
    assert [(s.name, s.labels) for s in total.series] == [("sum(toto_test_load)", {})]


def test_raw_counter_is_flagged_by_name_and_by_shape(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 60, 8192)  # covers the counter reset four days before the end
    raw = source.fetch(request("toto_test_requests_total", g))
    assert any("raw counters" in n and "rate(" in n for n in raw.notices)
    # `+ 0` drops the name: only the shape (rises, resets towards zero) gives it away.
    unnamed = source.fetch(request("toto_test_requests_total + 0", g))
    assert "__name__" not in unnamed.series[0].labels
    assert any("raw counters" in n for n in unnamed.notices)
    for fine in ("rate(toto_test_requests_total[5m])", "toto_test_load"):
        assert not any("counter" in n for n in source.fetch(request(fine, g)).notices), fine


def test_late_series_is_left_padded_with_a_notice(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 60, 8192)
    history = source.fetch(request("toto_test_late", g))
    values = history.series[0].values
    first = int(np.argmax(np.isfinite(values)))
    assert g.timestamps_ms()[first] == syn.late_s * 1000
    assert np.isnan(values[:first]).all() and np.isfinite(values[first:]).all()
    assert any("start late" in n and "toto_test_late" in n for n in history.notices)
    early = source.fetch(request("toto_test_load", g))
    assert not any("start late" in n for n in early.notices)


def test_sparse_series_gets_a_notice(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 300, 256)
    history = source.fetch(request("toto_test_sparse", g))
    expected = expected_on_grid(syn.series["sparse"], g.start_ms // 1000, 300, g.count)
    np.testing.assert_array_equal(history.series[0].values, expected)
    assert history.series[0].observed < 32
    assert "1 series have fewer than 32 points; their forecasts are unreliable" in " ".join(history.notices)


def test_empty_series_are_dropped_and_no_data_is_an_error(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 300, 128)
    mixed = source.fetch(request('toto_test_load{instance="a"} * NaN or toto_test_load{instance="b"}', g))
    assert [s.labels["instance"] for s in mixed.series] == ["b"]
    assert any("1 series had no points" in n for n in mixed.notices)
    for expr in ("toto_test_does_not_exist", "toto_test_load * NaN"):
        with pytest.raises(BackendError) as err:
            source.fetch(request(expr, g))
        assert err.value.status == 400 and err.value.source == "plugin"
        assert "returned no data between" in err.value.message
    before = grid(syn.late_s - DAY, 300, 64)  # the late series has not started yet
    with pytest.raises(BackendError, match="returned no data"):
        source.fetch(request("toto_test_late", before))
    with pytest.raises(BackendError, match="expr is empty") as err:
        source.fetch(request("  ", g))
    assert err.value.source == "plugin"


def test_hundreds_of_series_in_one_go(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 300, 512)
    history = source.fetch(request("toto_test_many", g, legend="host {{idx}}"))
    assert len(history.series) == syn.many == 300
    for s in history.series[::37]:
        truth = syn.series[f"many_{s.labels['idx']}"]
        assert s.name == f"host {s.labels['idx']}"
        np.testing.assert_array_equal(s.values, expected_on_grid(truth, g.start_ms // 1000, 300, g.count))


def test_max_series_setting_is_enforced(prom: PromEnv) -> None:
    g = grid(prom.data.end_s, 300, 64)
    with closing(PrometheusSource(settings(prom.url), max_series=300)) as at_limit:
        assert len(at_limit.fetch(request("toto_test_many", g)).series) == 300
    with (
        closing(PrometheusSource(settings(prom.url), max_series=100)) as capped,
        pytest.raises(BackendError) as err,
    ):
        capped.fetch(request("toto_test_many", g))
    assert err.value.message == (
        "query returned 300 series; the data source allows at most 100 (maxSeries setting); "
        "narrow the selector or aggregate"
    )
    assert err.value.status == 400 and err.value.source == "plugin"


def test_editor_lookups(prom: PromEnv, source: PrometheusSource) -> None:
    names = source.metric_names(CTX, "TOTO_TEST")
    assert names == sorted(
        ["toto_test_late", "toto_test_load", "toto_test_many", "toto_test_requests_total", "toto_test_sparse"]
    )
    assert source.metric_names(CTX, "toto_test", limit=2) == names[:2]
    assert source.metric_names(CTX, '{job="fleet"}') == ["toto_test_many"]
    assert source.label_values(CTX, "instance", "toto_test_load") == ["a", "b", "c"]
    assert len(source.label_values(CTX, "idx")) == 300
    with pytest.raises(BackendError, match="invalid label name"):
        source.label_values(CTX, "../admin")
    with pytest.raises(BackendError) as err:
        source.label_values(CTX, "instance", "sum(")
    assert err.value.source == "downstream" and err.value.status == 400


def test_preview_series_count(prom: PromEnv, source: PrometheusSource) -> None:
    syn = prom.data
    g = grid(syn.end_s, 60, 8192)
    assert source.series_count("toto_test_load", g, CTX) == 3
    assert source.series_count("toto_test_many", g, CTX) == 300
    assert source.series_count("toto_test_late", g, CTX) == 1
    assert source.series_count("toto_test_late", grid(syn.late_s - DAY, 60, 1024), CTX) == 0


def test_health_reports_version(prom: PromEnv, source: PrometheusSource) -> None:
    health = source.check(CTX)
    assert health.ok and health.version.startswith("2.")
    assert health.message == f"Prometheus at {prom.url} reachable, version {health.version}"


def test_live_scrape_fresh_data(prom: PromEnv, source: PrometheusSource) -> None:
    """Prometheus scrapes itself every second: freshly ingested samples reach the grid's end."""

    def fresh() -> History | None:
        end = int(time.time())  # a fresh grid each poll, ending now
        g = TimeGrid(end_ms=end * 1000, step_ms=1000, count=64)
        try:
            history = source.fetch(request('up{job="self"}', g))
        except BackendError:
            return None  # no scrape yet
        return history if history.series[0].observed >= 5 else None

    history = poll(fresh, deadline_s=60)
    up = history.series[0]
    assert up.labels["__name__"] == "up" and up.labels["job"] == "self"
    assert np.isfinite(up.values[-1]) and set(up.values[np.isfinite(up.values)].tolist()) == {1.0}
    assert "up" in source.metric_names(CTX, "up")
    counter = source.fetch(request("prometheus_tsdb_head_samples_appended_total", history.grid))
    assert any("raw counters" in n for n in counter.notices)
