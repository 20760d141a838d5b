"""The built-in history sources. A new source is one module with a provider and one line here."""

from ..core.config import ProcessConfig
from ..core.registry import Registry
from .base import SourceProvider
from .demo import DemoProvider
from .grafana import GrafanaProvider
from .inline import InlineProvider
from .prometheus import PrometheusProvider


def builtin_sources(config: ProcessConfig | None = None) -> Registry[SourceProvider]:
    """Every built-in source; `config` gives them the process's facts (the grafana source: Grafana's
    edition, which decides who may read on an old open-source Grafana)."""
    config = config or ProcessConfig()
    return Registry(
        "source", "source",
        [DemoProvider(), InlineProvider(), PrometheusProvider(), GrafanaProvider(config.edition)],
    )
