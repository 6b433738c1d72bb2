"""The site-catalog GeoJSON schema: parse, validate and write it (docs/catalog.md).

Parsing collects every problem of a file before failing, each prefixed with the
JSON path of the field (``features[2].properties.zones[1].kind: ...``), so a user
fixes a hand-edited catalog in one pass instead of one error per run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shapely.errors import ShapelyError
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.validation import explain_validity

from sitewatch.core.errors import CatalogError, ValidationError
from sitewatch.core.types import SITE_GSD_RANGE, Site, Zone, ZoneKind

DEFAULT_GSD = 0.5
"""Site-grid metres per pixel when a site does not say."""

REQUIRED_PROPERTIES = ("id", "name", "country", "category")
OPTIONAL_PROPERTIES = ("aliases", "gsd", "approximate", "notes", "references", "zones")
SITE_PROPERTIES = REQUIRED_PROPERTIES + OPTIONAL_PROPERTIES
ZONE_FIELDS = ("id", "name", "kind", "geometry")

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_AREA_TYPES = ("Polygon", "MultiPolygon")


class _Problems:
    """Collects problems under a JSON path so every one is reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)


def validate_catalog(document: object) -> list[str]:
    """Every problem of a catalog document (a FeatureCollection or one Feature); empty when valid."""
    problems = _Problems()
    _parse(document, problems)
    return problems.items


def parse_catalog(document: object, *, source: str) -> tuple[Site, ...]:
    """Sites of a catalog document; :class:`CatalogError` lists every problem with its path.

    ``source`` names where the document came from (a file path) for the error message.
    """
    problems = _Problems()
    sites = _parse(document, problems)
    if problems.items:
        raise CatalogError(source, problems.items)
    return sites


def catalog_to_geojson(sites: Sequence[Site], *, name: str | None = None) -> dict[str, Any]:
    """A FeatureCollection that :func:`parse_catalog` reads back into equal sites."""
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    if name:
        collection["name"] = name
    collection["features"] = [site_to_feature(site) for site in sites]
    return collection


def site_to_feature(site: Site) -> dict[str, Any]:
    """One site as a GeoJSON Feature of the catalog schema."""
    return {
        "type": "Feature",
        "id": site.id,
        "geometry": _geometry_to_json(site.geometry),
        "properties": {
            "id": site.id,
            "name": site.name,
            "aliases": list(site.aliases),
            "country": site.country,
            "category": site.category,
            "gsd": site.gsd,
            "approximate": site.approximate,
            "notes": site.notes,
            "references": list(site.references),
            "zones": [
                {
                    "id": zone.id,
                    "name": zone.name,
                    "kind": zone.kind.value,
                    "geometry": _geometry_to_json(zone.geometry),
                }
                for zone in site.zones
            ],
        },
    }


# --- parsing ------------------------------------------------------------------------------------


def _parse(document: object, problems: _Problems) -> tuple[Site, ...]:
    if not isinstance(document, Mapping):
        problems.add("", f"a catalog must be a GeoJSON object, got {type(document).__name__}")
        return ()
    kind = document.get("type")
    if kind == "Feature":
        features: list[tuple[str, object]] = [("", document)]
    elif kind == "FeatureCollection":
        raw = document.get("features")
        if not isinstance(raw, list):
            problems.add("features", "must be a list of site Features")
            return ()
        if not raw:
            problems.add("features", "is empty; a catalog needs at least one site")
        features = [(f"features[{index}]", feature) for index, feature in enumerate(raw)]
    else:
        problems.add("type", f"{kind!r} must be 'FeatureCollection' (or 'Feature' for a single site)")
        return ()

    sites: list[Site] = []
    seen: dict[str, str] = {}
    for path, feature in features:
        site = _parse_feature(feature, path, problems)
        if site is None:
            continue
        if site.id in seen:
            problems.add(_join(path, "properties.id"),
                         f"duplicate site id {site.id!r} (also at {seen[site.id]})")
            continue
        seen[site.id] = path or "the feature"
        sites.append(site)
    return tuple(sites)


def _parse_feature(feature: object, path: str, problems: _Problems) -> Site | None:
    if not isinstance(feature, Mapping):
        problems.add(path, f"must be a GeoJSON Feature object, got {type(feature).__name__}")
        return None
    before = len(problems.items)
    if feature.get("type") != "Feature":
        problems.add(_join(path, "type"), f"{feature.get('type')!r} must be 'Feature'")
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        problems.add(_join(path, "properties"), "must be an object with the site's id, name, country, ...")
        props = {}
    where = _join(path, "properties")

    # The Feature's own "id" may stand in for properties.id; when both are given they must agree.
    site_id = props.get("id", feature.get("id"))
    if "id" in props and "id" in feature and feature["id"] != props["id"]:
        problems.add(_join(path, "id"), f"{feature['id']!r} differs from properties.id {props['id']!r}")
    _check_id(site_id, _join(where, "id"), problems)
    for key in ("name", "country", "category"):
        _check_text(props.get(key), _join(where, key), problems, required=True)
    unknown = sorted(set(props) - set(SITE_PROPERTIES))
    for key in unknown:
        problems.add(
            _join(where, key),
            f"unknown property; known: {', '.join(SITE_PROPERTIES)} (put free text in 'notes')",
        )
    aliases = _strings(props.get("aliases", []), _join(where, "aliases"), problems)
    references = _strings(props.get("references", []), _join(where, "references"), problems)
    notes = props.get("notes", "")
    if not isinstance(notes, str):
        problems.add(_join(where, "notes"), f"{notes!r} must be a string")
    gsd = props.get("gsd", DEFAULT_GSD)
    if isinstance(gsd, bool) or not isinstance(gsd, int | float) or not math.isfinite(gsd):
        problems.add(_join(where, "gsd"), f"{gsd!r} must be a number of metres per pixel, e.g. 0.5")
    elif not SITE_GSD_RANGE[0] <= gsd <= SITE_GSD_RANGE[1]:
        low, high = SITE_GSD_RANGE
        problems.add(_join(where, "gsd"), f"{gsd!r} must be {low:g} to {high:g} metres per pixel")
    approximate = props.get("approximate", False)
    if not isinstance(approximate, bool):
        problems.add(_join(where, "approximate"), f"{approximate!r} must be true or false")
    outline = _parse_area(feature.get("geometry"), _join(path, "geometry"), problems)
    zones = _parse_zones(props.get("zones", []), _join(where, "zones"), outline, problems)

    if len(problems.items) > before:
        return None
    try:
        return Site(
            id=str(site_id),
            name=props["name"],
            country=props["country"],
            category=props["category"],
            geometry=outline,  # no problems so far means a valid area
            zones=tuple(zones),
            aliases=aliases,
            gsd=float(gsd),
            approximate=approximate,
            notes=notes,
            references=references,
        )
    except ValidationError as error:  # a rule only the domain type knows; still name the place
        problems.add(_join(where, error.field), str(error))
        return None


