"""`sitewatch watch`: each source's cursor, the notification outbox and its mark.

Revision ID: 0400_watch
Revises: 0310_alert_hypotheses
Create Date: 2026-12-05

``watch_cursors`` keeps how far each configured source was read (written with the scenes it
stored, in one transaction); ``notification_outbox`` one row per alert event and route, unique,
marked sent once delivered; ``watch_marks`` the last alert event put in the outbox. Written out by
hand, like 0001, so later model edits never change what this migration did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0400_watch"
down_revision = "0310_alert_hypotheses"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watch_cursors",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("until", UTC_TIME, nullable=True),
        sa.Column("item_ids", sa.JSON, nullable=False),
        sa.Column("updated", UTC_TIME, nullable=False),
    )
    op.create_table(
        "watch_marks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(200), sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("created", UTC_TIME, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sent", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.UniqueConstraint("alert_id", "event_id", "route", name="uq_notification_outbox_delivery"),
    )
    op.create_index("ix_notification_outbox_alert_id", "notification_outbox", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_alert_id", table_name="notification_outbox")
    op.drop_table("notification_outbox")
    op.drop_table("watch_marks")
    op.drop_table("watch_cursors")
