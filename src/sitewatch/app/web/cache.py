"""A small cache of built JSON responses, emptied whenever the store's data changes.

The site timeline and the alert and site lists are read far more often than the store
changes, and building them means loading and validating every observation, indicator and
alert involved. Entries are tagged with the store's revision
(:class:`sitewatch.store.queries.StoreRevision`), which changes on every commit by any
process, so a cached answer is never stale. Each entry keeps a gzip copy too: a timeline
is mostly repeated keys and dates, and compresses about tenfold.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

_MIN_GZIP_BYTES = 1024


@dataclass(frozen=True, slots=True)
class CachedBody:
    """A JSON body, and its gzip encoding when it is worth compressing."""

    raw: bytes
    gzipped: bytes | None

    @classmethod
    def of(cls, value: Any) -> CachedBody:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return cls(raw, gzip.compress(raw, compresslevel=6) if len(raw) >= _MIN_GZIP_BYTES else None)

    def response(self, request: Request) -> Response:
        headers = {"Vary": "Accept-Encoding", "Cache-Control": "private, no-cache"}
        if self.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type="application/json", headers=headers)
        return Response(self.raw, media_type="application/json", headers=headers)


class ResponseCache:
    def __init__(self, revision: Callable[[], int | None], *, max_entries: int = 512) -> None:
        self._revision = revision
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[int, CachedBody]] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Any]) -> CachedBody:
        """The cached body for ``key`` if still current, else one made from ``build()`` (then cached)."""
        revision = self._revision()
        if revision is None:  # the backend cannot tell when it changes: never cache
            return CachedBody.of(build())
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == revision:
                self._entries.move_to_end(key)
                return entry[1]
        body = CachedBody.of(build())
        with self._lock:
            self._entries[key] = (revision, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return body

    def fresh(self, key: Hashable) -> CachedBody | None:
        """The cached body for ``key`` when it is still current, else None; never builds."""
        revision = self._revision()
        with self._lock:
            entry = self._entries.get(key)
            if revision is not None and entry is not None and entry[0] == revision:
                self._entries.move_to_end(key)
                return entry[1]
        return None

    async def respond(self, request: Request, build: Callable[[], Any]) -> Response:
        """The response to ``request`` (keyed by its path and query), built only when the store changed.

        A hit is answered on the event loop; a miss builds in the thread pool, since
        building queries the store.
        """
        key = (request.url.path, request.url.query, request.url.netloc)
        body = self.fresh(key)
        if body is None:
            body = await run_in_threadpool(self.get, key, build)
        return body.response(request)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
