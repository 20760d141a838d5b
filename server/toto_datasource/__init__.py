"""Toto Forecast: a Grafana backend data source that forecasts metrics with Toto 2.0."""

__version__ = "0.1.0"
