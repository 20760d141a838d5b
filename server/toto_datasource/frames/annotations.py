"""Annotation frames: the predicted breach window of each series, and where the forecast starts.

Grafana turns a frame with `time`, `timeEnd`, `text` and `tags` fields into annotations on every
panel of the dashboard (a region when timeEnd > time). Tags are one comma-separated string per
row, which Grafana's annotation mapping splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from .forecast import QueryMeta
from .model import Field, Frame, FrameMeta

TAGS = ("toto-forecast",)


@dataclass(frozen=True)
class Annotation:
    time_ms: int
    end_ms: int
    text: str
    tags: tuple[str, ...]


def clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M UTC")


def annotation_frame(annotations: list[Annotation], meta: QueryMeta) -> Frame:
    ordered = sorted(annotations, key=lambda a: a.time_ms)
    fields = [
        Field.time("time", np.array([a.time_ms for a in ordered], dtype=np.int64)),
        Field.time("timeEnd", np.array([a.end_ms for a in ordered], dtype=np.int64)),
        Field("text", pa.array([a.text for a in ordered], type=pa.string())),
        Field("tags", pa.array([",".join((*TAGS, *a.tags)) for a in ordered], type=pa.string())),
    ]
    meta = FrameMeta(type="", type_version=None, notices=list(meta.notices),
                     executed_query_string=meta.executed, custom=meta.custom or None)
    return Frame("annotations", fields, meta=meta)
