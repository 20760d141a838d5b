"""The query model: DataQuery.json → ForecastQuery (parse.py), and the time plan it implies (plan.py)."""

from .durations import Span, format_duration, parse_duration_ms
from .model import ForecastQuery, Plan
from .parse import parse_query
from .plan import choose_step_ms, nice_step, plan_query

__all__ = [
    "ForecastQuery", "Plan", "Span", "choose_step_ms", "format_duration", "nice_step",
    "parse_duration_ms", "parse_query", "plan_query",
]
