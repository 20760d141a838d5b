"""A named registry: the one shape behind sources, query types and model runtimes.

Each stage of the product that grows (where history comes from, what a query computes, where
the model runs) is a `Registry` of small objects with a `name`. A data source is built from
registries, so a test or an extension adds an entry without editing the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from .errors import bad_request


class Named(Protocol):
    @property
    def name(self) -> str: ...


class Registry[T: Named]:
    def __init__(self, kind: str, field: str, entries: Iterable[T] = ()) -> None:
        self.kind = kind  # "source", "query type", "model runtime": used in messages
        self.field = field  # the query/settings key that names an entry, for messages
        self._entries: dict[str, T] = {}
        for entry in entries:
            self.register(entry)

    def register(self, entry: T) -> T:
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def with_entries(self, *entries: T) -> Registry[T]:
        """A copy with more entries (the built-ins stay untouched)."""
        return Registry(self.kind, self.field, [*self._entries.values(), *entries])

    def get(self, name: str) -> T:
        entry = self._entries.get(name)
        if entry is None:
            raise bad_request(
                f"{self.field}: {name!r} is not a {self.kind} of this plugin; available: {', '.join(self)}"
            )
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def values(self) -> list[T]:
        return list(self._entries.values())
