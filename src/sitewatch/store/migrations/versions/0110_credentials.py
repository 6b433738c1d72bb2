"""Credentials that can be cut off: disabled users, expiring API tokens, log-in failure counts.

Revision ID: 0110_credentials
Revises: 0100_users
Create Date: 2026-12-05

Tokens issued before this revision never expired; they are given the default lifetime
(90 days) from the upgrade, so upgrading does not lock anyone out at once.
Written out by hand, like the earlier revisions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from sitewatch.store.schema import UTCDateTime

revision = "0110_credentials"
down_revision = "0100_users"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
LEGACY_TOKEN_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    op.add_column("users", sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("api_tokens", sa.Column("expires", UTC_TIME, nullable=True))
    tokens = sa.table("api_tokens", sa.column("expires", UTCDateTime))
    op.execute(tokens.update().values(expires=datetime.now(UTC) + LEGACY_TOKEN_LIFETIME))
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("expires", existing_type=UTC_TIME, nullable=False)
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure", UTC_TIME, nullable=False),
        sa.Column("locked_until", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_login_failures"),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled")
