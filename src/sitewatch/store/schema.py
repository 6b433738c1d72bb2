"""The workspace database schema (SQLAlchemy Core), portable across SQLite and PostgreSQL.

Portability rules: no dialect-specific SQL in callers; geometries travel as WKB bytes with
bounding-box columns (plain SQL filters by bbox on every backend). On SQLite a geometry is a
BLOB; on PostgreSQL it is a PostGIS ``geometry`` (GeoAlchemy2) with a GiST index, written with
``ST_GeomFromWKB`` and read with ``ST_AsBinary``, so callers see the same bytes on both.
Timestamps are stored as UTC; enums as strings. The migrations in ``store/migrations/versions``
create exactly these tables on both backends; a test compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

ID = 64
"""Length of id columns: site/zone ids are at most 64 characters."""
LONG_ID = 200
"""Scene, observation and alert ids are derived strings; room for prefixes."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware-UTC datetimes in, aware-UTC datetimes out, on every backend.

    SQLite has no time zone type: values are stored as naive UTC text there, and
    read back with ``tzinfo=UTC``; PostgreSQL stores ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store naive datetime {value.isoformat()}; give aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


WGS84 = 4326
"""SRID of sites, zones and scene footprints (longitude/latitude)."""
SITE_GRID = 0
"""SRID of detections and change regions: metres in each site's own grid CRS, which differs by site,
so PostGIS keeps them as 'unknown' (0) and the observation says which CRS."""


class PostGISWKB(TypeDecorator[bytes]):
    """A PostGIS geometry column that takes and gives plain WKB bytes, as the SQLite BLOB does.

    Its PostgreSQL type is :class:`sitewatch.store.postgis.PostGISGeometry` (GeoAlchemy2: the DDL,
    reflection and the binding), imported only when a statement is compiled for PostgreSQL:
    GeoAlchemy2 loads every SQLAlchemy dialect, a tenth of a second that ``sitewatch alerts list``
    on a SQLite workspace does not need (issue 18).
    """

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, srid: int) -> None:
        super().__init__()
        self.srid = srid

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        from sitewatch.store.postgis import PostGISGeometry

        return dialect.type_descriptor(PostGISGeometry(geometry_type="GEOMETRY", srid=self.srid,
                                                       spatial_index=False))


def geometry_type(srid: int) -> TypeEngine[bytes]:
    """WKB in a BLOB on SQLite, a PostGIS geometry with ``srid`` on PostgreSQL."""
    return sa.LargeBinary().with_variant(PostGISWKB(srid), "postgresql")


def spatial_index(table: str, column: str = "geometry_wkb") -> sa.Index:
    """A GiST index on a geometry column, created on PostgreSQL only (SQLite filters by bbox columns)."""
    return sa.Index(f"ix_{table}_{column}_gist", column, postgresql_using="gist").ddl_if(dialect="postgresql")


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _bbox(prefix: str = "") -> list[sa.Column[float]]:
    """Bounding-box columns (min_x, min_y, max_x, max_y) for bbox filters without a spatial index."""
    return [sa.Column(f"{prefix}{name}", sa.Float, nullable=False)
            for name in ("min_x", "min_y", "max_x", "max_y")]


sites = sa.Table(
    "sites",
    metadata,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("country", sa.String(100), nullable=False),
    sa.Column("category", sa.String(100), nullable=False),
    sa.Column("aliases", sa.JSON, nullable=False),
    sa.Column("gsd", sa.Float, nullable=False),
    sa.Column("approximate", sa.Boolean, nullable=False),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("references", sa.JSON, nullable=False),
    sa.Column("geometry_wkb", geometry_type(WGS84), nullable=False),
    *_bbox(),
    sa.Column("updated", UTCDateTime, nullable=False),
    spatial_index("sites"),
)

