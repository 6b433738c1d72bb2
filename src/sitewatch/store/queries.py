"""Read-only queries the web layer needs beyond the Workspace API: paged, filtered listings
that stay fast with millions of detections, and the store's revision for response caching.

Only SELECTs over the store's own tables (``sitewatch.store.schema``); writes stay in
``Workspace``. Rows become the same frozen domain types the rest of sitewatch uses.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sitewatch.core.types import ChangeRegion, Detection
from sitewatch.store import codec, schema
from sitewatch.store.users import workspace_engine

if TYPE_CHECKING:
    from sitewatch.store.workspace import Workspace

_detections = schema.detections
_regions = schema.change_regions
_observations = schema.observations


@dataclass(frozen=True, slots=True)
class Scope:
    """Which observations a listing covers: a site, one observation, a time range (all optional)."""

    site_id: str | None = None
    observation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, table: sa.Table, query: Any) -> Any:
        """``query`` over ``table`` joined to its observations and restricted to this scope."""
        query = query.join(_observations, _observations.c.id == table.c.observation_id)
        if self.observation_id is not None:
            query = query.where(table.c.observation_id == self.observation_id)
        if self.site_id is not None:
            query = query.where(_observations.c.site_id == self.site_id)
        if self.since is not None:
            query = query.where(_observations.c.acquired >= self.since)
        if self.until is not None:
            query = query.where(_observations.c.acquired <= self.until)
        return query


def detections_page(
    ws: Workspace,
    *,
    site_id: str | None = None,
    observation_id: str | None = None,
    class_name: str | None = None,
    min_score: float = 0.0,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    count: bool = True,
) -> tuple[list[Detection], int]:
    """One page of detections, oldest observation first, and the total (-1 when ``count`` is False)."""
    conditions = []
    if class_name is not None:
        conditions.append(_detections.c.class_name == class_name)
    if min_score > 0:
        conditions.append(_detections.c.score >= min_score)
    scope = Scope(site_id=site_id, observation_id=observation_id, since=since, until=until)
    rows_query = scope.apply(_detections, sa.select(_detections).select_from(_detections))
    rows_query = (
        rows_query.where(*conditions)
        .order_by(_observations.c.acquired, _detections.c.observation_id, _detections.c.position)
        .limit(limit)
        .offset(offset)
    )
    engine = workspace_engine(ws)
    with engine.connect() as connection:
        rows = connection.execute(rows_query).all()
        total = -1
        if count:
            count_query = scope.apply(_detections, sa.select(sa.func.count()).select_from(_detections))
            total = int(connection.execute(count_query.where(*conditions)).scalar_one())
    return [codec.detection_from(row._mapping) for row in rows], total


def change_regions_page(
    ws: Workspace,
    *,
    site_id: str | None = None,
    observation_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ChangeRegion], int]:
    """One page of change regions, oldest observation first, and the total matching."""
    scope = Scope(site_id=site_id, observation_id=observation_id, since=since, until=until)
    rows_query = (
        scope.apply(_regions, sa.select(_regions).select_from(_regions))
        .order_by(_observations.c.acquired, _regions.c.observation_id, _regions.c.position)
        .limit(limit)
        .offset(offset)
    )
    count_query = scope.apply(_regions, sa.select(sa.func.count()).select_from(_regions))
    with workspace_engine(ws).connect() as connection:
        rows = connection.execute(rows_query).all()
        total = int(connection.execute(count_query).scalar_one())
    return [codec.change_region_from(row._mapping) for row in rows], total


class StoreRevision:
    """A number that changes whenever anyone commits to the workspace database.

    For SQLite this is ``PRAGMA data_version`` on a connection of its own, which SQLite
    bumps on every commit made through any other connection, in any process. Other
    backends give None ("unknown"), and callers then must not cache.
    """

    def __init__(self, ws: Workspace) -> None:
        url = workspace_engine(ws).url
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._connection = sqlite3.connect(
                f"file:{url.database}?mode=ro", uri=True, check_same_thread=False
            )

    def current(self) -> int | None:
        if self._connection is None:
            return None
        with self._lock:
            return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
