"""The `prometheus` source: history from a Prometheus-compatible HTTP API (`/api/v1/query_range`)."""

from ...core.settings import redact_url
from .placement import MAX_POINTS_PER_REQUEST, chunks, looks_like_counter, place_on_grid, series_name
from .provider import PrometheusProvider
from .settings import PrometheusSettings, parse_prometheus_settings
from .source import PrometheusSource, PrometheusSpec

__all__ = [
    "MAX_POINTS_PER_REQUEST", "PrometheusProvider", "PrometheusSettings",
    "PrometheusSource", "PrometheusSpec", "chunks", "looks_like_counter", "parse_prometheus_settings",
    "place_on_grid", "redact_url", "series_name",
]