zones = sa.Table(
    "zones",
    metadata,
    sa.Column("site_id", sa.String(ID), sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("geometry_wkb", geometry_type(WGS84), nullable=False),
    *_bbox(),
    spatial_index("zones"),
)

scenes = sa.Table(
    "scenes",
    metadata,
    sa.Column("id", sa.String(LONG_ID), primary_key=True),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("sensor", sa.String(200), nullable=False),
    sa.Column("acquired", UTCDateTime, nullable=False, index=True),
    sa.Column("gsd", sa.Float, nullable=False),
    sa.Column("crs", sa.Text, nullable=False),
    sa.Column("footprint_wkb", geometry_type(WGS84), nullable=False),
    *_bbox(),
    sa.Column("bands", sa.JSON, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False, index=True),
    sa.Column("cloud_cover", sa.Float, nullable=True),
    sa.Column("off_nadir", sa.Float, nullable=True),
    sa.Column("license", sa.Text, nullable=True),
    sa.Column("attribution", sa.Text, nullable=True),
    sa.Column("ingested", UTCDateTime, nullable=False),
    # Provenance of scenes ingested from STAC (migration 0210); NULL for files.
    sa.Column("sun_elevation", sa.Float, nullable=True),
    sa.Column("sun_azimuth", sa.Float, nullable=True),
    sa.Column("stac_item", sa.Text, nullable=True),
    sa.Column("stac_collection", sa.Text, nullable=True),
    sa.Column("stac_href", sa.Text, nullable=True),
    sa.Column("stac_asset", sa.Text, nullable=True),
    spatial_index("scenes", "footprint_wkb"),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.String(LONG_ID), primary_key=True),
    sa.Column("site_id", sa.String(ID), sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("scene_id", sa.String(LONG_ID), sa.ForeignKey("scenes.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("acquired", UTCDateTime, nullable=False),
    sa.Column("chip_path", sa.Text, nullable=False, unique=True),
    sa.Column("valid_fraction", sa.Float, nullable=False),
    sa.Column("shift_rows", sa.Float, nullable=False),
    sa.Column("shift_cols", sa.Float, nullable=False),
    sa.Column("shift_confidence", sa.Float, nullable=True),
    sa.Column("chip_sha256", sa.String(64), nullable=True),
    sa.Column("problem", sa.Text, nullable=True),
    sa.Index("ix_observations_site_acquired", "site_id", "acquired"),
)

detections = sa.Table(
    "detections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("observation_id", sa.String(LONG_ID), sa.ForeignKey("observations.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("class_name", sa.String(100), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("geometry_wkb", geometry_type(SITE_GRID), nullable=False),
    *_bbox(),
    sa.Column("zone_id", sa.String(ID), nullable=True),
    sa.Column("detector", sa.String(200), nullable=False),
    # One row per place in the detector's output: a re-run or a racing writer cannot double it.
    sa.Index("ix_detections_observation_id_position", "observation_id", "position", unique=True),
    spatial_index("detections"),
)

change_regions = sa.Table(
    "change_regions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("observation_id", sa.String(LONG_ID), sa.ForeignKey("observations.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("reference_observation_id", sa.String(LONG_ID), nullable=False),
    sa.Column("geometry_wkb", geometry_type(SITE_GRID), nullable=False),
    *_bbox(),
    sa.Column("area_m2", sa.Float, nullable=False),
    sa.Column("mean_probability", sa.Float, nullable=False),
    sa.Column("zone_id", sa.String(ID), nullable=True),
    sa.Column("detector", sa.String(200), nullable=False),
    sa.Index("ix_change_regions_observation_id_position", "observation_id", "position", unique=True),
    spatial_index("change_regions"),
)

indicator_values = sa.Table(
    "indicator_values",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("observation_id", sa.String(LONG_ID), sa.ForeignKey("observations.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("site_id", sa.String(ID), nullable=False),
    sa.Column("zone_id", sa.String(ID), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("quality", sa.Float, nullable=False),
    sa.Column("acquired", UTCDateTime, nullable=False),
    sa.UniqueConstraint("observation_id", "zone_id", "name"),
    sa.Index("ix_indicator_values_site_zone_name", "site_id", "zone_id", "name"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(LONG_ID), primary_key=True),
    sa.Column("site_id", sa.String(ID), sa.ForeignKey("sites.id"), nullable=False, index=True),
    sa.Column("observation_id", sa.String(LONG_ID), sa.ForeignKey("observations.id"), nullable=False),
    sa.Column("acquired", UTCDateTime, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("indicator", sa.String(100), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("zone_id", sa.String(ID), nullable=True),
    sa.Column("p_value", sa.Float, nullable=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("hypotheses", sa.JSON, nullable=False, server_default="[]"),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(LONG_ID), sa.ForeignKey("alerts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
)

assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(LONG_ID), sa.ForeignKey("alerts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("judgement", sa.String(32), nullable=False),
    sa.Column("confidence", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("hypotheses", sa.JSON, nullable=False),
    sa.Column("pick", sa.String(64), nullable=False, server_default=""),
)

watch_cursors = sa.Table(
    "watch_cursors",
    metadata,
    sa.Column("source", sa.String(LONG_ID), primary_key=True),
    sa.Column("until", UTCDateTime, nullable=True),
    sa.Column("item_ids", sa.JSON, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)
"""How far `sitewatch watch` has read each source: every item acquired before ``until`` is done, and
of those acquired at ``until``, the ``item_ids``. Written in the transaction that stores a scene."""

watch_marks = sa.Table(
    "watch_marks",
    metadata,
    sa.Column("name", sa.String(ID), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
"""Counters of `sitewatch watch`: ``alert_events`` is the last alert event put in the outbox."""

notification_outbox = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(LONG_ID), sa.ForeignKey("alerts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("route", sa.String(ID), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("sent", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.UniqueConstraint("alert_id", "event_id", "route", name="uq_notification_outbox_delivery"),
)
"""One notification to deliver: an alert event (raised, or a state change) for one route; ``sent``
is set once the route accepted it."""
