"""The built-in history sources. A new source is one module with a provider and one line here."""

from ..core.registry import Registry
from .base import SourceProvider
from .demo import DemoProvider
from .grafana import GrafanaProvider
from .inline import InlineProvider
from .prometheus import PrometheusProvider


def builtin_sources() -> Registry[SourceProvider]:
    return Registry(
        "source", "source", [DemoProvider(), InlineProvider(), PrometheusProvider(), GrafanaProvider()]
    )
