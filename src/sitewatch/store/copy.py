"""Copy a workspace database between backends (SQLite <-> PostgreSQL/PostGIS), verified.

Every table of the schema is copied row by row through the same SQLAlchemy tables the store
uses, so each value is decoded and re-encoded by its column type (WKB <-> PostGIS geometry,
naive-UTC text <-> ``timestamptz``, JSON). The copy is one transaction on the destination, and
is committed only when each table has the same number of rows and the same checksum on both
sides; otherwise nothing is left behind.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sitewatch.core.errors import StoreError
from sitewatch.store import migrate
from sitewatch.store import schema as t
from sitewatch.store import users as _users  # noqa: F401  (its tables join the schema's metadata)
from sitewatch.store.workspace import create_engine, database_errors, shown_url

BATCH = 2000
"""Rows read and written per round trip."""


@dataclass(frozen=True, slots=True)
class TableSummary:
    """How many rows a table holds, and a checksum of their content that ignores row order."""

    table: str
    rows: int
    checksum: str
    """SHA-256 based, summed over rows (so storage order does not matter), hex."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What ``copy_database`` copied: each table's rows and checksum, equal on both sides."""

    source: str
    destination: str
    tables: tuple[TableSummary, ...]

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)


def copy_database(source_url: str, destination_url: str) -> CopyReport:
    """Copy every row of the workspace database at ``source_url`` into the empty one at
    ``destination_url`` (migrated first), and verify counts and checksums before committing."""
    if shown_url(source_url) == shown_url(destination_url):
        raise StoreError(f"source and destination are the same database ({shown_url(source_url)}); "
                         "give another destination")
    source, destination = create_engine(source_url), create_engine(destination_url)
    try:
        with database_errors(source_url, "migrating the source database"):
            migrate.upgrade_to_head(source)
        with database_errors(destination_url, "migrating the destination database"):
            migrate.upgrade_to_head(destination)
        with (database_errors(source_url, "reading the source"), source.connect() as reading,
              database_errors(destination_url, "copying into the destination"),
              destination.begin() as writing):
            _check_every_table_known(reading, source_url)
            occupied = [table.name for table in t.metadata.sorted_tables if _count(writing, table)]
            if occupied:
                raise StoreError(
                    f"the destination {shown_url(destination_url)} already holds rows "
                    f"(in {', '.join(occupied)}); "
                    "copy into an empty database, e.g. a new one made with `createdb`")
            for table in t.metadata.sorted_tables:
                for rows in _batches(reading, table):
                    writing.execute(table.insert(), rows)
            _restart_sequences(writing)
            expected, copied = summarise(reading), summarise(writing)
            if expected != copied:
                different = [a.table for a, b in zip(expected, copied, strict=True) if a != b]
                raise StoreError(
                    f"copy to {shown_url(destination_url)} does not match its source in "
                    f"{', '.join(different)}; "
                    "nothing was committed. Report this with both database versions")
    finally:
        source.dispose()
        destination.dispose()
    return CopyReport(shown_url(source_url), shown_url(destination_url), copied)


def _check_every_table_known(connection: Connection, url: str) -> None:
    """Refuse a source holding a table the store's metadata does not know: it would not be copied,
    and the checksums, taken over the known tables, could not tell."""
    known = {table.name for table in t.metadata.sorted_tables} | {migrate.VERSION_TABLE}
    unknown = sorted(set(sa.inspect(connection).get_table_names()) - known - _EXTENSION_TABLES)
    if unknown:
        raise StoreError(
            f"{shown_url(url)} holds tables this sitewatch does not know ({', '.join(unknown)}); "
            "nothing was copied. Copy it with the sitewatch version that made it")


_EXTENSION_TABLES = frozenset({"spatial_ref_sys"})
"""Tables PostGIS's extension creates in the public schema, not the store's."""


def summarise(connection: Connection) -> tuple[TableSummary, ...]:
    """Row count and checksum of every table of the schema, as read through the store's types."""
    summaries = []
    for table in t.metadata.sorted_tables:
        total, rows = 0, 0
        for batch in _batches(connection, table):
            for row in batch:
                digest = hashlib.sha256(_canonical(table, row).encode()).digest()
                total = (total + int.from_bytes(digest, "big")) % (1 << 256)
                rows += 1
        summaries.append(TableSummary(table.name, rows, f"{total:064x}"))
    return tuple(summaries)


def _count(connection: Connection, table: sa.Table) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _batches(connection: Connection, table: sa.Table) -> Iterator[list[dict[str, Any]]]:
    query = sa.select(table).order_by(*table.primary_key.columns)
    result = connection.execution_options(yield_per=BATCH).execute(query).mappings()
    for partition in result.partitions(BATCH):
        yield [dict(row) for row in partition]


def _canonical(table: sa.Table, row: dict[str, Any]) -> str:
    """One row as text that is the same whichever backend it was read from."""
    return json.dumps([_value(row[column.name]) for column in table.columns], separators=(",", ":"),
                      sort_keys=True)


def _value(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        # Geometries: the same shape gives the same WKB, whichever library wrote it.
        return shapely.to_wkb(shapely.from_wkb(bytes(value)), hex=True)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def _restart_sequences(connection: Connection) -> None:
    """PostgreSQL hands out serial ids from a sequence, which copied ids do not advance."""
    if connection.dialect.name != "postgresql":
        return
    for table in t.metadata.sorted_tables:
        key = list(table.primary_key.columns)
        if len(key) == 1 and isinstance(key[0].type, sa.Integer):  # SERIAL ids
            connection.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{key[0].name}'), "
                f"COALESCE((SELECT MAX({key[0].name}) FROM {table.name}), 0) + 1, false)"))
