"""Forecast results → the frames a time-series panel draws and an alert rule reads.

Per series one `timeseries-multi` frame (data plane v0.1): time, the median first (alerting
reads only the first value field), then the band's quantiles, lower before upper. Every value
field carries the series' labels plus a `quantile` label, so (name, labels) is unique across
the response. The upper edge of each band has `custom.fillBelowTo` pointing at its lower edge's
display name, which makes Grafana shade the band. History, when asked for, is its own frame.
Every value field of one series carries that series' colour (`display.series_color`), so its
history, median and band are drawn alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.quantiles import QUANTILE_LEVELS, quantile_name
from ..core.series import Series, TimeGrid
from .display import field_config
from .model import DATAPLANE_VERSION, TIMESERIES_MULTI, Field, Frame, FrameMeta, Notice

BAND_OPACITY = 18


@dataclass
class QueryMeta:
    """What every frame of one query shares in its meta: provenance, notices, custom values, and
    whether the request asked for alert-shaped frames."""

    executed: str
    notices: list[Notice] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    for_alert: bool = False

    def frame_meta(self) -> FrameMeta:
        return FrameMeta(
            type=TIMESERIES_MULTI,
            type_version=DATAPLANE_VERSION,
            notices=list(self.notices),
            executed_query_string=self.executed,
            custom=self.custom or None,
        )


def _quantile_order(quantiles: tuple[float, ...]) -> list[float]:
    """Median first, then lower quantiles ascending, then upper ones ascending."""
    return [0.5] + [q for q in quantiles if q < 0.5] + [q for q in quantiles if q > 0.5]


def history_frame(series: Series, grid: TimeGrid, visible_from_ms: int, meta: QueryMeta,
                  color: dict[str, Any]) -> Frame:
    ts, values = grid.timestamps_ms(), series.values
    if grid.start_ms < visible_from_ms:  # history from before the panel's range is not drawn
        keep = ts >= visible_from_ms
        ts, values = ts[keep], values[keep]
    config = field_config(series, series.name, color)
    value = Field.number(series.name, values, dict(series.labels), config)
    return Frame(series.name, [Field.time("time", ts), value], meta=meta.frame_meta())


def forecast_frame(
    series: Series,
    future_ms: np.ndarray,
    quantiles: np.ndarray,
    wanted: tuple[float, ...],
    meta: QueryMeta,
    color: dict[str, Any],
) -> Frame:
    """`quantiles` is (9, horizon) for this series; `color` its field config colour."""
    order = [0.5] if meta.for_alert else _quantile_order(wanted)
    fields = [Field.time("time", future_ms)]
    for q in order:
        display = f"{series.name} {quantile_name(q)}"
        config = field_config(series, display, color)
        if q == 0.5:
            config["custom"] = {"lineStyle": {"fill": "dash", "dash": [10, 10]}, "lineWidth": 2}
        elif not meta.for_alert:
            custom: dict[str, Any] = {
                "lineWidth": 0,
                "hideFrom": {"legend": True, "tooltip": False, "viz": False},
            }
            partner = round(1.0 - q, 1)
            if q > 0.5 and partner in wanted:
                custom["fillBelowTo"] = f"{series.name} {quantile_name(partner)}"
                custom["fillOpacity"] = BAND_OPACITY
            config["custom"] = custom
        labels = {**series.labels, "quantile": f"{q:.1f}"}
        values = quantiles[QUANTILE_LEVELS.index(q)]
        fields.append(Field.number(series.name, values, labels, config))
    return Frame(f"{series.name} forecast", fields, meta=meta.frame_meta())
