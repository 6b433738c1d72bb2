"""The PostGIS geometry type of the workspace schema (GeoAlchemy2), loaded with a PostgreSQL store only.

GeoAlchemy2 gives the DDL, reflection (``geometry`` columns read back as its ``Geometry``) and GiST
support, and importing it loads every SQLAlchemy dialect; a SQLite workspace needs none of it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.engine import Dialect


class PostGISGeometry(Geometry):
    """A PostGIS geometry column that takes and gives plain WKB bytes, as the SQLite BLOB does.

    GeoAlchemy2 gives the DDL, reflection and GiST support; the binding is ours: no EWKT text,
    no ``WKBElement``, so :mod:`sitewatch.store.codec` is the same for both backends.
    """

    cache_ok = True

    def bind_expression(self, bindvalue: Any) -> Any:
        return sa.func.ST_SetSRID(sa.func.ST_GeomFromWKB(bindvalue), self.srid, type_=self)

    def column_expression(self, col: Any) -> Any:
        return sa.func.ST_AsBinary(col, type_=sa.LargeBinary)

    def bind_processor(self, dialect: Dialect) -> Any:
        return None

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        return None
