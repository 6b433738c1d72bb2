"""Chip integrity: each observation's chip checksum, and why an observation could not be scored.

Revision ID: 0300_chip_integrity
Revises: 0210_scene_stac_provenance
Create Date: 2026-12-05

``chip_sha256`` is the SHA-256 of the chip file as ingest wrote it (NULL for chips ingested
before this revision: ``sitewatch check`` then decodes them instead). ``problem`` says why the
monitor skipped the observation (a missing or corrupt chip, any failure of its evidence step);
NULL when it was scored. Batch mode, so SQLite can add the columns too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0300_chip_integrity"
down_revision = "0210_scene_stac_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("chip_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("problem", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("problem")
        batch.drop_column("chip_sha256")
