"""Per-data-source instances, built once per settings version and disposed when stale.

Like the SDK's instancemgmt: Grafana sends the settings with every request; the instance for a
(uid, last-updated time, settings value) is built once and reused, so each configuration keeps
its HTTP connection pools. Saving the data source changes the key and the next request gets a
fresh instance. An instance pushed out may still be serving a request that took it a moment
earlier, so it is closed not on eviction but at a later lookup, once its sources' own timeouts
(which bound every call a source makes) plus a margin have passed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..core.registry import Registry
from ..core.settings import DataSourceSettings
from ..sources.base import HistorySource, SourceProvider

log = logging.getLogger(__name__)
MAX_INSTANCES = 32


class DataSourceInstance:
    """One data-source configuration: its settings and the sources opened for it (lazily)."""

    def __init__(self, settings: DataSourceSettings, sources: Registry[SourceProvider]) -> None:
        self.settings = settings
        self._providers = sources
        self._opened: dict[str, HistorySource] = {}
        self._lock = threading.Lock()

    def source(self, name: str) -> HistorySource:
        provider = self._providers.get(name)
        with self._lock:
            source = self._opened.get(name)
            if source is None:
                source = self._opened[name] = provider.open(self.settings)
            return source

    def close_grace_s(self) -> float:
        return max((self._providers.get(n).close_grace_s(self.settings) for n in self._opened), default=0.0)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = list(self._opened.values()), {}
        for source in opened:
            try:
                source.close()
            except Exception:
                log.exception("closing a source failed")


class InstanceManager:
    def __init__(
        self,
        sources: Registry[SourceProvider],
        max_instances: int = MAX_INSTANCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = sources
        self.max_instances = max_instances
        self.clock = clock
        self._instances: OrderedDict[DataSourceSettings, DataSourceInstance] = OrderedDict()
        self._retired: list[tuple[float, DataSourceInstance]] = []  # (close at, instance)
        self._lock = threading.Lock()

    def get(self, settings: DataSourceSettings) -> DataSourceInstance:
        now = self.clock()
        with self._lock:
            instance = self._instances.get(settings)
            if instance is None:
                instance = self._instances[settings] = DataSourceInstance(settings, self.sources)
                while len(self._instances) > self.max_instances:
                    _, old = self._instances.popitem(last=False)
                    self._retired.append((now + old.close_grace_s(), old))
            self._instances.move_to_end(settings)
            due = [old for at, old in self._retired if at <= now]
            self._retired = [(at, old) for at, old in self._retired if at > now]
        for old in due:
            old.close()
        return instance

    def close(self) -> None:
        with self._lock:
            every = [*self._instances.values(), *(old for _, old in self._retired)]
            self._instances.clear()
            self._retired = []
        for instance in every:
            instance.close()
