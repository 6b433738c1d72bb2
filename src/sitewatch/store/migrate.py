"""Run the packaged Alembic migrations programmatically (users need no alembic.ini)."""

from __future__ import annotations

import contextlib
import io
import logging
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x5177_0A7C
"""PostgreSQL advisory lock held while migrating (any number, the same in every sitewatch)."""


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at ``sitewatch/store/migrations`` inside the installed package."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("sitewatch.store").joinpath("migrations")))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str:
    """The newest revision the packaged migrations know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("sitewatch ships no migrations; the installation is broken, reinstall sitewatch")
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> tuple[str | None, str]:
    """Migrate the database to the newest revision, in one transaction; a no-op at head.

    Returns (revision before, revision after).
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Processes opening one server database at once migrate it one after the other; the
            # second then finds it at head. (SQLite's write lock does the same for a file.)
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
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
    buffer = io.StringIO()
    config = alembic_config(url)
    config.output_buffer = buffer
    with contextlib.redirect_stdout(buffer):
        command.upgrade(config, "head", sql=True)
    return buffer.getvalue()
