"""How each series of an answer appears on a time-series panel: a name no other series shares and
one colour for all its fields.

Names: Grafana finds a band's lower edge by display name (`custom.fillBelowTo`) among every field
of the panel, so two series called `http_requests` would shade from one series' p90 down to the
other's p10. Colliding names get the labels that tell them apart, the way Grafana's Prometheus
legend writes a series: `http_requests{instance="web-1"}`.

Units: a series' unit (`Series.unit`), when its source knows one, goes on every field drawn for it.

Colours: a panel colours each field by its position (classic palette), which gave a series' history,
median and band three different colours. A fixed colour per series, taken from the same classic
palette in the same order, keeps them together and matches what the panel gives the same series
from the metric's own data source when that query comes first (a panel override still wins).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..core.series import Series

# The first named colours of Grafana's classic palette (theme.visualization.palette), in its order;
# named colours resolve per theme (dark and light).
CLASSIC_PALETTE = (
    "green", "semi-dark-yellow", "blue", "orange", "red", "purple",
    "dark-green", "dark-yellow", "dark-blue", "dark-orange", "dark-red", "dark-purple",
)


def series_color(index: int) -> dict[str, Any]:
    """The field config `color` of the answer's index-th series."""
    return {"mode": "fixed", "fixedColor": CLASSIC_PALETTE[index % len(CLASSIC_PALETTE)]}


def field_config(series: Series, display: str, color: dict[str, Any]) -> dict[str, Any]:
    """The config every drawn field of a series starts from: its display name, its colour and, when
    the source knows it, its unit (without it a panel that shows the source's own query beside the
    forecast puts the two on separate y axes)."""
    config: dict[str, Any] = {"displayNameFromDS": display, "color": color}
    if series.unit:
        config["unit"] = series.unit
    return config


def _label_suffix(labels: dict[str, str], keys: list[str]) -> str:
    return "{" + ", ".join(f'{k}="{labels.get(k, "")}"' for k in keys) + "}"


def distinct_names(series: Sequence[Series]) -> list[Series]:
    """The series, renamed where names collide: the name plus the labels whose values differ within
    its group; series that not even their labels tell apart are numbered (`name #2`)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(series):
        groups[s.name].append(i)
    names = [s.name for s in series]
    for name, members in groups.items():
        if len(members) < 2:
            continue
        keys = sorted({k for i in members for k in series[i].labels} - {"__name__"})
        differing = [k for k in keys if len({series[i].labels.get(k) for i in members}) > 1]
        for i in members:
            if differing:
                names[i] = f"{name}{_label_suffix(series[i].labels, differing)}"
    seen: Counter[str] = Counter()
    counts = Counter(names)
    for i, name in enumerate(names):
        if counts[name] > 1:
            seen[name] += 1
            names[i] = f"{name} #{seen[name]}"
    return [s if s.name == n else replace(s, name=n) for s, n in zip(series, names, strict=True)]
