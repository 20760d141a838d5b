"""The `grafana` source's registry entry: its query keys, its settings part, its instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.errors import bad_request
from ...core.settings import DataSourceSettings, RawSettings
from ..base import CLOSE_MARGIN_S
from .client import OWN_PLUGIN_ID, TOKEN_HELP
from .settings import GrafanaSettings, parse_grafana_settings
from .source import GrafanaSource, GrafanaSpec, parse_grafana_spec


class GrafanaProvider:
    """`edition`: Grafana's (GF_EDITION), which decides who may read on an old open-source Grafana."""

    name = "grafana"
    title = "Grafana API"
    description = ("any Grafana data source's query (sourceDatasource + sourceQuery) through Grafana's "
                   "query API")
    schema: Mapping[str, Any] = {
        "sourceDatasource": {
            "type": "object",
            "required": ["uid", "type"],
            "additionalProperties": False,
            "properties": {
                "uid": {"type": "string", "minLength": 1},
                "type": {"type": "string", "minLength": 1},
            },
            "not": {"properties": {"type": {"const": OWN_PLUGIN_ID}}},
            "description": "The target data source (source=grafana), as Grafana references it. Not named "
                           "datasource: Grafana routes each query by its own datasource key. Never this "
                           "plugin's own type.",
        },
        "sourceQuery": {
            "type": "object",
            "description": "The target data source's own query (source=grafana), exactly as its query "
                           "editor builds it (expr, query, rawSql, target, format, ...); refId and "
                           "datasource are set by the backend when it calls /api/ds/query.",
        },
    }

    def __init__(self, edition: str = "") -> None:
        self.edition = edition

    def strip_for_schema(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def parse_query(self, obj: Mapping[str, Any]) -> GrafanaSpec:
        return parse_grafana_spec(obj)

    def parse_settings(self, raw: RawSettings) -> GrafanaSettings | None:
        return parse_grafana_settings(raw)

    def open(self, settings: DataSourceSettings) -> GrafanaSource:
        part = settings.part(self.name)
        if part is None:
            raise bad_request(f"source: grafana needs a Grafana service-account token: {TOKEN_HELP}")
        return GrafanaSource(part, settings.max_series, edition=self.edition)

    def close_grace_s(self, settings: DataSourceSettings) -> float:
        part = settings.part(self.name)
        return (part.timeout_s if part is not None else 0.0) + CLOSE_MARGIN_S
