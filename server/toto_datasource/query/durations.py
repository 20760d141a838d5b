"""Durations as users write them ("30s", "2h", "7d") and as messages show them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)\s*$")
DURATION_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d|w)\s*$"  # the schema's form of _DURATION
# Longer than every limit a caller checks (a step, a horizon, an anomaly window): a duration
# beyond it is clamped here, so "9999...9w" (float inf, int() overflowed into a 500)
# reaches the caller's range check and its 400 naming the field.
DURATION_CAP_MS = 10_000 * 366 * 86_400_000


def parse_duration_ms(text: str) -> int:
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text[:40]!r} is not a duration such as 30s, 15m, 2h, 7d")
    ms = float(m.group(1)) * _UNITS_MS[m.group(2)]
    return DURATION_CAP_MS if not ms <= DURATION_CAP_MS else int(ms)


def format_duration(ms: float) -> str:
    """Human form: 1d 10h, 15m, 30s."""
    ms = round(ms)
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
        if len(parts) == 2:
            break
    return " ".join(parts) or f"{ms}ms"


@dataclass(frozen=True)
class Span:
    """A length given either in steps or as a duration."""

    steps: int | None = None
    ms: int | None = None

    def to_steps(self, step_ms: int) -> int:
        return self.steps if self.steps is not None else math.ceil((self.ms or 0) / step_ms)


def span(value: Any) -> Span | None:
    """A schema-validated horizon-like value ("2h" or a step count) as a Span; None when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return Span(ms=parse_duration_ms(value))
    return Span(steps=int(value))


def span_schema(max_steps: int, description: str) -> dict[str, Any]:
    """JSON schema of a Span-valued field: a duration string or 1..max_steps steps."""
    return {
        "oneOf": [
            {"type": "string", "pattern": DURATION_PATTERN},
            {"type": "integer", "minimum": 1, "maximum": max_steps},
        ],
        "description": description,
    }
