"""Acquisition time and provenance: tags first, then a STAC item beside the file, then the file name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sitewatch.imagery.acquisition import (
    acquisition_time,
    find_stac_item,
    parse_timestamp,
    sensor_from_filename,
    time_from_filename,
    time_from_tags,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("TERRA_MODIS_012010_NDVI_2014-07-28.jp2", datetime(2014, 7, 28, tzinfo=UTC)),
        ("site_20190222.tif", datetime(2019, 2, 22, tzinfo=UTC)),
        ("S2A_MSIL2A_20190222T021659_N0211_R003_T51SXC_20190301T051234.tif",
         datetime(2019, 2, 22, 2, 16, 59, tzinfo=UTC)),
        ("wv2_2019-03-05T02:31:07.tif", datetime(2019, 3, 5, 2, 31, 7, tzinfo=UTC)),
        ("LT51200382000124BJC00_Nanjing", datetime(2000, 5, 3, tzinfo=UTC)),
        ("MOD13Q1.A2014123.h12v10.tif", datetime(2014, 5, 3, tzinfo=UTC)),
    ],
)
def test_dates_in_file_names(name: str, expected: datetime) -> None:
    assert time_from_filename(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "2000TM",  # a year alone is not a date
        "scene_2014123.tif",  # a bare 7-digit run could be YYYYDDD or a counter: ambiguous
        "product_12345678901.tif",  # digits running on are a counter, not YYYYMMDD
        "x_20191340.tif",  # month 13 does not exist
        "x_18000101.tif",  # before any Earth-observation satellite
    ],
)
def test_no_date_when_the_name_is_ambiguous(name: str) -> None:
    assert time_from_filename(name) is None


def test_tags_in_provider_formats() -> None:
    assert time_from_tags({"ACQUISITIONDATETIME": "2019-02-22 02:31:00.000"}) == datetime(
        2019, 2, 22, 2, 31, tzinfo=UTC)
    # Landsat MTL style: a date plus the scene-centre time with 7 fractional digits.
    landsat = {"DATE_ACQUIRED": "2018-07-20", "SCENE_CENTER_TIME": '"02:11:43.9871230Z"'}
    assert time_from_tags(landsat) == datetime(2018, 7, 20, 2, 11, 43, 987123, tzinfo=UTC)
    assert time_from_tags({"IMAGE_1.firstLineTime": "2019-03-02T02:41:12.123456Z"}).day == 2  # type: ignore[union-attr]
    assert time_from_tags({"acquisition_date": "2019-03-02"}) == datetime(2019, 3, 2, tzinfo=UTC)
    assert time_from_tags({"DESCRIPTION": "2019-03-02"}) is None


def test_timestamps_become_aware_utc() -> None:
    assert parse_timestamp("2019:02:22 10:00:00") == datetime(2019, 2, 22, 10, tzinfo=UTC)
    assert parse_timestamp("2019-02-22T10:00:00+09:00") == datetime(2019, 2, 22, 1, tzinfo=UTC)
    assert parse_timestamp("not a date") is None
    assert parse_timestamp("") is None


def _write_stac(path: Path, **properties: object) -> None:
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "geometry": None,
            "properties": properties, "assets": {}, "links": []}
    path.write_text(json.dumps(item), encoding="utf-8")


def test_stac_item_beside_the_file(tmp_path: Path) -> None:
    image = tmp_path / "scene.tif"
    image.write_bytes(b"")
    _write_stac(tmp_path / "scene.json", datetime="2019-02-22T02:31:00Z", **{
        "eo:cloud_cover": 12.5, "view:off_nadir": 17.2, "license": "CC-BY-4.0",
        "providers": [{"name": "Maxar", "roles": ["producer"]}, {"name": "Example"}],
        "platform": "worldview-2", "instruments": ["wv110"]})
    sidecar = find_stac_item(image)
    assert sidecar is not None
    assert sidecar.acquired == datetime(2019, 2, 22, 2, 31, tzinfo=UTC)
    assert sidecar.cloud_cover == pytest.approx(0.125)
    assert sidecar.off_nadir == pytest.approx(17.2)
    assert sidecar.license == "CC-BY-4.0"
    assert sidecar.attribution == "Maxar, Example"
    assert sidecar.sensor == "worldview-2/wv110"


def test_stac_named_after_the_full_name_and_bad_sidecars_ignored(tmp_path: Path) -> None:
    image = tmp_path / "scene.tif"
    image.write_bytes(b"")
    (tmp_path / "scene.json").write_text("{ not json", encoding="utf-8")
    assert find_stac_item(image) is None
    _write_stac(tmp_path / "scene.tif.stac.json", datetime="2019-03-05T00:00:00Z")
    sidecar = find_stac_item(image)
    assert sidecar is not None and sidecar.acquired == datetime(2019, 3, 5, tzinfo=UTC)


def test_order_of_sources(tmp_path: Path) -> None:
    image = tmp_path / "scene_20190101.tif"
    image.write_bytes(b"")
    processing = {"TIFFTAG_DATETIME": "2020:06:01 12:00:00"}
    # The file name beats TIFFTAG_DATETIME, which tools set to the processing time.
    assert acquisition_time(image, processing, None) == datetime(2019, 1, 1, tzinfo=UTC)
    _write_stac(tmp_path / "scene_20190101.json", datetime="2019-01-02T00:00:00Z")
    stac = find_stac_item(image)
    assert acquisition_time(image, processing, stac) == datetime(2019, 1, 2, tzinfo=UTC)
    tags = {**processing, "ACQUISITIONDATETIME": "2019-01-03T00:00:00Z"}
    assert acquisition_time(image, tags, stac) == datetime(2019, 1, 3, tzinfo=UTC)
    undated = tmp_path / "scene.tif"
    assert acquisition_time(undated, processing, None) == datetime(2020, 6, 1, 12, tzinfo=UTC)
    assert acquisition_time(undated, {}, None) is None


def test_sensor_from_a_landsat_scene_id() -> None:
    assert sensor_from_filename("LT51200382000124BJC00_Nanjing") == "landsat-5/tm"
    assert sensor_from_filename("LE71190382000077SGS00.tif") == "landsat-7/etm+"
    assert sensor_from_filename("scene_2019-02-22.tif") is None
