"""GeoJSON (RFC 7946, longitude/latitude) and KML 2.2 documents of alerts, observations and detections.

Analysts open KML in Google Earth and GeoJSON in QGIS, so both carry the same
properties; geometries are converted from the site grid to WGS 84 first. In KML, alerts
are moments (``<TimeStamp>``) and observations last until the site's next one
(``<TimeSpan>``), so Google Earth's time slider steps through a site's history; each alert
is styled by its state and described by its "why", its assessments and a link back to its
dashboard page.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from sitewatch.app.web import serialize
from sitewatch.core import words
from sitewatch.core.indicators import indicator_label
from sitewatch.core.timeutil import ensure_utc
from sitewatch.core.types import Alert, AlertState, Assessment, Observation, Site
from sitewatch.store.settings import alert_url

COORDINATE_DECIMALS = 6
"""Decimal places of exported degrees: 1e-6° is at most 11 cm, finer than any image's pixel (7
places, 1 cm, would claim a precision no chip has)."""

_KML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>{name}</name>\n'
)
_KML_TAIL = "</Document></kml>\n"

# KML colours are aabbggrr. The dashboard's state colours, so a placemark reads like its dot.
_STATE_COLOURS: dict[AlertState, str] = {
    AlertState.NEW: "ff2828e6",
    AlertState.ACKNOWLEDGED: "ff0a96f5",
    AlertState.CONFIRMED: "ffa0288c",
    AlertState.BENIGN: "ff50a032",
    AlertState.FALSE_ALARM: "ff969696",
}
DETECTION_STYLE = "detection"
OBSERVATION_STYLE = "observation"


def alert_style(state: AlertState) -> str:
    """The id of the ``<Style>`` that draws alerts in ``state``."""
    return f"alert-{state.value}"


def rounded(geometry: BaseGeometry) -> BaseGeometry:
    """``geometry`` with its degrees rounded to :data:`COORDINATE_DECIMALS` places."""
    return shapely.transform(geometry, lambda xy: np.round(xy, COORDINATE_DECIMALS))


def feature(geometry: BaseGeometry, properties: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": dict(mapping(rounded(geometry))), "properties": dict(properties)}


def geojson_chunks(features: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A FeatureCollection streamed feature by feature, so large exports need little memory."""
    yield '{"type":"FeatureCollection","features":['
    for index, item in enumerate(features):
        yield ("," if index else "") + json.dumps(item, separators=(",", ":"))
    yield "]}"


def _degrees(value: float) -> str:
    return f"{value:.{COORDINATE_DECIMALS}f}".rstrip("0").rstrip(".")


def _kml_coordinates(coords: Iterable[Any]) -> str:
    return " ".join(f"{_degrees(c[0])},{_degrees(c[1])}" for c in coords)


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


def kml_when(value: datetime) -> str:
    """A KML ``dateTime``: UTC to the second (image times are not known more finely)."""
    return f"{ensure_utc(value):%Y-%m-%dT%H:%M:%SZ}"


def kml_time_stamp(when: datetime) -> str:
    return f"<TimeStamp><when>{kml_when(when)}</when></TimeStamp>"


def kml_time_span(begin: datetime, end: datetime | None) -> str:
    """From ``begin`` until ``end``; open-ended (until further notice) when ``end`` is None."""
    until = f"<end>{kml_when(end)}</end>" if end is not None else ""
    return f"<TimeSpan><begin>{kml_when(begin)}</begin>{until}</TimeSpan>"


def kml_placemark(
    name: str,
    geometry: BaseGeometry,
    properties: Mapping[str, Any],
    *,
    description: str = "",
    time: str = "",
    style: str = "",
) -> str:
    """One placemark; ``description`` is HTML (escaped here), ``time`` a TimeStamp or TimeSpan element,
    ``style`` the id of a style of the document."""
    data = "".join(
        f'<Data name="{escape(str(key), {chr(34): "&quot;"})}"><value>{escape(_text(value))}</value></Data>'
        for key, value in properties.items()
        if value is not None
    )
    parts = [f"<Placemark><name>{escape(name)}</name>"]
    if description:
        parts.append(f"<description>{escape(description)}</description>")
    parts.append(time)
    if style:
        parts.append(f"<styleUrl>#{escape(style)}</styleUrl>")
    parts.append(f"<ExtendedData>{data}</ExtendedData>{kml_geometry(geometry)}</Placemark>\n")
    return "".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def kml_styles() -> str:
    """One style per alert state (icon, outline and a light fill of the zone), one for detections."""
    styles = [
        f'<Style id="{alert_style(state)}"><IconStyle><color>{colour}</color><scale>1.1</scale></IconStyle>'
        f"<LineStyle><color>{colour}</color><width>2</width></LineStyle>"
        f"<PolyStyle><color>40{colour[2:]}</color></PolyStyle></Style>\n"
        for state, colour in _STATE_COLOURS.items()
    ]
    styles.append(
        f'<Style id="{DETECTION_STYLE}"><LineStyle><color>ff00d7ff</color><width>1.5</width></LineStyle>'
        "<PolyStyle><fill>0</fill></PolyStyle></Style>\n"
    )
    styles.append(
        f'<Style id="{OBSERVATION_STYLE}"><LineStyle><color>80ffffff</color><width>1</width></LineStyle>'
        "<PolyStyle><fill>0</fill></PolyStyle></Style>\n"
    )
    return "".join(styles)


