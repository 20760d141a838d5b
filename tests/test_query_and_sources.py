"""Query parsing, time planning and the demo/inline sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_queries
from toto_datasource.core.config import ProcessConfig
from toto_datasource.core.errors import BackendError
from toto_datasource.core.settings import DataSourceSettings, RawSettings, Secret
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.query import plan_query
from toto_datasource.service import DataQueryInput, ForecastDataSource, parse_data_source_settings
from toto_datasource.sources.base import HistoryRequest, TimeGrid
from toto_datasource.sources.demo import SCENARIOS, DemoSource
from toto_datasource.sources.inline import InlineSource, InlineSpec

NOW = 1_795_000_000_000


DS = ForecastDataSource(ModelRegistry(warmup=False))  # the built-in sources and query types


def parse(body: dict, from_ms: int = NOW - 3_600_000, to_ms: int = NOW, interval_ms: float = 60_000):
    query = DataQueryInput("A", "", json.dumps(body).encode(), from_ms, to_ms, interval_ms, 1000)
    return DS.parse(query, DataSourceSettings())


def test_future_range_end_sets_the_horizon() -> None:
    q = parse({"source": "demo"}, to_ms=NOW + 2 * 3_600_000)
    plan = plan_query(q, NOW)
    assert plan.grid.step_ms == 60_000
    future = plan.grid.future_ms(plan.horizon)
    assert future[-1] >= NOW + 2 * 3_600_000 > future[-2]  # the forecast reaches the range end
    assert plan.grid.end_ms <= NOW and plan.grid.end_ms % 60_000 == 0 and plan.grid.count == 2048


def test_grafana_keys_are_ignored_and_defaults_apply() -> None:
    q = parse(
        {
            "refId": "A",
            "datasource": {"type": "x", "uid": "y"},
            "intervalMs": 30_000.5,
            "hide": False,
            "somethingNew": 1,
        }
    )
    assert q.quantiles == (0.1, 0.5, 0.9) and q.context_length == 2048 and q.include_history


def test_long_horizons_coarsen_the_step_so_history_covers_several_seasons() -> None:
    q = parse({"horizon": "14d"}, interval_ms=15_000)
    plan = plan_query(q, NOW)
    assert plan.grid.step_ms == 3_600_000  # 1 h steps: 2048 points ≈ 85 days of history
    assert plan.horizon == 14 * 24


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"contextLength": 10_000}, "contextLength"),
        ({"quantiles": []}, "quantiles"),
        ({"source": "prometheus"}, "expr"),
        ({"queryType": "threshold"}, "threshold"),
        ({"step": "fast"}, "step"),
        ({"includeHistory": "yes"}, "includeHistory"),
        ({"thresholdQuantile": 0.95}, "thresholdQuantile"),
    ],
)
def test_invalid_fields_are_named(body: dict, field: str) -> None:
    with pytest.raises(BackendError) as err:
        parse(body)
    assert err.value.status == 400 and err.value.message.startswith(field)


@pytest.mark.parametrize(
    ("series", "field", "wrong"),
    [
        (
            {"timestamps": [0, "60000"], "values": [1, 2]},
            "series.0.timestamps.1",
            '"60000" is not of type number',
        ),
        (
            {"timestamps": [0, 60_000], "values": [1, True]},
            "series.0.values.1",
            "true is not of type number or null",
        ),
        ({"timestamps": [0, None], "values": [1, 2]}, "series.0.timestamps.1", "null is not of type number"),
        (
            {"timestamps": [0, 60_000], "values": [1, [2]]},
            "series.0.values.1",
            "[2] is not of type number or null",
        ),
        ({"timestamps": [0, 60_000], "values": [1, 2], "extra": 1}, "series.0", "not allowed"),
        ({"timestamps": "0,60000", "values": [1, 2]}, "series.0.timestamps", "is not of type"),
    ],
)
def test_inline_arrays_follow_the_schema(series: dict, field: str, wrong: str) -> None:
    """The bulk (numpy) check of inline arrays keeps the schema's rules and its error style."""
    with pytest.raises(BackendError) as err:
        parse({"source": "inline", "series": [series]})
    assert err.value.status == 400
    assert err.value.message.startswith(f"{field}:") and wrong in err.value.message


def test_inline_nulls_are_missing_points() -> None:
    q = parse(
        {"source": "inline", "series": [{"timestamps": [0, 60_000, 120_000], "values": [1, None, 2.5]}]}
    )
    assert isinstance(q.source, InlineSpec)
    values = q.source.series[0].values
    assert values.dtype == np.float64 and values[0] == 1 and np.isnan(values[1]) and values[2] == 2.5


