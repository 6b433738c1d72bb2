"""inspect_image on real and hand-made files, and every refusal naming the file and the fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point

from sitewatch.core.errors import ImageryError, NotGeoreferencedError, UnsupportedInputError
from sitewatch.imagery.errors import (
    EmptyImageError,
    ImageTooLargeError,
    MissingAcquisitionTimeError,
    UnreadableImageError,
    UnsupportedCrsError,
)
from sitewatch.imagery.readers import inspect_image, sha256_file

WHEN = datetime(2019, 2, 22, tzinfo=UTC)
UTM_TRANSFORM = Affine(0.5, 0, 500_000, 0, -0.5, 4_300_000)


def write_geotiff(path: Path, array: np.ndarray, *, crs: str | None = "EPSG:32652",
                  transform: Affine | None = UTM_TRANSFORM,
                  nodata: float | None = None, tags: dict[str, str] | None = None) -> Path:
    """A small GeoTIFF (bands, rows, cols); crs/transform None make an un-georeferenced TIFF."""
    profile: dict[str, object] = {"driver": "GTiff", "width": array.shape[2], "height": array.shape[1],
                                  "count": array.shape[0], "dtype": array.dtype.name}
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array)
        if tags:
            dataset.update_tags(**tags)
    return path


def _noise(bands: int = 1, size: int = 64, dtype: str = "uint8") -> np.ndarray:
    return np.random.default_rng(7).integers(1, 200, (bands, size, size)).astype(dtype)


def test_rgb_byte_geotiff(test_data: Path) -> None:
    path = test_data / "RGB.byte.tif"
    scene = inspect_image(path, acquired=datetime(2001, 5, 1), sensor="landsat-7")
    assert scene.checksum == sha256_file(path) and scene.id == scene.checksum[:16]
    assert scene.crs == "EPSG:32618"
    assert scene.gsd == pytest.approx(300.04, abs=0.01)
    # no band descriptions: the names come from the file's colour interpretation
    assert (scene.width, scene.height, scene.bands) == (791, 718, ("red", "green", "blue"))
    assert scene.acquired == datetime(2001, 5, 1, tzinfo=UTC)  # naive input taken as UTC
    assert scene.sensor == "landsat-7"
    assert scene.uri == str(path.resolve())
    # Bahamas: the footprint is about 2.4° x 2° around (-77.8, 24.6), edges densified
    assert scene.footprint.contains(Point(-77.8, 24.6))
    west, _, _, north = scene.footprint.bounds
    assert west == pytest.approx(-78.96, abs=0.01) and north == pytest.approx(25.55, abs=0.01)
    assert len(scene.footprint.exterior.coords) > 16


def test_without_a_date_it_asks_for_acquired(test_data: Path) -> None:
    with pytest.raises(MissingAcquisitionTimeError, match="--acquired") as caught:
        inspect_image(test_data / "RGB.byte.tif")
    assert "RGB.byte.tif" in str(caught.value)


def test_tags_give_time_sensor_and_quality(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "scene.tif", _noise(), tags={
        "ACQUISITIONDATETIME": "2019-02-22T02:31:00Z", "SATELLITEID": "WV02", "CLOUDCOVER": "8",
        "TIFFTAG_COPYRIGHT": "(c) Example Imaging"})
    scene = inspect_image(path)
    assert scene.acquired == datetime(2019, 2, 22, 2, 31, tzinfo=UTC)
    assert scene.sensor == "WV02"
    assert scene.cloud_cover == pytest.approx(0.08)
    assert scene.attribution == "(c) Example Imaging"
    assert scene.gsd == pytest.approx(0.5)
    # the caller's values win over the file's
    assert inspect_image(path, acquired=WHEN, sensor="mine").sensor == "mine"
    assert inspect_image(path, acquired=WHEN).acquired == WHEN


def test_stac_item_beside_the_file(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "scene.tif", _noise())
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "scene", "geometry": None, "links": [],
            "assets": {}, "properties": {"datetime": "2019-03-05T02:00:00Z", "eo:cloud_cover": 3,
                                         "view:off_nadir": 21.5, "license": "CC-BY-4.0",
                                         "platform": "worldview-3", "providers": [{"name": "Maxar"}]}}
    (tmp_path / "scene.json").write_text(json.dumps(item), encoding="utf-8")
    scene = inspect_image(path)
    assert scene.acquired == datetime(2019, 3, 5, 2, tzinfo=UTC)
    assert (scene.cloud_cover, scene.off_nadir) == (pytest.approx(0.03), pytest.approx(21.5))
    assert (scene.license, scene.attribution, scene.sensor) == ("CC-BY-4.0", "Maxar", "worldview-3")


def test_geographic_crs_gsd_is_in_metres(tmp_path: Path) -> None:
    step = 0.0001  # degrees
    path = write_geotiff(tmp_path / "geo_2019-02-22.tif", _noise(), crs="EPSG:4326",
                         transform=Affine(step, 0, 124.7, 0, -step, 39.67))
    scene = inspect_image(path)
    lat = np.radians(39.67)
    across = 111_320 * np.cos(lat) * step
    along = 111_030 * step  # metres per degree of latitude near 40°
    assert scene.gsd == pytest.approx((across + along) / 2, rel=0.01)
    assert scene.crs == "EPSG:4326"


def test_band_descriptions_become_band_names(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "s_20190222.tif", _noise(bands=2))
    with rasterio.open(path, "r+") as dataset:
        dataset.set_band_description(1, "red")
    assert inspect_image(path).bands == ("red", "b2")


def test_unnamed_bands_take_the_names_the_caller_gives(tmp_path: Path) -> None:
    # Like NAIP: four uint8 bands without descriptions. GDAL gives the first three a red, green, blue
    # interpretation by default, which holds for NAIP but not for a Planet blue, green, red, NIR
    # image: the names the caller gives win.
    path = write_geotiff(tmp_path / "naip_20190904.tif", _noise(bands=4))
    assert inspect_image(path).bands == ("red", "green", "blue", "b4")
    assert inspect_image(path, bands=["blue", "green", "red", "nir"]).bands == ("blue", "green", "red", "nir")
    assert inspect_image(path, bands=["Red", "green", "blue", "NIR"]).bands == ("red", "green", "blue", "nir")
    for wrong in (["red", "green", "blue"], ["red", "red", "blue", "nir"], ["red", "", "blue", "nir"]):
        with pytest.raises(UnsupportedInputError, match="--bands red,green,blue,nir") as caught:
            inspect_image(path, bands=wrong)
        assert str(path) in str(caught.value) and "4 band(s)" in str(caught.value)


# --- refusals ------------------------------------------------------------------------------------


def _refused(path: Path, error: type[ImageryError], match: str) -> str:
    with pytest.raises(error, match=match) as caught:
        inspect_image(path, acquired=WHEN)
    message = str(caught.value)
    assert str(path) in message  # names the file
    assert isinstance(caught.value, OSError)  # callers may catch the builtin
    return message


def test_zero_size_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tif"
    path.write_bytes(b"")
    assert "download it again" in _refused(path, EmptyImageError, "empty")


def test_missing_file(tmp_path: Path) -> None:
    _refused(tmp_path / "nowhere.tif", ImageryError, "no such file")


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.tif"
    path.write_text("these are not pixels\n" * 50, encoding="utf-8")
    _refused(path, UnreadableImageError, "cannot open it")


def test_truncated_tiff_is_caught_before_any_chip(tmp_path: Path) -> None:
    whole = write_geotiff(tmp_path / "whole.tif", _noise(size=400))
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    message = _refused(truncated, UnreadableImageError, "truncated")
    assert "TIFFReadEncodedStrip" in message or "Read" in message  # GDAL's own reason is kept


def test_not_georeferenced(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "plain.tif", _noise(), crs=None, transform=None)
    message = _refused(path, NotGeoreferencedError, "not georeferenced")
    assert "gdal_translate" in message


def test_crs_but_identity_transform(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "identity.tif", _noise(), transform=Affine.identity())
    _refused(path, NotGeoreferencedError, "no geotransform")


def _vrt(path: Path, *, width: int, height: int, srs: str, source: Path | None = None) -> Path:
    band = '<VRTRasterBand dataType="Byte" band="1">'
    if source is not None:
        band += (f"<SimpleSource><SourceFilename>{source}</SourceFilename><SourceBand>1</SourceBand>"
                 '<SrcRect xOff="0" yOff="0" xSize="64" ySize="64"/>'
                 '<DstRect xOff="0" yOff="0" xSize="64" ySize="64"/></SimpleSource>')
    band += "</VRTRasterBand>"
    path.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{srs}</SRS>'
        "<GeoTransform>500000, 0.5, 0, 4300000, 0, -0.5</GeoTransform>"
        f"{band}</VRTDataset>", encoding="utf-8")
    return path


def test_absurd_declared_size(tmp_path: Path) -> None:
    path = _vrt(tmp_path / "huge.vrt", width=200_000, height=200_000, srs="EPSG:32652")
    message = _refused(path, ImageTooLargeError, "200000x200000")
    assert "corrupt" in message


def test_engineering_crs_cannot_take_a_site_grid(tmp_path: Path) -> None:
    local = 'LOCAL_CS["plant floor",UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
    path = _vrt(tmp_path / "local.vrt", width=64, height=64, srs=local)
    _refused(path, UnsupportedCrsError, "engineering")


def test_corners_outside_the_earth(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "off.tif", _noise(), crs="EPSG:4326",
                         transform=Affine(1.0, 0, 170.0, 0, -1.0, 120.0))
    _refused(path, UnsupportedCrsError, "outside the Earth")


# --- real files from ../shared/data -----------------------------------------------------------------


def test_envi_landsat_files(shared_data: Path) -> None:
    folder = shared_data / "landsat_taizhou_nanjing_cd"
    nanjing = inspect_image(folder / "Nanjing" / "LT51200382000124BJC00_Nanjing")
    assert nanjing.acquired == datetime(2000, 5, 3, tzinfo=UTC)  # year + day 124 of the scene id
    assert (nanjing.crs, nanjing.gsd, nanjing.width, len(nanjing.bands)) == ("EPSG:32650", 30.0, 800, 6)
    assert "Band 1" in nanjing.bands[0] and nanjing.sensor == "landsat-5/tm"
    taizhou = inspect_image(folder / "Taizhou" / "2000TM", acquired=datetime(2000, 3, 17))
    assert taizhou.crs == "EPSG:32651" and taizhou.footprint.contains(Point(119.9, 32.49))


def test_worldview2_geotiff(shared_data: Path) -> None:
    scene = inspect_image(shared_data / "spacenet_atlanta_solaris_sample" / "sample_geotiff.tif",
                          acquired=datetime(2009, 12, 22), sensor="worldview-2")
    assert (scene.crs, scene.gsd, scene.bands) == ("EPSG:32616", 0.5, ("b1",))
    assert scene.footprint.contains(Point(-84.479, 33.638))


def test_modis_jpeg2000_sinusoidal(shared_data: Path) -> None:
    image = shared_data / "sits_modis_ndvi_timeseries" / "TERRA_MODIS_012010_NDVI_2014-03-22.jp2"
    scene = inspect_image(image)
    assert scene.acquired == datetime(2014, 3, 22, tzinfo=UTC)
    assert scene.gsd == pytest.approx(231.66, abs=0.01)
    assert scene.footprint.contains(Point(-55.5, -11.65))
