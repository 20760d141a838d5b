"""Grafana data frames as plain values (the SDK's `data` package, in Python).

A Frame is a name, a refId, optional meta and a list of Fields; a Field is a named Arrow array
with optional labels and field config. Encoding to Arrow IPC happens at the edge (`arrow.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

_NANOSECONDS = pa.timestamp("ns")
Severity = Literal["info", "warning", "error", ""]  # "" = absent, which Grafana reads as info

# Frame types of the Grafana data plane (grafana/dataplane contract).
TIMESERIES_MULTI = "timeseries-multi"
NUMERIC_WIDE = "numeric-wide"
DATAPLANE_VERSION = (0, 1)


@dataclass
class Notice:
    severity: Severity
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "text": self.text} if self.severity else {"text": self.text}


@dataclass
class FrameMeta:
    """The subset of the SDK's FrameMeta we write; unknown keys read from a frame are kept in
    `extra` so decode → encode loses nothing."""

    type: str = ""
    type_version: tuple[int, int] | None = (0, 0)  # None: absent (frames from older SDKs)
    notices: list[Notice] = field(default_factory=list)
    executed_query_string: str = ""
    custom: Any = None
    preferred_visualisation_type: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.type:
            out["type"] = self.type
        if self.type_version is not None:
            out["typeVersion"] = list(self.type_version)
        if self.custom is not None:
            out["custom"] = self.custom
        if self.notices:
            out["notices"] = [n.to_json() for n in self.notices]
        if self.preferred_visualisation_type:
            out["preferredVisualisationType"] = self.preferred_visualisation_type
        if self.executed_query_string:
            out["executedQueryString"] = self.executed_query_string
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FrameMeta:
        obj = dict(obj)
        version = obj.pop("typeVersion", None)
        return cls(
            type=obj.pop("type", ""),
            type_version=(int(version[0]), int(version[1])) if version else None,
            notices=[
                Notice(n.get("severity", ""), n.get("text", "")) for n in obj.pop("notices", None) or []
            ],
            executed_query_string=obj.pop("executedQueryString", ""),
            custom=obj.pop("custom", None),
            preferred_visualisation_type=obj.pop("preferredVisualisationType", ""),
            extra=obj,
        )


@dataclass
class Field:
    """One column. `values` is any Arrow array Grafana's reader accepts (no large_string,
    no dictionary); `nullable` is the Arrow field flag, which Grafana's reader honours."""

    name: str
    values: pa.Array
    nullable: bool = False
    labels: dict[str, str] | None = None
    config: dict[str, Any] | None = None
    tstype: str = ""  # the SDK's tstype metadata; derived from the Arrow type when empty

    @classmethod
    def time(cls, name: str, epoch_ms: np.ndarray) -> Field:
        """A non-nullable timestamp[ns] index (Grafana assumes ns whatever the schema says)."""
        ns = np.asarray(epoch_ms, dtype=np.int64) * 1_000_000
        # the int64 buffer as it is: 4 us where pa.array(ns, type=timestamp) converts in 17-20 us
        values = pa.Array.from_buffers(_NANOSECONDS, ns.size, [None, pa.py_buffer(ns)])
        return cls(name, values, nullable=False, tstype="time")

    @classmethod
    def number(
        cls,
        name: str,
        values: np.ndarray,
        labels: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> Field:
        """A float64 field; NaN becomes null (a gap in Grafana, explicit for alert reducers)."""
        arr = np.asarray(values, dtype=np.float64)
        missing = ~np.isfinite(arr)
        if missing.any():
            return cls(name, pa.array(arr, mask=missing, type=pa.float64()), True, labels, config, "number")
        return cls(name, pa.array(arr, type=pa.float64()), False, labels, config, "number")

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class Frame:
    name: str
    fields: list[Field]
    ref_id: str = ""
    meta: FrameMeta | None = None

    @property
    def rows(self) -> int:
        return len(self.fields[0]) if self.fields else 0
