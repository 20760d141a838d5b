"""The data source's capabilities (query data, check health, call resource), free of protobuf."""

from ..core.types import DataQueryInput, HealthResult, QueryResult, ResourceResponse
from .datasource import ForecastDataSource, parse_data_source_settings
from .resources import call_resource

__all__ = ["DataQueryInput", "ForecastDataSource", "HealthResult", "QueryResult", "ResourceResponse",
           "call_resource", "parse_data_source_settings"]
