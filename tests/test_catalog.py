"""The site-catalog schema: the built-in catalog, round trips, and broken files reported in full."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from sitewatch.catalog import (
    SITE_PROPERTIES,
    ZONE_FIELDS,
    builtin_sites,
    catalog_to_geojson,
    load_catalog,
    parse_catalog,
    site_to_feature,
    validate_catalog,
)
from sitewatch.core.errors import CatalogError
from sitewatch.core.types import Site, Zone, ZoneKind

DOCS = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"


def reference_document() -> dict[str, Any]:
    return catalog_to_geojson(builtin_sites())


def test_builtin_catalog_has_the_reference_sites() -> None:
    sites = {site.id: site for site in builtin_sites()}
    assert set(sites) == {"sohae", "sanumdong", "yongbyon"}
    assert all(site.approximate for site in sites.values())
    assert sites["sohae"].matches("Tongchang-ri")
    assert sites["sanumdong"].matches("San'um-dong")
    # public approximate coordinates of DESIGN.md §2, within about a kilometre
    for site_id, (lat, lon) in {"sohae": (39.66, 124.705), "sanumdong": (39.07, 125.78),
                                "yongbyon": (39.795, 125.755)}.items():
        centre = sites[site_id].geometry.centroid
        assert centre.y == pytest.approx(lat, abs=0.01) and centre.x == pytest.approx(lon, abs=0.01)
    assert {z.kind for z in sites["sohae"].zones} >= {ZoneKind.LAUNCH_PAD, ZoneKind.ENGINE_TEST_STAND}
    assert {z.kind for z in sites["sanumdong"].zones} >= {ZoneKind.RAIL_YARD, ZoneKind.PARKING}


def test_round_trip_through_json_text() -> None:
    sites = builtin_sites()
    text = json.dumps(catalog_to_geojson(sites, name="reference"))
    assert parse_catalog(json.loads(text), source="memory") == sites


def test_a_bare_feature_is_a_catalog_of_one() -> None:
    site = builtin_sites()[0]
    assert parse_catalog(site_to_feature(site), source="memory") == (site,)


def test_defaults_and_feature_id_fallback() -> None:
    feature = site_to_feature(builtin_sites()[0])
    props = feature["properties"]
    for key in ("aliases", "gsd", "approximate", "notes", "references", "zones"):
        del props[key]
    del props["id"]  # the Feature's own id stands in
    (site,) = parse_catalog(feature, source="memory")
    assert site.id == feature["id"]
    assert (site.gsd, site.approximate, site.notes, site.zones, site.aliases) == (0.5, False, "", (), ())


def test_broken_file_reports_every_problem_at_once() -> None:
    document = reference_document()
    document["features"][0]["properties"]["gsd"] = "half a metre"
    document["features"][0]["properties"]["alias"] = ["typo"]
    document["features"][1]["properties"]["id"] = "Sanum Dong"
    del document["features"][1]["properties"]["country"]
    document["features"][2]["properties"]["zones"][1]["kind"] = "pad"
    document["features"][2]["properties"]["zones"][0]["geometry"] = {
        "type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    document["features"].append(copy.deepcopy(document["features"][2]))
    document["features"][3]["properties"]["zones"][1]["kind"] = "parking"
    document["features"][3]["properties"]["zones"][0] = document["features"][2]["properties"]["zones"][2]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(document, source="broken.geojson")
    problems = caught.value.problems
    expected = [
        r"^features\[0\]\.properties\.gsd: 'half a metre' must be a number",
        r"^features\[0\]\.properties\.alias: unknown property",
        r"^features\[1\]\.properties\.id: 'Sanum Dong' is not a valid id",
        r"^features\[1\]\.id: 'sanumdong' differs from properties\.id 'Sanum Dong'",
        r"^features\[1\]\.properties\.country: is required",
        r"^features\[2\]\.properties\.zones\[1\]\.kind: 'pad' is not one of: launch_pad, engine_test_stand",
        r"^features\[2\]\.properties\.zones\[0\]\.geometry: is not a valid polygon: Self-intersection",
        r"^features\[3\]\.properties\.zones\[2\]\.id: duplicate zone id 'support'",
    ]
    for pattern in expected:
        assert any(re.search(pattern, p) for p in problems), f"no problem matches {pattern}: {problems}"
    assert len(problems) == len(expected), problems
    assert str(caught.value).startswith("broken.geojson: 8 problem(s)")
    assert validate_catalog(document) == problems


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda d: d.update(type="Topology"), r"^type: 'Topology' must be 'FeatureCollection'"),
        (lambda d: d.update(features={}), r"^features: must be a list"),
        (lambda d: d.update(features=[]), r"^features: is empty"),
        (lambda d: d["features"].__setitem__(0, "sohae"), r"^features\[0\]: must be a GeoJSON Feature"),
        (lambda d: d["features"][0].update(type="Point"), r"^features\[0\]\.type: 'Point' must be 'Feature'"),
        (lambda d: d["features"][0].update(geometry=None), r"^features\[0\]\.geometry: must be a GeoJSON"),
        (lambda d: d["features"][0].update(geometry={"type": "Point", "coordinates": [124.7, 39.6]}),
         r"^features\[0\]\.geometry: type 'Point' must be Polygon or MultiPolygon"),
        (lambda d: d["features"][0].update(geometry={"type": "Polygon",
                                                     "coordinates": [[[39.6, 124.7]] * 4]}),
         r"^features\[0\]\.geometry: bounds .* are not longitude/latitude .*swapped"),
        (lambda d: d["features"][0].update(geometry={"type": "Polygon", "coordinates": "oops"}),
         r"^features\[0\]\.geometry: coordinates are malformed"),
        (lambda d: d["features"][0].update(id="other"),
         r"^features\[0\]\.id: 'other' differs from properties.id"),
        (lambda d: (d["features"][1]["properties"].update(id="sohae"), d["features"][1].pop("id")),
         r"^features\[1\]\.properties\.id: duplicate site id 'sohae' \(also at features\[0\]\)"),
        (lambda d: d["features"][0]["properties"].update(gsd=0), r"gsd: 0 must be 0.05 to 100 metres"),
        (lambda d: d["features"][0]["properties"].update(approximate="yes"),
         r"approximate: 'yes' must be true"),
        (lambda d: d["features"][0]["properties"].update(aliases="Tongchang-ri"),
         r"aliases: .* list of strings"),
        (lambda d: d["features"][0]["properties"].update(references=[""]), r"references\[0\]: '' must be"),
        (lambda d: d["features"][0]["properties"].update(zones={}), r"zones: must be a list"),
        (lambda d: d["features"][0]["properties"]["zones"][0].update(colour="red"),
         r"zones\[0\]\.colour: unknown zone field"),
        (lambda d: d["features"][0]["properties"]["zones"][0].update(
            geometry={"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 10]]]}),
         r"zones\[0\]\.geometry: lies outside the site outline"),
    ],
)
def test_each_schema_rule(change: Any, pattern: str) -> None:
    document = reference_document()
    change(document)
    problems = validate_catalog(document)
    assert any(re.search(pattern, p) for p in problems), problems


def test_not_an_object() -> None:
    assert validate_catalog([1, 2]) == ["a catalog must be a GeoJSON object, got list"]


def test_load_catalog_names_unreadable_files(tmp_path: Path) -> None:
    good = tmp_path / "sites.geojson"
    good.write_text(json.dumps(reference_document()), encoding="utf-8")
    assert load_catalog(good) == builtin_sites()
    cases = {
        tmp_path / "missing.geojson": "file not found",
        tmp_path: "is a folder",
    }
    bad_json = tmp_path / "bad.geojson"
    bad_json.write_text('{"type": "FeatureCollection", "features": [}', encoding="utf-8")
    cases[bad_json] = "is not valid JSON: Expecting value at line 1 column 44"
    latin = tmp_path / "latin.geojson"
    latin.write_bytes('{"name": "Yŏngbyŏn"}'.encode("latin-1", errors="replace") + b"\xff")
    cases[latin] = "is not UTF-8"
    for path, message in cases.items():
        with pytest.raises(CatalogError) as caught:
            load_catalog(path)
        assert str(path) in str(caught.value) and message in str(caught.value)


def test_docs_describe_every_field() -> None:
    """docs/catalog.md is the schema's reference: every property and zone kind must be in it."""
    text = DOCS.read_text(encoding="utf-8")
    for name in (*SITE_PROPERTIES, *ZONE_FIELDS, *(kind.value for kind in ZoneKind)):
        assert f"`{name}`" in text, f"docs/catalog.md does not document `{name}`"
    example = re.search(r"```json\n(.*?)```", text, flags=re.S)
    assert example, "docs/catalog.md has no JSON example"
    parse_catalog(json.loads(example.group(1)), source="docs/catalog.md example")


