"""Alembic migrations of the workspace database, run programmatically by :mod:`sitewatch.store.migrate`."""
