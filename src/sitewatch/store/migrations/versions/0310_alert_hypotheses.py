"""The ranked hypotheses of each alert (activity patterns scored against the site's routine).

Revision ID: 0310_alert_hypotheses
Revises: 0300_chip_integrity
Create Date: 2026-12-05

A JSON list per alert, most probable first: pattern id, label, benign, likelihood ratio,
probability (see ``sitewatch.monitor.hypotheses``). Alerts raised before it have none ("[]").
Written out by hand, like 0001, so later model edits never change what this migration did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0310_alert_hypotheses"
down_revision = "0300_chip_integrity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("hypotheses", sa.JSON, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("hypotheses")