# --- property test: any valid site survives the round trip ---------------------------------------

IDS = st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,20}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
    str.strip)


@st.composite
def sites(draw: st.DrawFn) -> Site:
    lon = draw(st.floats(min_value=-179.0, max_value=178.0))
    lat = draw(st.floats(min_value=-79.0, max_value=82.0))
    size = draw(st.floats(min_value=1e-4, max_value=0.5))
    outline = box(lon, lat, lon + size, lat + size)
    zone_ids = draw(st.lists(IDS, max_size=4, unique=True))
    zones = []
    for zone_id in zone_ids:
        fraction = draw(st.floats(min_value=0.05, max_value=0.95))
        zones.append(Zone(zone_id, draw(TEXT), draw(st.sampled_from(list(ZoneKind))),
                          box(lon, lat, lon + size * fraction, lat + size * fraction)))
    return Site(
        id=draw(IDS), name=draw(TEXT), country=draw(TEXT), category=draw(TEXT), geometry=outline,
        zones=tuple(zones), aliases=tuple(draw(st.lists(TEXT, max_size=3))),
        gsd=draw(st.floats(min_value=0.05, max_value=100.0)), approximate=draw(st.booleans()),
        notes=draw(st.text(max_size=40)), references=tuple(draw(st.lists(TEXT, max_size=2))),
    )


@settings(max_examples=60, deadline=None)
@given(site=sites())
def test_any_site_round_trips(site: Site) -> None:
    text = json.dumps(catalog_to_geojson([site]))
    assert parse_catalog(json.loads(text), source="memory") == (site,)