def kml_chunks(title: str, placemarks: Iterable[str]) -> Iterator[str]:
    """A KML document streamed placemark by placemark, with the shared styles in its head."""
    yield _KML_HEAD.format(name=escape(title))
    yield kml_styles()
    yield from placemarks
    yield _KML_TAIL


def kml_folder(name: str, features: Iterable[str]) -> Iterator[str]:
    yield f"<Folder><name>{escape(name)}</name>\n"
    yield from features
    yield "</Folder>\n"


# --- alerts -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertExport:
    """An alert with what its exports say about it."""

    alert: Alert
    site: Site
    assessments: tuple[Assessment, ...]
    url: str
    """Its dashboard page."""

    @property
    def zone_name(self) -> str | None:
        return next((z.name for z in self.site.zones if z.id == self.alert.zone_id), None)

    def geometry(self) -> BaseGeometry:
        """The outline of the alert's zone when it names one, else the site's centre."""
        for zone in self.site.zones:
            if zone.id == self.alert.zone_id:
                return zone.geometry
        return self.site.geometry.centroid

    def name(self) -> str:
        where = f", {self.zone_name}" if self.zone_name else ""
        what = indicator_label(self.alert.indicator)
        return f"{self.alert.acquired:%Y-%m-%d} {self.site.name}: {what}{where}"

    def properties(self) -> dict[str, Any]:
        return {
            **serialize.alert(self.alert),
            "site_name": self.site.name,
            "zone_name": self.zone_name,
            "assessments": [serialize.assessment(a) for a in self.assessments],
            "url": self.url,
        }

    def description(self) -> str:
        """HTML for Google Earth's balloon: the why, the numbers, the assessments and the link."""
        alert = self.alert
        p_text = f"; p = {words.p_value(alert.p_value)}" if alert.p_value is not None else ""
        lines = [
            f"<p><b>Why:</b> {escape(alert.explanation)}</p>",
            f"<p>{escape(indicator_label(alert.indicator))}: {alert.value:.4g} where {alert.baseline:.4g} "
            f"is usual{p_text}. State: {alert.state.value.replace('_', ' ')}. "
            f"Image of {alert.acquired:%Y-%m-%d %H:%M} UTC.</p>",
        ]
        if self.assessments:
            items = "".join(
                f"<li>{escape(a.author)}, {a.created:%Y-%m-%d %H:%M} UTC: {escape(a.judgement.value)} "
                f"({escape(a.confidence.value)} confidence){': ' + escape(a.text) if a.text else ''}</li>"
                for a in self.assessments
            )
            lines.append(f"<p><b>Assessments</b></p><ul>{items}</ul>")
        else:
            lines.append("<p>No assessments yet.</p>")
        lines.append(f'<p><a href="{escape(self.url)}">Open the alert in sitewatch</a></p>')
        return "".join(lines)

    def placemark(self) -> str:
        shape = self.geometry()
        # A point at the zone's centre carries the icon and label; the outline shows the zone.
        geometry = (
            shapely.GeometryCollection([shape.centroid, shape])
            if isinstance(shape, Polygon | MultiPolygon)
            else shape
        )
        return kml_placemark(
            self.name(),
            geometry,
            {key: value for key, value in self.properties().items() if key != "explanation"},
            description=self.description(),
            time=kml_time_stamp(self.alert.acquired),
            style=alert_style(self.alert.state),
        )


def alert_exports(
    alerts: Iterable[Alert],
    sites: Mapping[str, Site],
    assessments: Mapping[str, Sequence[Assessment]],
    base_url: str,
) -> list[AlertExport]:
    """The alerts whose site is known, each with its assessments and dashboard link."""
    return [
        AlertExport(alert, sites[alert.site_id], tuple(assessments.get(alert.id, ())),
                    alert_url(base_url, alert.id))
        for alert in alerts
        if alert.site_id in sites
    ]


# --- observations -----------------------------------------------------------------------------------


def observation_spans(observations: Iterable[Observation]) -> dict[str, tuple[datetime, datetime | None]]:
    """Per observation, the time it is the site's latest look: from its acquisition until the site's
    next observation (open-ended for the latest)."""
    by_site: dict[str, list[Observation]] = defaultdict(list)
    for observation in observations:
        by_site[observation.site_id].append(observation)
    spans: dict[str, tuple[datetime, datetime | None]] = {}
    for series in by_site.values():
        series.sort(key=lambda o: o.acquired)
        for current, following in zip(series, [*series[1:], None], strict=True):
            spans[current.id] = (current.acquired, following.acquired if following is not None else None)
    return spans