def _parse_zones(raw: object, path: str, outline: Polygon | MultiPolygon | None,
                 problems: _Problems) -> list[Zone]:
    if not isinstance(raw, list):
        problems.add(path, "must be a list of zones ({id, name, kind, geometry})")
        return []
    zones: list[Zone] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            problems.add(where, "must be an object with id, name, kind and geometry")
            continue
        before = len(problems.items)
        zone_id = item.get("id")
        _check_id(zone_id, f"{where}.id", problems)
        if isinstance(zone_id, str) and zone_id in seen:
            problems.add(f"{where}.id", f"duplicate zone id {zone_id!r} in this site")
        _check_text(item.get("name"), f"{where}.name", problems, required=True)
        kind = item.get("kind")
        if kind not in {k.value for k in ZoneKind}:
            choices = ", ".join(k.value for k in ZoneKind)
            problems.add(f"{where}.kind", f"{kind!r} is not one of: {choices}")
        for key in sorted(set(item) - set(ZONE_FIELDS)):
            problems.add(f"{where}.{key}", f"unknown zone field; known: {', '.join(ZONE_FIELDS)}")
        area = _parse_area(item.get("geometry"), f"{where}.geometry", problems)
        if area is not None and outline is not None and not area.intersects(outline):
            problems.add(f"{where}.geometry", "lies outside the site outline; a zone must overlap its site")
        if len(problems.items) > before or area is None:
            continue
        seen.add(str(zone_id))
        zones.append(Zone(id=str(zone_id), name=str(item["name"]), kind=ZoneKind(str(kind)), geometry=area))
    return zones


def _parse_area(raw: object, path: str, problems: _Problems) -> Polygon | MultiPolygon | None:
    if not isinstance(raw, Mapping):
        problems.add(path, "must be a GeoJSON Polygon or MultiPolygon in longitude/latitude")
        return None
    kind = raw.get("type")
    if kind not in _AREA_TYPES:
        problems.add(path, f"type {kind!r} must be Polygon or MultiPolygon")
        return None
    try:
        geometry = shape(raw)
    except (ShapelyError, ValueError, TypeError, IndexError, KeyError, AttributeError) as error:
        problems.add(path, f"coordinates are malformed ({error}); write [[[lon, lat], ...]] rings")
        return None
    if not isinstance(geometry, Polygon | MultiPolygon) or geometry.is_empty:
        problems.add(path, "is empty; give at least one ring of 4 or more [lon, lat] positions")
        return None
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        swapped = -90 <= minx <= maxx <= 90
        hint = " (positions are [longitude, latitude]; are they swapped?)" if swapped else ""
        problems.add(path, f"bounds {geometry.bounds} are not longitude/latitude (EPSG:4326){hint}")
        return None
    if not geometry.is_valid:
        problems.add(path, f"is not a valid polygon: {explain_validity(geometry)}")
        return None
    if geometry.area <= 0:
        problems.add(path, "has zero area")
        return None
    return geometry


def _check_id(value: object, path: str, problems: _Problems) -> None:
    if value is None:
        problems.add(path, "is required")
    elif not isinstance(value, str) or not _ID_PATTERN.match(value):
        problems.add(
            path,
            f"{value!r} is not a valid id; use 1-64 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit",
        )


def _check_text(value: object, path: str, problems: _Problems, *, required: bool) -> None:
    if value is None and required:
        problems.add(path, "is required")
    elif not isinstance(value, str) or not value.strip():
        problems.add(path, f"{value!r} must be a non-empty string")


def _strings(value: object, path: str, problems: _Problems) -> tuple[str, ...]:
    if not isinstance(value, list):
        problems.add(path, f"{value!r} must be a list of strings")
        return ()
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            problems.add(f"{path}[{index}]", f"{item!r} must be a non-empty string")
    return tuple(item for item in value if isinstance(item, str))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _geometry_to_json(geometry: Polygon | MultiPolygon) -> dict[str, Any]:
    """GeoJSON geometry with lists, not tuples, so it compares equal to parsed JSON."""
    result: dict[str, Any] = _lists(mapping(geometry))
    return result


def _lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    return value
