"""Alembic environment: runs on the connection :mod:`sitewatch.store.migrate` hands over.

No alembic.ini and no logging set-up: sitewatch configures both itself. Offline mode
(``alembic upgrade --sql``) renders the DDL for a dialect, which the tests use to check the
schema stays portable to PostgreSQL.
"""

from __future__ import annotations

from alembic import context

from sitewatch.store.schema import metadata

config = context.config


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables, and is a no-op elsewhere.
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
