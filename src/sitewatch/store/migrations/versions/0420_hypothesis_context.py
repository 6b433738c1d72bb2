"""An analyst's assessment can pick one of the alert's hypotheses.

Revision ID: 0420_hypothesis_context
Revises: 0310_alert_hypotheses
Create Date: 2026-12-05

``assessments.pick``: the pattern id (or ``none``) the analyst judges best; empty for no pick and
for every assessment written before it. Each analyst's pick is kept (disagreement stays visible) and
confirmed and benign resolutions feed the site's pattern priors with them (sitewatch.monitor.priors).
Written out by hand, like 0001, so later model edits never change what this migration did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0420_hypothesis_context"
down_revision = "0410_user_visits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.add_column(sa.Column("pick", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.drop_column("pick")
