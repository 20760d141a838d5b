"""The `grafana` source: any Grafana data source's query through Grafana's `/api/ds/query`."""

from .client import OWN_PLUGIN_ID, GrafanaClient
from .frames import DecodedResult, GrafanaSeries, decode_result
from .provider import GrafanaProvider
from .settings import GrafanaSettings, parse_grafana_settings
from .source import GrafanaSource, GrafanaSpec, parse_grafana_spec

__all__ = [
    "OWN_PLUGIN_ID", "DecodedResult", "GrafanaClient", "GrafanaProvider", "GrafanaSeries", "GrafanaSettings",
    "GrafanaSource", "GrafanaSpec", "decode_result", "parse_grafana_settings", "parse_grafana_spec",
]
