"""PostGIS geometries with GiST indexes on PostgreSQL; one row per detection/region place on both.

Revision ID: 0200_postgis
Revises: 0110_credentials
Create Date: 2026-12-05

The same migration runs on both backends. On PostgreSQL it enables the PostGIS extension and
turns the WKB ``bytea`` columns into ``geometry`` columns (WGS 84 for sites, zones and scene
footprints; SRID 0 for detections and change regions, which are in each site's own grid CRS),
each with a GiST index. On SQLite geometries stay WKB blobs. On both, detections and change
regions get a unique (observation, position) index, so concurrent writers cannot double them.
Written out by hand, like 0001, so later model edits never change what this migration did.
"""

from __future__ import annotations

from alembic import op

revision = "0200_postgis"
down_revision = "0110_credentials"
branch_labels = None
depends_on = None

GEOMETRIES = (
    ("sites", "geometry_wkb", 4326),
    ("zones", "geometry_wkb", 4326),
    ("scenes", "footprint_wkb", 4326),
    ("detections", "geometry_wkb", 0),
    ("change_regions", "geometry_wkb", 0),
)
PLACES = ("detections", "change_regions")


def _postgresql() -> bool:
    return bool(op.get_context().dialect.name == "postgresql")


def upgrade() -> None:
    for table in PLACES:
        op.create_index(f"ix_{table}_observation_id_position", table, ["observation_id", "position"],
                        unique=True)
    if not _postgresql():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    for table, column, srid in GEOMETRIES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE geometry(GEOMETRY, {srid}) "
                   f"USING ST_SetSRID(ST_GeomFromWKB({column}), {srid})")
        op.create_index(f"ix_{table}_{column}_gist", table, [column], postgresql_using="gist")


def downgrade() -> None:
    if _postgresql():
        for table, column, _srid in GEOMETRIES:
            op.drop_index(f"ix_{table}_{column}_gist", table_name=table)
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea USING ST_AsBinary({column})")
    for table in PLACES:
        op.drop_index(f"ix_{table}_observation_id_position", table_name=table)
