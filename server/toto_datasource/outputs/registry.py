"""The built-in query types. A new query type is one module and one line here."""

from ..backend.registry import Registry
from .anomaly import AnomalyKind
from .base import QueryType
from .forecast import ForecastKind
from .threshold import ThresholdKind


def builtin_query_types() -> Registry[QueryType]:
    return Registry("query type", "queryType", [ForecastKind(), ThresholdKind(), AnomalyKind()])
