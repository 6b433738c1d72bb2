"""A small cache of built responses, emptied whenever the store's data changes.

The site timeline is read far more often than the store changes; rebuilding it means
loading every observation, indicator and alert of the site. Entries are tagged with the
store's revision (see :class:`sitewatch.store.queries.StoreRevision`), which changes on
every commit by any process, so a cached answer is never stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


class ResponseCache:
    def __init__(self, revision: Callable[[], int | None], *, max_entries: int = 256) -> None:
        self._revision = revision
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """The cached bytes for ``key`` if still current, else ``build()`` (then cached)."""
        revision = self._revision()
        if revision is None:  # the backend cannot tell when it changes: never cache
            return build()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == revision:
                self._entries.move_to_end(key)
                return entry[1]
        value = build()
        with self._lock:
            self._entries[key] = (revision, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
