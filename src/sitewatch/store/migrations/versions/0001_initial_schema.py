"""Initial workspace schema: sites, zones, scenes, observations, analytics outputs, alerts.

Revision ID: 0001_initial
Revises:
Create Date: 2024-01-01

Written out by hand rather than imported from ``schema.py`` so that later edits of the
models never change what an old migration did; a test checks the result matches the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def _bbox() -> list[sa.Column[float]]:
    return [sa.Column(name, sa.Float, nullable=False) for name in ("min_x", "min_y", "max_x", "max_y")]


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("country", sa.String(100), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("aliases", sa.JSON, nullable=False),
        sa.Column("gsd", sa.Float, nullable=False),
        sa.Column("approximate", sa.Boolean, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("references", sa.JSON, nullable=False),
        sa.Column("geometry_wkb", sa.LargeBinary, nullable=False),
        *_bbox(),
        sa.Column("updated", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sites"),
    )
    op.create_table(
        "zones",
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("geometry_wkb", sa.LargeBinary, nullable=False),
        *_bbox(),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_zones_site_id_sites", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "id", name="pk_zones"),
    )
    op.create_table(
        "scenes",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("sensor", sa.String(200), nullable=False),
        sa.Column("acquired", UTC_TIME, nullable=False),
        sa.Column("gsd", sa.Float, nullable=False),
        sa.Column("crs", sa.Text, nullable=False),
        sa.Column("footprint_wkb", sa.LargeBinary, nullable=False),
        *_bbox(),
        sa.Column("bands", sa.JSON, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("cloud_cover", sa.Float, nullable=True),
        sa.Column("off_nadir", sa.Float, nullable=True),
        sa.Column("license", sa.Text, nullable=True),
        sa.Column("attribution", sa.Text, nullable=True),
        sa.Column("ingested", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scenes"),
    )
    op.create_index("ix_scenes_acquired", "scenes", ["acquired"])
    op.create_index("ix_scenes_checksum", "scenes", ["checksum"])
    op.create_table(
        "observations",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("scene_id", sa.String(200), nullable=False),
        sa.Column("acquired", UTC_TIME, nullable=False),
        sa.Column("chip_path", sa.Text, nullable=False),
        sa.Column("valid_fraction", sa.Float, nullable=False),
        sa.Column("shift_rows", sa.Float, nullable=False),
        sa.Column("shift_cols", sa.Float, nullable=False),
        sa.Column("shift_confidence", sa.Float, nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_observations_site_id_sites"),
        sa.ForeignKeyConstraint(["scene_id"], ["scenes.id"], name="fk_observations_scene_id_scenes",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_observations"),
        sa.UniqueConstraint("chip_path", name="uq_observations_chip_path"),
    )
    op.create_index("ix_observations_scene_id", "observations", ["scene_id"])
    op.create_index("ix_observations_site_acquired", "observations", ["site_id", "acquired"])
    op.create_table(
        "detections",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("observation_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("class_name", sa.String(100), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("geometry_wkb", sa.LargeBinary, nullable=False),
        *_bbox(),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("detector", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["observation_id"], ["observations.id"],
                                name="fk_detections_observation_id_observations", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_detections"),
    )
    op.create_index("ix_detections_observation_id", "detections", ["observation_id"])
    op.create_table(
        "change_regions",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("observation_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("reference_observation_id", sa.String(200), nullable=False),
        sa.Column("geometry_wkb", sa.LargeBinary, nullable=False),
        *_bbox(),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column("mean_probability", sa.Float, nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("detector", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["observation_id"], ["observations.id"],
                                name="fk_change_regions_observation_id_observations", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_change_regions"),
    )
    op.create_index("ix_change_regions_observation_id", "change_regions", ["observation_id"])
    op.create_table(
        "indicator_values",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("observation_id", sa.String(200), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("acquired", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["observation_id"], ["observations.id"],
                                name="fk_indicator_values_observation_id_observations", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_indicator_values"),
        sa.UniqueConstraint("observation_id", "zone_id", "name",
                            name="uq_indicator_values_observation_id_zone_id_name"),
    )
    op.create_index("ix_indicator_values_observation_id", "indicator_values", ["observation_id"])
    op.create_index("ix_indicator_values_site_zone_name", "indicator_values", ["site_id", "zone_id", "name"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("observation_id", sa.String(200), nullable=False),
        sa.Column("acquired", UTC_TIME, nullable=False),
        sa.Column("created", UTC_TIME, nullable=False),
        sa.Column("indicator", sa.String(100), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("baseline", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=True),
        sa.Column("p_value", sa.Float, nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_alerts_site_id_sites"),
        sa.ForeignKeyConstraint(["observation_id"], ["observations.id"],
                                name="fk_alerts_observation_id_observations"),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_site_id", "alerts", ["site_id"])
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(200), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_alert_events_alert_id_alerts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(200), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created", UTC_TIME, nullable=False),
        sa.Column("judgement", sa.String(32), nullable=False),
        sa.Column("confidence", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("hypotheses", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_assessments_alert_id_alerts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_assessments"),
    )
    op.create_index("ix_assessments_alert_id", "assessments", ["alert_id"])


def downgrade() -> None:
    for table in ("assessments", "alert_events", "alerts", "indicator_values", "change_regions",
                  "detections", "observations", "scenes", "zones", "sites"):
        op.drop_table(table)
