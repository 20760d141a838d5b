"""Recorded forecasts → the one numeric-wide frame a recording rule writes and an alert rule reads.

Grafana's recording-rule writer (ngalert `writer.PointsFromFrames`) reads the response with
dataplane's numeric reader; for a numeric-wide frame that is the first frame only, every number
field one metric with exactly one value. Each becomes one sample: the field's labels minus
`__name__`, plus the rule's own labels, named after the rule's `record.metric` and stamped with
the evaluation time. Field names are dropped, so the label set alone must tell the written series
apart: two samples with one label set and timestamp are a "duplicate sample" to the remote-write
endpoint, an error the writer ignores, and one forecast is silently lost. Every value carries:

- `ml_forecast`: `yhat` (the median), `yhat_lower`, `yhat_upper` (the band's edges): the labels
  of Grafana Cloud ML's `<metric>:predicted` series, so PromQL written for those works unchanged,
  and no clash with the `quantile` label Prometheus summaries already carry;
- `ml_lead_time`: the lead time as a Prometheus duration (`15m`, `1h`, `1h30m`), so the lead times
  of one query, or of several rules recording into one metric, never collide;
- the source series' own labels without `__name__`; a source label named like one of ours keeps
  its value as `exported_<name>` (Prometheus' rule for clashing labels), and series whose labels
  still coincide get `series`=<name> (frames/alerting.py `unique_labels`).

A null value makes the writer refuse the whole evaluation, so a value the model could not
forecast (non-finite) is left out and named in a warning notice. When nothing is left the answer
is the data plane's "no data" (the typed frame without fields): the rule writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.quantiles import quantile_name
from ..core.series import Series
from .alerting import unique_labels
from .forecast import QueryMeta
from .model import DATAPLANE_VERSION, NUMERIC_WIDE, Field, Frame, Notice

ML_FORECAST = "ml_forecast"
ML_LEAD_TIME = "ml_lead_time"
VALUE_NAME = "predicted"  # the one metric: what the rule's `<metric>:predicted` series hold
_OWN_LABELS = (ML_FORECAST, ML_LEAD_TIME)
_PROMETHEUS_UNITS_MS = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000),
                        ("s", 1000), ("ms", 1))


@dataclass(frozen=True)
class RecordedValues:
    """What one query recorded: `values[i, j, k]` is series i at lead time j for forecast k."""

    values: np.ndarray  # (series, lead times, forecasts)
    lead_ms: tuple[int, ...]
    forecasts: tuple[tuple[str, float], ...]  # (ml_forecast value, quantile), yhat first
    at_ms: int  # the evaluation time t: each value is the forecast for t + its lead time


def lead_label(ms: int) -> str:
    """A lead time as Prometheus writes durations: largest units first, no spaces (1h30m, 1w2d)."""
    parts = []
    for unit, size in _PROMETHEUS_UNITS_MS:
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts) or "0s"


def recorded_labels(series: Sequence[Series]) -> list[dict[str, str]]:
    """Each series' labels as the writer will keep them, renamed where they clash with ours and
    made unique across the series."""
    kept = []
    for s in series:
        labels = {k: v for k, v in s.labels.items() if k != "__name__"}
        for key in _OWN_LABELS:
            if key in labels:
                labels[f"exported_{key}"] = labels.pop(key)
        kept.append(Series(s.name, labels, s.values))
    return unique_labels(kept)


def recorded_frame(series: Sequence[Series], recorded: RecordedValues, meta: QueryMeta) -> Frame:
    fields: list[Field] = []
    missing: list[str] = []
    leads = [lead_label(ms) for ms in recorded.lead_ms]
    for i, (s, labels) in enumerate(zip(series, recorded_labels(series), strict=True)):
        for j, lead in enumerate(leads):
            for k, (kind, q) in enumerate(recorded.forecasts):
                value = float(recorded.values[i, j, k])
                if not np.isfinite(value):
                    missing.append(f"{s.name} {kind} +{lead}")
                    continue
                fields.append(Field.number(VALUE_NAME, np.array([value]),
                                           {**labels, ML_FORECAST: kind, ML_LEAD_TIME: lead}, {
                    "displayNameFromDS": f"{s.name} {kind} +{lead}",
                    "description": f"{quantile_name(q)} forecast for {lead} after the evaluation time",
                }))
    custom: dict[str, Any] = {
        **meta.custom,
        "evaluatedAtMs": recorded.at_ms,
        "leadTimes": leads,
        "forecasts": {kind: q for kind, q in recorded.forecasts},
    }
    frame_meta = replace(meta.frame_meta(), type=NUMERIC_WIDE, type_version=DATAPLANE_VERSION, custom=custom)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        frame_meta.notices.append(Notice("warning", f"{len(missing)} values were not recorded: the model "
                                                    f"gave no finite forecast for {shown}"))
    return Frame("recorded forecast", fields, meta=frame_meta)
