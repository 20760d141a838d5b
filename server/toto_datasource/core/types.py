"""Protobuf-free request and response values of the runtime capabilities (query data, check
health, call resource). `plugin/wire.py` converts protobuf to and from these at the edge."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import BackendError


@dataclass
class DataQueryInput:
    ref_id: str
    query_type: str
    json: bytes
    from_ms: int
    to_ms: int
    interval_ms: float = 0
    max_data_points: int = 0


@dataclass
class QueryResult:
    frames: list[Any] = field(default_factory=list)  # frames.model.Frame values
    error: BackendError | None = None


@dataclass
class HealthResult:
    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResourceResponse:
    status: int
    body: Any
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()
