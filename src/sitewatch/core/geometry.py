"""Geometry helpers that need no I/O: UTM zones, polygon checks."""

from __future__ import annotations

import math

from shapely.geometry.base import BaseGeometry


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone holding (lon, lat).

    Norway and Svalbard exceptions are ignored: site grids only need a local
    conformal projection, not the official zone.
    """
    if not (-180.0 <= lon <= 180.0) or not (-80.0 <= lat <= 84.0):
        raise ValueError(
            f"({lon}, {lat}) is outside the UTM domain (lon -180..180, lat -80..84); "
            "give a site in longitude, latitude order"
        )
    zone = min(math.floor((lon + 180.0) / 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def is_lonlat(geometry: BaseGeometry) -> bool:
    """True when every coordinate of ``geometry`` lies in longitude/latitude range."""
    minx, miny, maxx, maxy = geometry.bounds
    return -180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0
