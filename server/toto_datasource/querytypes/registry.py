"""The built-in query types. A new query type is one module and one line here."""

from ..core.registry import Registry
from .anomaly import AnomalyQueryType
from .backtest import BacktestQueryType
from .base import QueryType
from .forecast import ForecastQueryType
from .recorded import RecordedQueryType
from .threshold import ThresholdQueryType


def builtin_query_types() -> Registry[QueryType]:
    return Registry("query type", "queryType",
                    [ForecastQueryType(), ThresholdQueryType(), AnomalyQueryType(), BacktestQueryType(),
                     RecordedQueryType()])
