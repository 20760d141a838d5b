"""The `prometheus` source's registry entry: its query keys, its settings part, its instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.settings import DataSourceSettings, RawSettings
from ..base import CLOSE_MARGIN_S, not_configured
from .settings import PrometheusSettings, parse_prometheus_settings
from .source import NO_URL, PrometheusSource, PrometheusSpec, require_expr


class PrometheusProvider:
    name = "prometheus"
    title = "Prometheus"
    description = "the configured Prometheus-compatible API"
    schema: Mapping[str, Any] = {
        "expr": {"type": "string", "maxLength": 65536,
                 "description": "PromQL expression (source=prometheus). Forecast counters through rate()."},
        "legendFormat": {"type": "string", "maxLength": 1024,
                         "description": "Series name template such as {{instance}} (source=prometheus)."},
    }

    def strip_for_schema(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def parse_query(self, obj: Mapping[str, Any]) -> PrometheusSpec:
        return PrometheusSpec(require_expr(str(obj.get("expr", ""))), str(obj.get("legendFormat", "")))

    def parse_settings(self, raw: RawSettings) -> PrometheusSettings | None:
        return parse_prometheus_settings(raw)

    def open(self, settings: DataSourceSettings) -> PrometheusSource:
        part = settings.part(self.name)
        if part is None:
            raise not_configured(self.name, f"a Prometheus URL; {NO_URL}")
        return PrometheusSource(part, settings.max_series)

    def close_grace_s(self, settings: DataSourceSettings) -> float:
        part = settings.part(self.name)
        return (part.timeout_s if part is not None else 0.0) + CLOSE_MARGIN_S
