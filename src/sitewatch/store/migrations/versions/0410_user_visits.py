"""When each user last looked at the dashboard's morning queue, for "new since your last visit".

Revision ID: 0410_user_visits
Revises: 0310_alert_hypotheses
Create Date: 2026-12-05

One nullable time per user (aware UTC); users who never visited have none, so on their first
visit every untriaged alert counts as new. Written out by hand, like the earlier revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0410_user_visits"
down_revision = "0400_watch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_visit", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_visit")
