"""GeoJSON (RFC 7946, longitude/latitude) and KML 2.2 documents of alerts and detections.

Analysts open KML in Google Earth and GeoJSON in QGIS, so both carry the same
properties; geometries are converted from the site grid to WGS 84 first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from xml.sax.saxutils import escape

from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

_KML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>{name}</name>\n'
)
_KML_TAIL = "</Document></kml>\n"


def feature(geometry: BaseGeometry, properties: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": dict(mapping(geometry)), "properties": dict(properties)}


def geojson_chunks(features: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A FeatureCollection streamed feature by feature, so large exports need little memory."""
    yield '{"type":"FeatureCollection","features":['
    for index, item in enumerate(features):
        yield ("," if index else "") + json.dumps(item, separators=(",", ":"))
    yield "]}"


def _kml_coordinates(coords: Iterable[Any]) -> str:
    return " ".join(f"{c[0]:.7f},{c[1]:.7f}" for c in coords)


def _kml_polygon(polygon: Any) -> str:
    rings = [
        f"<outerBoundaryIs><LinearRing><coordinates>{_kml_coordinates(polygon.exterior.coords)}"
        "</coordinates></LinearRing></outerBoundaryIs>"
    ]
    rings += [
        f"<innerBoundaryIs><LinearRing><coordinates>{_kml_coordinates(ring.coords)}"
        "</coordinates></LinearRing></innerBoundaryIs>"
        for ring in polygon.interiors
    ]
    return f"<Polygon>{''.join(rings)}</Polygon>"


def kml_geometry(geometry: BaseGeometry) -> str:
    kind = geometry.geom_type
    if kind == "Point":
        return f"<Point><coordinates>{_kml_coordinates(geometry.coords)}</coordinates></Point>"
    if kind == "LineString":
        return f"<LineString><coordinates>{_kml_coordinates(geometry.coords)}</coordinates></LineString>"
    if kind == "Polygon":
        return _kml_polygon(geometry)
    parts = getattr(geometry, "geoms", ())
    return f"<MultiGeometry>{''.join(kml_geometry(part) for part in parts)}</MultiGeometry>"


def kml_placemark(name: str, geometry: BaseGeometry, properties: Mapping[str, Any]) -> str:
    data = "".join(
        f'<Data name="{escape(str(key), {chr(34): "&quot;"})}"><value>{escape(str(value))}</value></Data>'
        for key, value in properties.items()
        if value is not None
    )
    return (
        f"<Placemark><name>{escape(name)}</name><ExtendedData>{data}</ExtendedData>"
        f"{kml_geometry(geometry)}</Placemark>\n"
    )


def kml_chunks(title: str, placemarks: Iterable[str]) -> Iterator[str]:
    yield _KML_HEAD.format(name=escape(title))
    yield from placemarks
    yield _KML_TAIL