def test_from_after_to_is_rejected() -> None:
    with pytest.raises(BackendError, match=r"from .* is after to"):
        parse({}, from_ms=NOW, to_ms=NOW - 1)


def test_demo_is_deterministic_and_aligned() -> None:
    grid = TimeGrid(end_ms=NOW - NOW % 300_000, step_ms=300_000, count=1440)
    a = DemoSource("all").fetch(HistoryRequest(grid, None))
    b = DemoSource("all").fetch(HistoryRequest(grid, None))
    assert [s.name for s in a.series] == [f(grid).name for f in SCENARIOS.values()]
    for x, y in zip(a.series, b.series, strict=True):
        assert len(x.values) == 1440 and np.array_equal(x.values, y.values) and np.isfinite(x.values).all()
    qps = a.series[0].values
    assert 150 < np.median(qps) < 500 and qps.max() > 500  # base load with overload spikes


def test_inline_unsorted_duplicate_and_irregular_points() -> None:
    ts = [0, 120_000, 60_000, 180_000, 180_000, 241_000, 300_000]
    q = parse(
        {"source": "inline", "series": [{"name": "x", "timestamps": ts, "values": [0, 2, 1, 3, 33, 4, None]}]}
    )
    assert isinstance(q.source, InlineSpec)
    source = InlineSource(q.source)
    grid = source.native_grid(q.source, 2048)
    assert (grid.step_ms, grid.end_ms, grid.count) == (60_000, 300_000, 6)
    history = source.fetch(HistoryRequest(grid, q))
    values = history.series[0].values
    assert values[:5].tolist() == [0, 1, 2, 33, 4] and np.isnan(values[5])
    text = " ".join(history.notices)
    assert "sorted" in text and "snapped" in text and "same step" in text


def _epoch_ms(field) -> list[int]:
    return (field.values.cast("int64").to_numpy() // 1_000_000).tolist()


MINUTES = list(range(1699999980000, 1700000300000, 60_000))
JITTERED = [1699999980000, 1700000041000, 1700000100000, 1700000161000, 1700000220000, 1700000281000]
JITTER_20S = [t + j for t, j in zip(MINUTES, [0, 20_000, -19_000, 15_000, -20_000, 19_000], strict=True)]


@pytest.mark.parametrize("timestamps", [JITTERED, JITTER_20S], ids=["issue-example", "plus-minus-20s"])
def test_jittered_inline_lands_on_a_round_grid_through_query_data(timestamps: list[int]) -> None:
    """The issue's example (and +-20 s jitter): a 1 m grid at the minute marks, all six points, nothing
    invented, the snapping reported; it used to make a 61 s grid and drop the first point silently."""
    body = {"refId": "J", "source": "inline", "horizon": 3, "includeHistory": True, "model": "seasonal-naive",
            "series": [{"name": "j", "timestamps": timestamps, "values": [1, 2, 3, 4, 5, 6]}]}
    window = (MINUTES[0] - 600_000, MINUTES[-1] + 600_000)  # the panel shows history inside its range
    query = DataQueryInput("J", "", json.dumps(body).encode(), *window, 60_000, 1000)
    result = run_queries(DS, DataSourceSettings(), [query])["J"]
    assert result.error is None
    history, forecast = result.frames
    assert _epoch_ms(history.fields[0]) == MINUTES
    assert history.fields[1].values.to_pylist() == [1, 2, 3, 4, 5, 6]
    assert _epoch_ms(forecast.fields[0]) == [MINUTES[-1] + k * 60_000 for k in (1, 2, 3)]
    notices = [n.text for n in history.meta.notices]
    assert "step 1m inferred from the timestamps" in notices
    assert any("off the 1m grid" in n and "snapped" in n for n in notices)
    assert not any("same step" in n or "outside" in n for n in notices)


def test_secrets_never_print() -> None:
    s = parse_data_source_settings(RawSettings(
        json_data={"prometheusUrl": "http://127.0.0.1:9090", "authType": "bearer"},
        secure={"bearerToken": "s3cr3t-token"},
    ))
    assert isinstance(s.part("prometheus").bearer_token, Secret)
    assert "s3cr3t-token" not in repr(s) and "s3cr3t-token" not in str(s)
    assert s.part("prometheus").bearer_token.reveal() == "s3cr3t-token"


def test_admin_env_overrides_the_data_source_model() -> None:
    raw = RawSettings(json_data={"model": "a"})
    s = parse_data_source_settings(raw, ProcessConfig.from_environment({"GF_PLUGIN_MODEL": "/opt/toto"}))
    assert s.model.checkpoint == "/opt/toto"
    assert parse_data_source_settings(raw, ProcessConfig()).model.checkpoint == "a"
