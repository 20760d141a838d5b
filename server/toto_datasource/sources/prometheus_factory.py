"""One PrometheusSource (and its HTTP connection pool) per data-source configuration.

Keyed by the settings value itself: saving the data source changes lastUpdatedMS and the
settings, so the next request gets a fresh client and the old one is closed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..settings import DataSourceSettings

MAX_INSTANCES = 32


def prometheus_factory() -> Callable[[DataSourceSettings], Any] | None:
    try:
        from .prometheus import PrometheusSource
    except ImportError:  # the source module is optional while it is being built
        return None
    instances: OrderedDict[tuple[str, int, object, int], Any] = OrderedDict()
    lock = threading.Lock()

    def get(settings: DataSourceSettings) -> Any:
        key = (settings.uid, settings.updated_ms, settings.prometheus, settings.max_series)
        with lock:
            source = instances.get(key)
            if source is None:
                source = PrometheusSource(settings.prometheus, settings.max_series)  # type: ignore[arg-type]
                instances[key] = source
                while len(instances) > MAX_INSTANCES:
                    _, old = instances.popitem(last=False)
                    old.close()
            instances.move_to_end(key)
            return source

    return get
