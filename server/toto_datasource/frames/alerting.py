"""Threshold and anomaly results → the frames alert rules and panels read.

Alerting frames are one data-plane `numeric-wide` v0.1 frame per query: one row, no time
field, number fields only, each labelled with its source series' labels. Every number field is
one metric to Grafana's server-side expressions (dataplane `sdata/numeric/wide.go`), named
`time_to_breach`, `will_breach`, `breach_probability`, `forecast_peak` (threshold) or
`anomaly_score`, `anomaly`, `max_anomaly_score`, `anomalies` (anomaly summary); (name, labels)
is unique. Alert requests (FromAlert) get only the alert value per series (`time_to_breach`,
`anomaly_score`): a Threshold expression applies to every Number of its input, so
`time_to_breach IS BELOW 900` would otherwise also fire on every probability in [0, 1]. One
field per series also makes the label sets unique, which ngalert requires; series whose labels
collide get a `series` label with their name.

Anomaly panels get a `timeseries-multi` v0.1 frame per series (time, actual, p50, p10, p90,
score, flag) with the band styled like forecast frames, then the numeric summary frame (which
the time-series reader treats as remainder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ..core.quantiles import quantile_name
from ..core.series import Series
from ..query.durations import format_duration
from .display import field_config
from .forecast import BAND_OPACITY, QueryMeta
from .model import DATAPLANE_VERSION, NUMERIC_WIDE, Field, Frame, FrameMeta


@dataclass(frozen=True)
class ThresholdSpec:
    """A threshold rule as the frames describe it (the threshold query type's parameters)."""

    value: float
    direction: Literal["above", "below"]
    quantile: float
    annotations: bool = False  # answer as annotations (`annotation: true`) rather than numbers


TIME_TO_BREACH = "time_to_breach"
WILL_BREACH = "will_breach"
BREACH_PROBABILITY = "breach_probability"
FORECAST_PEAK = "forecast_peak"
ANOMALY_SCORE = "anomaly_score"
ANOMALY_FLAG = "anomaly"
MAX_ANOMALY_SCORE = "max_anomaly_score"
ANOMALY_COUNT = "anomalies"


def unique_labels(series: Sequence[Series]) -> list[dict[str, str]]:
    """Each series' labels; where two series share a label set, add `series`=name to those."""
    keys = [tuple(sorted(s.labels.items())) for s in series]
    counts: dict[tuple[tuple[str, str], ...], int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    out = []
    for s, k in zip(series, keys, strict=True):
        labels = dict(s.labels)
        if counts[k] > 1:
            labels["series"] = s.name
        out.append(labels)
    # Names can repeat too (inline series without names or labels): number what still collides.
    seen: dict[tuple[tuple[str, str], ...], int] = {}
    for labels in out:
        k = tuple(sorted(labels.items()))
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n:
            labels["series"] = f"{labels.get('series', '')}#{n}"
    return out


def _numeric_meta(meta: QueryMeta, custom: dict[str, Any]) -> FrameMeta:
    return replace(meta.frame_meta(), type=NUMERIC_WIDE, type_version=DATAPLANE_VERSION,
                   custom={**meta.custom, **custom})


# -- threshold -----------------------------------------------------------------------------
@dataclass
class ThresholdRow:
    """One series' threshold answer (see querytypes/crossing.py for the definitions)."""

    time_to_breach_s: float
    will_breach: bool
    probability: float
    peak: float
    breach_ms: int | None  # timestamp of the first forecast point beyond the threshold


def breach_text(row: ThresholdRow, spec: ThresholdSpec, horizon_ms: int) -> str:
    """'below 0 in 9d 4h', or 'stays above 0 for the next 14d'."""
    if row.will_breach:
        return f"{spec.direction} {spec.value:g} in {format_duration(row.time_to_breach_s * 1000)}"
    other = "below" if spec.direction == "above" else "above"
    return f"stays {other} {spec.value:g} for the next {format_duration(horizon_ms)}"


def threshold_frames(
    series: Sequence[Series],
    rows: Sequence[ThresholdRow],
    spec: ThresholdSpec,
    *,
    step_ms: int,
    horizon: int,
    sentinel_s: float,
    meta: QueryMeta,
) -> list[Frame]:
    labels = unique_labels(series)
    horizon_ms = horizon * step_ms
    qname = quantile_name(spec.quantile)
    fields: list[Field] = []
    per_series: list[dict[str, Any]] = []
    for s, lab, row in zip(series, labels, rows, strict=True):
        human = breach_text(row, spec, horizon_ms)
        peak_config = {"displayNameFromDS": f"{s.name} {qname} peak", **({"unit": s.unit} if s.unit else {})}
        fields.append(Field.number(TIME_TO_BREACH, np.array([row.time_to_breach_s]), dict(lab), {
            "displayNameFromDS": f"{s.name} time to breach",
            "description": f"{qname} forecast {human}",
            "unit": "s",
        }))
        if not meta.for_alert:
            fields += [
                Field.number(WILL_BREACH, np.array([1.0 if row.will_breach else 0.0]), dict(lab),
                             {"displayNameFromDS": f"{s.name} will breach", "min": 0, "max": 1}),
                Field.number(BREACH_PROBABILITY, np.array([row.probability]), dict(lab),
                             {"displayNameFromDS": f"{s.name} breach probability", "unit": "percentunit",
                              "min": 0, "max": 1}),
                Field.number(FORECAST_PEAK, np.array([row.peak]), dict(lab), peak_config),
            ]
        entry: dict[str, Any] = {"name": s.name, "labels": lab, "human": human}
        if row.breach_ms is not None:
            entry["breachAtMs"] = row.breach_ms
        per_series.append(entry)
    custom = {
        "threshold": spec.value,
        "direction": spec.direction,
        "quantile": spec.quantile,
        "horizonSeconds": horizon_ms / 1000,
        "sentinelSeconds": sentinel_s,
        "series": per_series,
    }
    return [Frame("threshold", fields, meta=_numeric_meta(meta, custom))]


# -- anomaly -------------------------------------------------------------------------------
@dataclass
class AnomalySeries:
    """One series over the visible range: actual values, the rolling band and scores."""

    actual: np.ndarray
    p10: np.ndarray
    p50: np.ndarray
    p90: np.ndarray
    score: np.ndarray
    flag: np.ndarray


def anomaly_frame(series: Series, labels: dict[str, str], times_ms: np.ndarray, a: AnomalySeries,
                  meta: QueryMeta, color: dict[str, Any]) -> Frame:
    """`color`: the series' field config colour, shared by its actual values, median and band."""
    name = series.name

    def band(q: float, values: np.ndarray, custom: dict[str, Any]) -> Field:
        config = {**field_config(series, f"{name} {quantile_name(q)}", color), "custom": custom}
        return Field.number(name, values, {**labels, "quantile": f"{q:.1f}"}, config)

    hidden = {"legend": True, "tooltip": False, "viz": False}
    fields = [
        Field.time("time", times_ms),
        Field.number(name, a.actual, dict(labels), {**field_config(series, f"{name} actual", color),
                                                    "custom": {"lineWidth": 1}}),
        band(0.5, a.p50, {"lineStyle": {"fill": "dash", "dash": [10, 10]}, "lineWidth": 1}),
        band(0.1, a.p10, {"lineWidth": 0, "hideFrom": hidden}),
        band(0.9, a.p90, {"lineWidth": 0, "hideFrom": hidden, "fillBelowTo": f"{name} p10",
                            "fillOpacity": BAND_OPACITY}),
        Field.number(ANOMALY_SCORE, a.score, dict(labels), {
            "displayNameFromDS": f"{name} anomaly score",
            "custom": {"axisPlacement": "right", "drawStyle": "bars", "fillOpacity": 60, "lineWidth": 0},
        }),
        Field.number(ANOMALY_FLAG, a.flag, dict(labels), {
            "displayNameFromDS": f"{name} anomaly",
            "custom": {"hideFrom": {"legend": True, "tooltip": False, "viz": True}},
        }),
    ]
    return Frame(f"{name} anomaly", fields, meta=meta.frame_meta())


def anomaly_summary_frame(series: Sequence[Series], labels: Sequence[dict[str, str]],
                          summaries: Sequence[tuple[float, float, float, int]],
                          meta: QueryMeta, custom: dict[str, Any]) -> Frame:
    """Per series (latest score, latest flag, max score, flagged points), one numeric-wide frame."""
    fields: list[Field] = []
    for s, lab, (latest, flag, top, count) in zip(series, labels, summaries, strict=True):
        # On dashboards the time-series frame has per-step anomaly_score/anomaly fields with the
        # same labels: the summary's carry `summary=latest` so every (name, labels) is unique.
        latest_labels = dict(lab) if meta.for_alert else {**lab, "summary": "latest"}
        fields.append(Field.number(ANOMALY_SCORE, np.array([latest]), latest_labels,
                                   {"displayNameFromDS": f"{s.name} latest anomaly score"}))
        if not meta.for_alert:
            fields += [
                Field.number(ANOMALY_FLAG, np.array([flag]), latest_labels,
                             {"displayNameFromDS": f"{s.name} anomalous now", "min": 0, "max": 1}),
                Field.number(MAX_ANOMALY_SCORE, np.array([top]), dict(lab),
                             {"displayNameFromDS": f"{s.name} max anomaly score"}),
                Field.number(ANOMALY_COUNT, np.array([float(count)]), dict(lab),
                             {"displayNameFromDS": f"{s.name} anomalous points"}),
            ]
    return Frame("anomaly summary", fields, meta=_numeric_meta(meta, custom))
