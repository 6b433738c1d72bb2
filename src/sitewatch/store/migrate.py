"""Run the packaged Alembic migrations programmatically (users need no alembic.ini).

Opening a workspace checks its revision on every command. A database already at the newest
revision is recognised without Alembic (its import costs more than the rest of a short command
such as ``sitewatch alerts list``): the stamp is read with one query, and the newest revision from
the migration files' ``revision`` / ``down_revision`` lines (:func:`packaged_head`; a test checks
it agrees with Alembic). Anything else goes through Alembic.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import logging
from importlib import resources
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
VERSION_TABLE = "alembic_version"
"""Alembic's default table for the stamp (env.py keeps the default)."""

MIGRATION_LOCK_KEY = 0x5177_0A7C
"""PostgreSQL advisory lock held while migrating (any number, the same in every sitewatch)."""


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at ``sitewatch/store/migrations`` inside the installed package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("sitewatch.store").joinpath("migrations")))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


@functools.cache
def packaged_head() -> str | None:
    """The newest revision of the packaged migration files, read without Alembic: the one revision
    no other file names as its ``down_revision``; None when that is not one plain answer (a merge,
    branch labels, an unreadable file), where Alembic decides."""
    revisions: dict[str, object] = {}
    folder = resources.files("sitewatch.store").joinpath("migrations", "versions")
    for entry in folder.iterdir():
        if not entry.name.endswith(".py") or entry.name == "__init__.py":
            continue
        values = {}
        for node in ast.parse(entry.read_text(encoding="utf-8")).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in ("revision", "down_revision", "branch_labels", "depends_on")):
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    return None
        revision = values.get("revision")
        if not isinstance(revision, str) or values.get("branch_labels") or values.get("depends_on"):
            return None
        revisions[revision] = values.get("down_revision")
    parents = set(revisions.values())
    heads = [revision for revision in revisions if revision not in parents]
    if len(heads) != 1 or not all(p is None or isinstance(p, str) for p in parents):
        return None
    return heads[0]


def stamped_revision(connection: Connection) -> str | None:
    """The revision stamped in the database, read with one query; None when it has no stamp."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    stamps = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return stamps[0] if len(stamps) == 1 else None


def head_revision() -> str:
    """The newest revision the packaged migrations know."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("sitewatch ships no migrations; the installation is broken, reinstall sitewatch")
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> tuple[str | None, str]:
    """Migrate the database to the newest revision, in one transaction; a no-op at head.

    Returns (revision before, revision after).
    """
    with engine.begin() as connection:
        stamp = stamped_revision(connection)
        if stamp is not None and stamp == packaged_head():
            return stamp, stamp
        if connection.dialect.name == "postgresql":
            import sitewatch.store.postgis  # noqa: F401  (PostGIS columns reflect as geometries)

            # Processes opening one server database at once migrate it one after the other; the
            # second then finds it at head. (SQLite's write lock does the same for a file.)
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        from alembic import command

        before = current_revision(connection)
        head = head_revision()
        if before == head:
            return before, head
        config = alembic_config()
        config.attributes["connection"] = connection
        log.info("migrating workspace database from %s to %s", before or "empty", head)
        command.upgrade(config, "head")
        return before, current_revision(connection) or head


def render_upgrade_sql(url: str) -> str:
    """The DDL of every migration for the dialect of ``url``, without connecting (portability checks)."""
    from alembic import command

    buffer = io.StringIO()
    config = alembic_config(url)
    config.output_buffer = buffer
    with contextlib.redirect_stdout(buffer):
        command.upgrade(config, "head", sql=True)
    return buffer.getvalue()
