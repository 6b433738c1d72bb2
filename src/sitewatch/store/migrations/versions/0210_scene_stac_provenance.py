"""Scene provenance from STAC: sun angles, the item, its collection, self link and the asset read.

Revision ID: 0210_scene_stac_provenance
Revises: 0200_postgis
Create Date: 2026-12-05

All nullable: scenes ingested from files have none of them. Written out by hand, like 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0210_scene_stac_provenance"
down_revision = "0200_postgis"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("sun_elevation", sa.Float),
    ("sun_azimuth", sa.Float),
    ("stac_item", sa.Text),
    ("stac_collection", sa.Text),
    ("stac_href", sa.Text),
    ("stac_asset", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("scenes") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scenes") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
