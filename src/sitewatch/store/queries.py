"""The store's listings as SELECT statements: filtered and ordered in the database, paged there.

Statements only (SQLAlchemy Core over ``sitewatch.store.schema``, no engine and no connection):
the store runs them on its own connections, whole for its list methods and cut by ``limit`` and
``offset`` for its ``*_page`` methods, so one listing has one filter and one order whichever way
it is read. Standard SQL, so another SQLAlchemy backend runs the same statements.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from sitewatch.core.types import AlertState
from sitewatch.store import schema

_detections = schema.detections
_regions = schema.change_regions
_observations = schema.observations
_scenes = schema.scenes
_indicators = schema.indicator_values
_alerts = schema.alerts


@dataclass(frozen=True, slots=True)
class Listing:
    """The rows of a listing, in order, and the count of all of them."""

    rows: sa.Select[Any]
    count: sa.Select[Any]


def _between(column: sa.ColumnElement[Any], since: datetime | None, until: datetime | None) -> list[Any]:
    """``since <= column <= until``, each bound optional (inclusive, as the API documents)."""
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column <= until)
    return conditions


def _listing(table: sa.FromClause, conditions: list[Any], order: list[Any], *,
             joined: sa.FromClause | None = None) -> Listing:
    source = joined if joined is not None else table
    rows = sa.select(table).select_from(source).where(*conditions).order_by(*order)
    count = sa.select(sa.func.count()).select_from(source).where(*conditions)
    return Listing(rows, count)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which observations a listing of their outputs covers: a site, one observation, a time range."""

    site_id: str | None = None
    observation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self, table: sa.Table) -> list[Any]:
        """Conditions on ``table`` joined to its observations."""
        conditions: list[Any] = []
        if self.observation_id is not None:
            conditions.append(table.c.observation_id == self.observation_id)
        if self.site_id is not None:
            conditions.append(_observations.c.site_id == self.site_id)
        return conditions + _between(_observations.c.acquired, self.since, self.until)

    def joined(self, table: sa.Table) -> sa.FromClause:
        return table.join(_observations, _observations.c.id == table.c.observation_id)


def detections(scope: Scope, *, class_name: str | None = None, min_score: float = 0.0) -> Listing:
    """Detections, oldest observation first, in the order the detector gave them."""
    conditions = scope.conditions(_detections)
    if class_name is not None:
        conditions.append(_detections.c.class_name == class_name)
    if min_score > 0:
        conditions.append(_detections.c.score >= min_score)
    return _listing(_detections, conditions,
                    [_observations.c.acquired, _detections.c.observation_id, _detections.c.position],
                    joined=scope.joined(_detections))


def change_regions(scope: Scope) -> Listing:
    """Change regions, oldest observation first."""
    return _listing(_regions, scope.conditions(_regions),
                    [_observations.c.acquired, _regions.c.observation_id, _regions.c.position],
                    joined=scope.joined(_regions))


def scenes(*, site_id: str | None = None, since: datetime | None = None,
           until: datetime | None = None) -> Listing:
    """Scenes by acquisition time; with ``site_id``, only those with an observation of that site."""
    conditions = _between(_scenes.c.acquired, since, until)
    if site_id is not None:
        conditions.append(_scenes.c.id.in_(
            sa.select(_observations.c.scene_id).where(_observations.c.site_id == site_id)))
    return _listing(_scenes, conditions, [_scenes.c.acquired, _scenes.c.id])


def observations(*, site_id: str | None = None, since: datetime | None = None,
                 until: datetime | None = None) -> Listing:
    """Observations by acquisition time."""
    conditions = _between(_observations.c.acquired, since, until)
    if site_id is not None:
        conditions.append(_observations.c.site_id == site_id)
    return _listing(_observations, conditions, [_observations.c.acquired, _observations.c.id])


def indicators(site_id: str, *, zone_id: str | None = None, name: str | None = None,
               since: datetime | None = None, until: datetime | None = None) -> Listing:
    """Indicator values of a site by acquisition time, then observation, zone and name."""
    conditions = [_indicators.c.site_id == site_id, *_between(_indicators.c.acquired, since, until)]
    if zone_id is not None:
        conditions.append(_indicators.c.zone_id == zone_id)
    if name is not None:
        conditions.append(_indicators.c.name == name)
    return _listing(_indicators, conditions, [_indicators.c.acquired, _indicators.c.observation_id,
                                              _indicators.c.zone_id, _indicators.c.name])


def alerts(*, site_id: str | None = None, state: AlertState | None = None, since: datetime | None = None,
           until: datetime | None = None) -> Listing:
    """Alerts, newest observation first (then newest raised)."""
    conditions = _between(_alerts.c.acquired, since, until)
    if site_id is not None:
        conditions.append(_alerts.c.site_id == site_id)
    if state is not None:
        conditions.append(_alerts.c.state == AlertState(state).value)
    return _listing(_alerts, conditions, [_alerts.c.acquired.desc(), _alerts.c.created.desc(), _alerts.c.id])


_SNAPSHOT = sa.text("SELECT pg_current_snapshot()::text")
"""The server's transaction snapshot, ``xmin:xmax:in-progress ids``: a transaction that writes gets an
id (xmax moves) and its commit or rollback takes the id out of the in-progress list, so the text
changes on every commit of a write and never on a read."""


class StoreRevision:
    """A number that changes whenever anyone commits to the database at ``url``.

    For SQLite this is ``PRAGMA data_version`` on a connection of its own, which SQLite bumps on
    every commit made through any other connection, in any process. For PostgreSQL it is a digest
    of the server's current transaction snapshot (:data:`_SNAPSHOT`), read on a connection of its
    own: it changes on every commit of a writing transaction, and not on reads. It also changes for
    writes sitewatch never reads (other databases of the server, ANALYZE), which only costs a cache
    miss, never a stale answer. A backend that cannot say (the connection lost) gives None
    ("unknown"), and callers must not cache then.
    """

    def __init__(self, url: URL) -> None:
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._engine: sa.Engine | None = None
        self._server: sa.Connection | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._connection = sqlite3.connect(
                f"file:{url.database}?mode=ro", uri=True, check_same_thread=False
            )
        elif url.get_backend_name() == "postgresql":
            self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")

    def current(self) -> int | None:
        with self._lock:
            if self._connection is not None:
                return int(self._connection.execute("PRAGMA data_version").fetchone()[0])
            if self._engine is None:
                return None
            try:
                if self._server is None:
                    self._server = self._engine.connect()
                snapshot = str(self._server.execute(_SNAPSHOT).scalar_one())
                return int.from_bytes(hashlib.blake2b(snapshot.encode(), digest_size=8).digest(), "big")
            except sa.exc.SQLAlchemyError:
                self._drop_server()
                return None

    def _drop_server(self) -> None:
        if self._server is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._server.close()
            self._server = None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            self._drop_server()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
