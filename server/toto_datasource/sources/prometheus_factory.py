"""One PrometheusSource (and its HTTP connection pool) per data-source configuration.

Keyed by the settings value itself: saving the data source changes lastUpdatedMS and the
settings, so the next request gets a fresh client. A source pushed out of the cache may still be
serving a request that took it a moment earlier, so it is not closed on eviction but at a later
lookup, once its own timeout (which bounds every call a source makes) plus a margin has passed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..errors import bad_request
from ..settings import DataSourceSettings
from .prometheus import PrometheusSource

MAX_INSTANCES = 32
CLOSE_MARGIN_S = 30.0  # beyond the source's timeout: time to turn its last answer into frames


def prometheus_factory(
    max_instances: int = MAX_INSTANCES, clock: Callable[[], float] = time.monotonic
) -> Callable[[DataSourceSettings], PrometheusSource]:
    instances: OrderedDict[tuple[object, ...], PrometheusSource] = OrderedDict()
    retired: list[tuple[float, PrometheusSource]] = []  # (close at, source), evicted but maybe in use
    lock = threading.Lock()

    def get(settings: DataSourceSettings) -> PrometheusSource:
        if settings.prometheus is None:
            raise bad_request("no Prometheus URL is configured for this data source")
        key = (settings.uid, settings.updated_ms, settings.prometheus, settings.max_series)
        now = clock()
        with lock:
            source = instances.get(key)
            if source is None:
                source = instances[key] = PrometheusSource(settings.prometheus, settings.max_series)
                while len(instances) > max_instances:
                    _, old = instances.popitem(last=False)
                    retired.append((now + old.settings.timeout_s + CLOSE_MARGIN_S, old))
            instances.move_to_end(key)
            due = [old for at, old in retired if at <= now]
            retired[:] = [(at, old) for at, old in retired if at > now]
        for old in due:
            old.close()
        return source

    return get
