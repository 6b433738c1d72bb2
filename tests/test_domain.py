"""Domain types validate when built and name the bad field; UTM maths checked against pyproj."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS, Transformer
from shapely.geometry import LineString, Point, Polygon, box

from sitewatch.core.errors import ValidationError
from sitewatch.core.geometry import is_lonlat, utm_epsg
from sitewatch.core.timeutil import ensure_utc, parse_utc, parse_utc_bound
from sitewatch.core.types import (
    Alert,
    AlertState,
    Assessment,
    ChangeRegion,
    Confidence,
    Detection,
    IndicatorValue,
    Likelihood,
    Observation,
    Scene,
    Site,
    Zone,
    ZoneKind,
)

WHEN = datetime(2019, 2, 22, 2, 30, tzinfo=UTC)
SITE_BOX = box(125.77, 39.06, 125.79, 39.08)
ZONE_BOX = box(125.775, 39.065, 125.78, 39.07)
UTM_BOX = box(500000, 4300000, 500050, 4300040)


def good_zone(**changes: Any) -> Zone:
    return dataclasses.replace(Zone("rail_yard", "Rail yard", ZoneKind.RAIL_YARD, ZONE_BOX), **changes)


def good_site(**changes: Any) -> Site:
    site = Site("sanumdong", "Sanumdong", "KP", "missile_production", SITE_BOX, zones=(good_zone(),),
                aliases=("San'um-dong",))
    return dataclasses.replace(site, **changes)


def good_scene(**changes: Any) -> Scene:
    scene = Scene(id="abc123", uri="/data/a.tif", sensor="WV02", acquired=WHEN, gsd=0.5, crs="EPSG:32651",
                  footprint=SITE_BOX, bands=("red", "green", "blue"), width=100, height=80, checksum="a" * 64)
    return dataclasses.replace(scene, **changes)


def good_observation(**changes: Any) -> Observation:
    observation = Observation("obs-1", "sanumdong", "abc123", WHEN, "chips/sanumdong/obs-1.tif", 0.9)
    return dataclasses.replace(observation, **changes)


def good_detection(**changes: Any) -> Detection:
    return dataclasses.replace(Detection("obs-1", "truck", 0.8, UTM_BOX), **changes)


def good_region(**changes: Any) -> ChangeRegion:
    return dataclasses.replace(ChangeRegion("obs-2", "obs-1", UTM_BOX, 2000.0, 0.7), **changes)


def good_indicator(**changes: Any) -> IndicatorValue:
    return dataclasses.replace(IndicatorValue("obs-1", "sanumdong", "rail_yard", "vehicles", 3.0, 0.9, WHEN),
                               **changes)


def good_alert(**changes: Any) -> Alert:
    alert = Alert("alert-1", "sanumdong", "obs-1", WHEN, WHEN + timedelta(hours=1), "vehicles", 12.0, 2.0,
                  4.5,
                  "12 vehicles where 2 are usual")
    return dataclasses.replace(alert, **changes)


def good_assessment(**changes: Any) -> Assessment:
    assessment = Assessment("alert-1", "analyst", WHEN, Likelihood.LIKELY, Confidence.LOW)
    return dataclasses.replace(assessment, **changes)


FACTORIES = {
    "Zone": good_zone, "Site": good_site, "Scene": good_scene, "Observation": good_observation,
    "Detection": good_detection, "ChangeRegion": good_region, "IndicatorValue": good_indicator,
    "Alert": good_alert, "Assessment": good_assessment,
}

NAIVE = datetime(2019, 2, 22, 2, 30)
KST = datetime(2019, 2, 22, 11, 30, tzinfo=timezone(timedelta(hours=9)))
NAN = float("nan")

BAD_VALUES: list[tuple[str, str, object]] = [
    ("Zone", "id", "Rail Yard"),
    ("Zone", "id", ""),
    ("Zone", "name", "  "),
    ("Zone", "kind", "pad"),
    ("Zone", "geometry", Point(125.77, 39.06)),
    ("Zone", "geometry", Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])),  # bow tie
    ("Zone", "geometry", box(500000, 4300000, 500100, 4300100)),  # metres, not lon/lat
    ("Site", "id", "x" * 65),
    ("Site", "country", ""),
    ("Site", "category", 7),
    ("Site", "geometry", LineString([(125, 39), (126, 40)])),
    ("Site", "gsd", 0.0),
    ("Site", "gsd", NAN),
    ("Site", "gsd", True),
    ("Site", "gsd", 500.0),
    ("Site", "aliases", ["list", "not", "tuple"]),
    ("Site", "aliases", ("",)),
    ("Site", "references", (3,)),
    ("Site", "zones", (good_zone(), good_zone())),
    ("Site", "zones", (good_zone(geometry=box(10, 10, 11, 11)),)),
    ("Site", "zones", ("rail_yard",)),
    ("Scene", "id", ""),
    ("Scene", "acquired", NAIVE),
    ("Scene", "acquired", KST),
    ("Scene", "acquired", "2019-02-22"),
    ("Scene", "gsd", -1.0),
    ("Scene", "footprint", UTM_BOX),
    ("Scene", "bands", ()),
    ("Scene", "width", 0),
    ("Scene", "height", 2.5),
    ("Scene", "checksum", "abc"),
    ("Scene", "cloud_cover", 1.5),
    ("Scene", "off_nadir", 95.0),
    ("Observation", "site_id", "Sanumdong"),
    ("Observation", "acquired", NAIVE),
    ("Observation", "valid_fraction", 1.01),
    ("Observation", "shift", (1.0,)),
    ("Observation", "shift", (NAN, 0.0)),
    ("Observation", "shift_confidence", -0.1),
    ("Observation", "chip_path", ""),
    ("Detection", "class_name", ""),
    ("Detection", "score", 1.2),
    ("Detection", "geometry", Polygon()),
    ("Detection", "zone_id", "Bad Zone"),
    ("Detection", "detector", ""),
    ("ChangeRegion", "reference_observation_id", ""),
    ("ChangeRegion", "geometry", Point(1, 1)),
    ("ChangeRegion", "area_m2", 0.0),
    ("ChangeRegion", "mean_probability", -0.5),
    ("IndicatorValue", "zone_id", "has space"),
    ("IndicatorValue", "value", float("inf")),
    ("IndicatorValue", "quality", 2.0),
    ("IndicatorValue", "acquired", NAIVE),
    ("Alert", "created", NAIVE),
    ("Alert", "value", NAN),
    ("Alert", "score", "high"),
    ("Alert", "explanation", ""),
    ("Alert", "p_value", 1.5),
    ("Alert", "state", "closed"),
    ("Assessment", "author", ""),
    ("Assessment", "judgement", "maybe"),
    ("Assessment", "confidence", "total"),
    ("Assessment", "hypotheses", ("",)),
]


@pytest.mark.parametrize("type_name", sorted(FACTORIES))
def test_good_values_build(type_name: str) -> None:
    value = FACTORIES[type_name]()
    assert type(value).__name__ == type_name
    first_field = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first_field, "changed")


@pytest.mark.parametrize(("type_name", "field", "bad"), BAD_VALUES,
                         ids=[f"{t}.{f}={b!r}"[:60] for t, f, b in BAD_VALUES])
def test_bad_value_names_the_field(type_name: str, field: str, bad: object) -> None:
    with pytest.raises(ValidationError) as caught:
        FACTORIES[type_name](**{field: bad})
    assert caught.value.type_name == type_name
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{type_name}.{field}: ")
    assert isinstance(caught.value, ValueError)  # callers may catch the builtin


def test_string_enums_are_coerced() -> None:
    assert good_zone(kind="parking").kind is ZoneKind.PARKING
    assert good_alert(state="confirmed").state is AlertState.CONFIRMED
    assessment = good_assessment(judgement="very likely", confidence="high")
    assert assessment.judgement is Likelihood.VERY_LIKELY
    assert assessment.confidence is Confidence.HIGH


def test_indicator_not_observed_is_not_zero() -> None:
    assert not good_indicator(value=None, quality=0.0).observed
    assert good_indicator(value=0.0).observed


def test_site_lookup_by_name_and_alias() -> None:
    site = good_site()
    assert site.matches("SAN'UM-DONG") and site.matches("sanumdong") and not site.matches("sohae")
    assert site.zone("rail_yard").kind is ZoneKind.RAIL_YARD
    with pytest.raises(KeyError, match="rail_yard"):
        site.zone("pad")


def test_time_helpers() -> None:
    assert ensure_utc(NAIVE) == datetime(2019, 2, 22, 2, 30, tzinfo=UTC)
    assert ensure_utc(KST) == datetime(2019, 2, 22, 2, 30, tzinfo=UTC)
    assert parse_utc("2019-02-22T02:30:00Z") == WHEN
    assert parse_utc("2019-02-22") == datetime(2019, 2, 22, tzinfo=UTC)
    with pytest.raises(ValueError, match="2019-02-22"):
        parse_utc("22/02/2019")
    for edge in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):  # representable only locally
        with pytest.raises(ValueError, match="outside the years 1 to 9999"):
            parse_utc(edge)
    assert parse_utc("0001-01-01T00:00:00-01:00") == datetime(1, 1, 1, 1, tzinfo=UTC)


def test_a_date_alone_bounds_the_whole_day() -> None:
    last = parse_utc_bound("2019-02-22", upper=True)
    assert last == datetime(2019, 2, 22, 23, 59, 59, 999999, tzinfo=UTC)
    assert WHEN <= last < datetime(2019, 2, 23, tzinfo=UTC)  # that day's 02:30 image is inside
    assert parse_utc_bound("2019-02-22", upper=False) == datetime(2019, 2, 22, tzinfo=UTC)
    assert parse_utc_bound("2019-02-22T02:30:00Z", upper=True) == WHEN  # a time is taken as written
    with pytest.raises(ValueError, match="2019-02-22"):
        parse_utc_bound("22/02/2019", upper=True)


# --- UTM maths, against pyproj ---------------------------------------------------------------------

LONS = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)
LATS = st.floats(min_value=-80.0, max_value=84.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(lon=LONS, lat=LATS)
def test_utm_zone_holds_the_point(lon: float, lat: float) -> None:
    code = utm_epsg(lon, lat)
    assert (32601 <= code <= 32660) if lat >= 0 else (32701 <= code <= 32760)
    zone = code % 100
    central_meridian = -183.0 + 6.0 * zone
    # the point lies within its zone's 6° band (the ±180° seam belongs to zone 60 or 1)
    assert abs(lon - central_meridian) <= 3.0 + 1e-9 or abs(abs(lon) - 180.0) < 1e-9
    crs = CRS.from_epsg(code)
    assert crs.utm_zone == f"{zone}{'N' if lat >= 0 else 'S'}"


@settings(max_examples=100, deadline=None)
@given(lon=st.floats(min_value=-179.0, max_value=179.0), lat=st.floats(min_value=-79.0, max_value=83.0))
def test_utm_round_trip_is_exact_enough(lon: float, lat: float) -> None:
    code = utm_epsg(lon, lat)
    forward = Transformer.from_crs(4326, code, always_xy=True)
    backward = Transformer.from_crs(code, 4326, always_xy=True)
    easting, northing = forward.transform(lon, lat)
    assert 100_000 < easting < 900_000  # inside the zone, the projection stays well-conditioned
    back_lon, back_lat = backward.transform(easting, northing)
    assert back_lon == pytest.approx(lon, abs=1e-7)
    assert back_lat == pytest.approx(lat, abs=1e-7)


@pytest.mark.parametrize(("lon", "lat"), [(181.0, 0.0), (0.0, 85.0), (0.0, -81.0), (float("nan"), 0.0)])
def test_utm_outside_domain_says_the_order(lon: float, lat: float) -> None:
    with pytest.raises(ValueError, match="longitude, latitude"):
        utm_epsg(lon, lat)


@settings(max_examples=100, deadline=None)
@given(lon=st.floats(min_value=-179.0, max_value=178.9), lat=st.floats(min_value=-79.0, max_value=83.9),
       size=st.floats(min_value=1e-4, max_value=0.1))
def test_site_grid_epsg_is_its_centres_zone(lon: float, lat: float, size: float) -> None:
    outline = box(lon, lat, lon + size, lat + size)
    site = Site("s", "S", "XX", "other", outline)
    assert is_lonlat(outline)
    assert site.utm_epsg == utm_epsg(outline.centroid.x, outline.centroid.y)
