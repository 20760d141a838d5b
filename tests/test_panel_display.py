"""What a time-series panel needs from the frames to draw a series as one thing: names no other series
of the answer shares (a band's lower edge is found by display name), one colour for its history,
median and band, and the source's unit. The browser test (grafana-plugin/frontend/panels) draws them."""

from __future__ import annotations

import json

from conftest import run_queries
from toto_datasource.core.settings import DataSourceSettings
from toto_datasource.engine.registry import ModelRegistry
from toto_datasource.service import DataQueryInput, ForecastDataSource

DS = ForecastDataSource(ModelRegistry(warmup=False))
END = 1_795_000_000_000
STEP = 60_000


def inline(name: str, labels: dict[str, str], level: float) -> dict:
    times = [END - STEP * k for k in range(120, -1, -1)]
    values = [level + k % 7 for k in range(121)]
    return {"name": name, "labels": labels, "timestamps": times, "values": values}


def answer(body: dict) -> list:
    base = {"refId": "A", "horizon": 5, "includeHistory": True, "model": "seasonal-naive"}
    raw = json.dumps({**base, **body}).encode()
    query = DataQueryInput("A", "", raw, END - 3_600_000, END + 600_000, STEP, 1000)
    result = run_queries(DS, DataSourceSettings(), [query])["A"]
    assert result.error is None
    return result.frames


def value_fields(frames: list) -> list:
    return [f for frame in frames for f in frame.fields[1:]]


def test_series_of_one_name_are_told_apart_by_the_labels_that_differ() -> None:
    frames = answer({"source": "inline", "series": [
        inline("http_requests", {"job": "api", "instance": "web-1"}, 100),
        inline("http_requests", {"job": "api", "instance": "web-2"}, 200),
        inline("errors", {"job": "api"}, 5),
    ]})
    names = [f.config["displayNameFromDS"] for f in value_fields(frames)]
    assert len(names) == len(set(names))
    assert [f.name for f in frames] == [
        'http_requests{instance="web-1"}', 'http_requests{instance="web-1"} forecast',
        'http_requests{instance="web-2"}', 'http_requests{instance="web-2"} forecast',
        "errors", "errors forecast",
    ]
    # each band is shaded down to its own series' lower edge
    for frame in frames:
        own = {f.config["displayNameFromDS"] for f in frame.fields[1:]}
        for f in frame.fields[1:]:
            target = (f.config.get("custom") or {}).get("fillBelowTo")
            assert target is None or target in own


def test_series_that_not_even_labels_tell_apart_are_numbered() -> None:
    frames = answer({"source": "inline", "includeHistory": False, "series": [
        inline("q", {"queue": "a"}, 1), inline("q", {"queue": "a"}, 2),
    ]})
    assert [f.name for f in frames] == ["q #1 forecast", "q #2 forecast"]


def test_a_series_has_one_colour_and_series_have_different_ones() -> None:
    frames = answer({"source": "inline", "quantiles": [0.1, 0.2, 0.5, 0.8, 0.9], "series": [
        inline("a", {}, 1), inline("b", {}, 2),
    ]})
    colours = [{json.dumps(f.config["color"], sort_keys=True) for f in frame.fields[1:]} for frame in frames]
    assert all(len(c) == 1 for c in colours)  # history, median and both bands of one series alike
    assert colours[0] == colours[1] and colours[2] == colours[3] and colours[0] != colours[2]
    # the classic palette's first colour
    assert json.loads(colours[0].pop()) == {"mode": "fixed", "fixedColor": "green"}


def test_the_source_unit_is_on_every_drawn_field() -> None:
    frames = answer({"source": "demo", "scenario": "cpu"})
    assert {f.config.get("unit") for f in value_fields(frames)} == {"percent"}
    inline_frames = answer({"source": "inline", "series": [inline("a", {}, 1)]})
    assert all("unit" not in f.config for f in value_fields(inline_frames))  # no unit known: none invented
