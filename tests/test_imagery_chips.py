"""Chips: resampling onto the site grid, the valid mask, COG round trips, windowed reads."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from shapely.geometry import box

from sitewatch.core.types import Site
from sitewatch.imagery.chips import (
    OVERVIEWS_ABOVE,
    Chip,
    _lattice_offset,
    choose_resampling,
    extract_chip,
    read_chip,
    write_chip,
)
from sitewatch.imagery.grid import SiteGrid, site_grid

UTM52 = "EPSG:32652"


def write_geotiff(path: Path, array: np.ndarray, transform: Affine, *, crs: str = UTM52,
                  nodata: float | None = None, alpha: np.ndarray | None = None) -> Path:
    count = array.shape[0] + (1 if alpha is not None else 0)
    profile: dict[str, object] = {"driver": "GTiff", "width": array.shape[2], "height": array.shape[1],
                                  "count": count, "dtype": array.dtype.name, "crs": crs,
                                  "transform": transform}
    if nodata is not None:
        profile["nodata"] = nodata
    if alpha is not None:
        profile["photometric"] = "RGB"
        profile["alpha"] = "YES"
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array, indexes=list(range(1, array.shape[0] + 1)))
        if alpha is not None:
            dataset.write(alpha, count)
    return path


def _grid(west: float = 500_000, north: float = 4_300_000, size: int = 40, gsd: float = 1.0) -> SiteGrid:
    transform = Affine(gsd, 0, west, 0, -gsd, north)
    return SiteGrid(epsg=32652, transform=transform, width=size, height=size, gsd=gsd)


def test_source_on_the_grid_comes_back_exactly(tmp_path: Path) -> None:
    values = np.random.default_rng(1).integers(0, 4000, (2, 60, 60)).astype("uint16")
    path = write_geotiff(tmp_path / "s.tif", values, Affine(1.0, 0, 499_990, 0, -1.0, 4_300_010))
    chip = extract_chip(path, _grid())
    assert chip.array.dtype == np.uint16 and chip.array.shape == (2, 40, 40)
    assert chip.valid.all() and chip.valid_fraction == 1.0
    np.testing.assert_array_equal(chip.array, values[:, 10:50, 10:50])


def test_partial_cover_and_nodata_are_invalid(tmp_path: Path) -> None:
    values = np.full((1, 40, 40), 100, dtype="uint8")
    values[:, :, :10] = 0  # nodata stripe on the west
    # the source covers only the northern half of the grid
    path = write_geotiff(tmp_path / "s.tif", values[:, :20, :], Affine(1.0, 0, 500_000, 0, -1.0, 4_300_000),
                         nodata=0)
    chip = extract_chip(path, _grid())
    assert chip.valid_fraction == pytest.approx(0.5 * 0.75, abs=0.03)
    assert not chip.valid[25:, :].any() and not chip.valid[:, :8].any()
    assert (chip.array[0][chip.valid] == 100).all()  # nodata never bleeds into valid pixels
    assert (chip.array[0][~chip.valid] == 0).all()


def test_alpha_band_masks_pixels(tmp_path: Path) -> None:
    rgb = np.full((3, 40, 40), 90, dtype="uint8")
    alpha = np.full((40, 40), 255, dtype="uint8")
    alpha[:20] = 0
    path = write_geotiff(tmp_path / "rgba.tif", rgb, Affine(1.0, 0, 500_000, 0, -1.0, 4_300_000), alpha=alpha)
    chip = extract_chip(path, _grid())
    assert chip.array.shape[0] == 4  # alpha stays a band of the chip; it also drives the mask
    assert chip.valid_fraction == pytest.approx(0.5, abs=0.05)
    assert not chip.valid[:18].any() and chip.valid[22:].all()


def test_nan_pixels_and_all_nan_bands_are_invalid(tmp_path: Path) -> None:
    values = np.ones((2, 40, 40), dtype="float32")
    values[0, :, :20] = np.nan  # one band NaN: the pixel is not fully observed
    path = write_geotiff(tmp_path / "f.tif", values, Affine(1.0, 0, 500_000, 0, -1.0, 4_300_000))
    chip = extract_chip(path, _grid())
    assert chip.valid_fraction == pytest.approx(0.5, abs=0.05)
    assert np.isnan(chip.array[:, ~chip.valid]).all()
    assert np.isfinite(chip.array[:, chip.valid]).all()
    all_nan = write_geotiff(tmp_path / "nan.tif", np.full((2, 40, 40), np.nan, dtype="float32"),
                            Affine(1.0, 0, 500_000, 0, -1.0, 4_300_000))
    assert extract_chip(all_nan, _grid()).valid_fraction == 0.0


def test_grid_outside_the_image_gives_an_empty_chip(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "s.tif", np.ones((1, 10, 10), "uint8"),
                         Affine(1.0, 0, 600_000, 0, -1.0, 4_300_000))
    chip = extract_chip(path, _grid())
    assert chip.valid_fraction == 0.0 and chip.array.shape == (1, 40, 40)


def test_resampling_choice() -> None:
    assert choose_resampling(0.3, 1.0) is Resampling.average
    assert choose_resampling(0.5, 0.5) is Resampling.bilinear
    assert choose_resampling(30.0, 10.0) is Resampling.bilinear


def test_downsampling_averages(tmp_path: Path) -> None:
    # a 0.25 m checkerboard of 0 and 200 becomes a flat 100 at 1 m (nearest would keep 0 or 200)
    checker = (np.indices((160, 160)).sum(axis=0) % 2 * 200).astype("uint8")[None]
    path = write_geotiff(tmp_path / "fine.tif", checker, Affine(0.25, 0, 500_000, 0, -0.25, 4_300_000))
    chip = extract_chip(path, _grid())
    assert chip.valid.all()
    assert np.abs(chip.array.astype(int) - 100).max() <= 1


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_cog_round_trip(tmp_path: Path, dtype: str) -> None:
    grid = _grid(size=700)
    rng = np.random.default_rng(3)
    valid = np.ones(grid.shape, dtype=bool)
    valid[:100, :50] = False
    chip = Chip(array=rng.integers(0, np.iinfo(dtype).max, (3, *grid.shape)).astype(dtype), valid=valid,
                bands=("red", "green", "blue"))
    path = write_chip(chip, grid, tmp_path / "chip.tif")
    with rasterio.open(path) as dataset:
        assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert dataset.profile["tiled"] and dataset.profile["compress"] == "deflate"
        assert dataset.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"  # lossless: pixels below equal
        assert not dataset.overviews(1), "a 700-pixel chip is read whole: no overviews"
        assert dataset.crs.to_epsg() == 32652 and dataset.transform == grid.transform
    back = read_chip(path)
    np.testing.assert_array_equal(back.array, chip.array)
    np.testing.assert_array_equal(back.valid, chip.valid)
    assert back.bands == ("red", "green", "blue")
    assert back.valid_fraction == pytest.approx(chip.valid_fraction)


def test_a_large_chip_gets_overviews(tmp_path: Path) -> None:
    grid = _grid(size=OVERVIEWS_ABOVE + 1)
    valid = np.ones(grid.shape, dtype=bool)
    valid[:300] = False
    array = np.where(valid, np.indices(grid.shape).sum(axis=0) % 251, 0).astype("uint8")[None]
    path = write_chip(Chip(array=array, valid=valid), grid, tmp_path / "large.tif")
    with rasterio.open(path) as dataset:
        assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert dataset.overviews(1) == [2, 4, 8]  # down to one 256-pixel tile
    back = read_chip(path)
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_array_equal(back.valid, valid)


def test_float_chip_round_trip_keeps_nan(tmp_path: Path) -> None:
    grid = _grid(size=20)
    array = np.linspace(-1, 1, 400, dtype="float32").reshape(1, 20, 20)
    valid = np.ones(grid.shape, dtype=bool)
    valid[5] = False
    array[:, 5] = np.nan
    back = read_chip(write_chip(Chip(array=array, valid=valid), grid, tmp_path / "f.tif"))
    np.testing.assert_array_equal(back.valid, valid)
    np.testing.assert_array_equal(back.array[:, valid], array[:, valid])


def test_only_the_window_over_the_grid_is_read(tmp_path: Path) -> None:
    """A scene declaring 46,000 x 46,000 pixels (2 GB a band) gives a chip in well under a second."""
    small = write_geotiff(tmp_path / "small.tif", np.full((1, 64, 64), 50, "uint8"),
                          Affine(0.5, 0, 500_000, 0, -0.5, 4_300_000))
    vrt = tmp_path / "huge.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="46000" rasterYSize="46000"><SRS>EPSG:32652</SRS>'
        "<GeoTransform>500000, 0.5, 0, 4300000, 0, -0.5</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><NoDataValue>0</NoDataValue><SimpleSource>'
        f"<SourceFilename>{small}</SourceFilename><SourceBand>1</SourceBand>"
        '<SrcRect xOff="0" yOff="0" xSize="64" ySize="64"/><DstRect xOff="0" yOff="0" xSize="64" ySize="64"/>'
        "</SimpleSource></VRTRasterBand></VRTDataset>", encoding="utf-8")
    started = time.perf_counter()
    chip = extract_chip(vrt, _grid(size=64, gsd=0.5))
    assert time.perf_counter() - started < 5.0
    assert chip.valid_fraction == pytest.approx(1.0)
    assert (chip.array == 50).all()


def test_real_rgb_byte_chip(test_data: Path) -> None:
    # a site straddling the image's black nodata collar on the west
    site = Site(id="andros", name="Andros", country="BS", category="test",
                geometry=box(-79.1, 24.3, -78.6, 24.6), gsd=100.0)
    grid = site_grid(site)
    chip = extract_chip(test_data / "RGB.byte.tif", grid)
    assert chip.array.dtype == np.uint8 and chip.array.shape == (3, *grid.shape)
    assert 0.1 < chip.valid_fraction < 0.9
    assert chip.array[:, chip.valid].mean() > 5  # real reflectance where valid
    # the west of the grid lies outside the image: invalid
    assert not chip.valid[:, :5].any()


def test_real_modis_chip_upsampled(shared_data: Path) -> None:
    site = Site(id="sinop", name="Sinop", country="BR", category="test",
                geometry=box(-55.55, -11.70, -55.45, -11.60), gsd=100.0)
    grid = site_grid(site)
    image = shared_data / "sits_modis_ndvi_timeseries" / "TERRA_MODIS_012010_NDVI_2014-03-22.jp2"
    chip = extract_chip(image, grid)
    assert chip.array.dtype == np.int16 and chip.valid_fraction == 1.0
    assert -2000 < chip.array.mean() < 10000  # NDVI x 10000


def test_heavy_downsampling_reads_decimated_and_stays_accurate(tmp_path: Path) -> None:
    # 0.1 m source, 2 m grid: the window is averaged down by 20 while read, then warped.
    size = 2200
    east_metres = (np.arange(size, dtype="float32") + 0.5) * 0.1  # value = easting offset of the pixel
    ramp = np.broadcast_to(east_metres, (size, size))[None].copy()
    path = write_geotiff(tmp_path / "fine.tif", ramp, Affine(0.1, 0, 499_990, 0, -0.1, 4_300_010))
    chip = extract_chip(path, _grid(size=100, gsd=2.0))
    assert chip.valid.all()
    expected = 10.0 + (np.arange(100) + 0.5) * 2.0  # grid starts 10 m east of the source
    np.testing.assert_allclose(chip.array[0].mean(axis=0), expected, atol=0.15)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int32"])
@pytest.mark.parametrize("masking", ["nodata", "internal mask", "alpha"])
@pytest.mark.parametrize("resampling", [None, Resampling.nearest, Resampling.bilinear])
def test_grid_on_the_image_lattice_is_read_as_the_warp_would_give(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: str, masking: str,
        resampling: Resampling | None) -> None:
    """A grid that is a whole-pixel crop of the image is read, not warped: the same chip either way,
    unobserved pixels and grids reaching past the image's edges included."""
    rng = np.random.default_rng(sum(map(ord, dtype + masking)))
    info = np.iinfo(dtype)
    values = rng.integers(max(info.min, -3000), min(info.max, 3000), (3, 50, 70), endpoint=True).astype(dtype)
    observed = rng.random((50, 70)) > 0.2
    observed[10:14, :] = False
    path = tmp_path / "s.tif"
    profile: dict[str, object] = {"driver": "GTiff", "width": 70, "height": 50, "count": 3, "dtype": dtype,
                                  "crs": UTM52, "transform": Affine(0.5, 0, 500_000, 0, -0.5, 4_300_000)}
    if masking == "nodata":
        profile["nodata"] = 7
        values[:, ~observed] = 7
        values[:, observed & (values[0] == 7)] = 8
    if masking == "alpha":
        profile.update(count=4, photometric="RGB", alpha="YES")
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(values, indexes=[1, 2, 3])
        if masking == "alpha":
            dataset.write(np.where(observed, 255, 0).astype(dtype), 4)
        if masking == "internal mask":
            dataset.write_mask(np.where(observed, 255, 0).astype("uint8"))
    fractions = []
    for west_px, north_px, size in ((5, 3, 40), (-6, -4, 30), (50, 30, 40), (0, 0, 50), (-20, 0, 10)):
        grid = _grid(west=500_000 + 0.5 * west_px, north=4_300_000 - 0.5 * north_px, size=size, gsd=0.5)
        with rasterio.open(path) as dataset:
            assert _lattice_offset(dataset, grid, resampling or Resampling.bilinear) == (north_px, west_px)
        read = extract_chip(path, grid, resampling=resampling)
        with monkeypatch.context() as patch:
            patch.setattr("sitewatch.imagery.chips._lattice_offset", lambda *_: None)
            warped = extract_chip(path, grid, resampling=resampling)
        np.testing.assert_array_equal(read.valid, warped.valid)
        np.testing.assert_array_equal(read.array, warped.array)
        assert read.array.dtype == warped.array.dtype and read.bands == warped.bands
        fractions.append(read.valid_fraction)
    assert fractions[0] > 0.5 and fractions[-1] == 0.0  # the last grid lies west of the image


def test_grid_off_the_image_lattice_is_warped(tmp_path: Path) -> None:
    """Half a pixel off the lattice, bilinear interpolates (a read would be a half-pixel shift)."""
    values = np.zeros((1, 40, 40), dtype="uint8")
    values[:, :, 20:] = 200
    path = write_geotiff(tmp_path / "s.tif", values, Affine(1.0, 0, 499_990, 0, -1.0, 4_300_010))
    chip = extract_chip(path, _grid(west=500_000.5, size=20))
    assert set(np.unique(chip.array[0, 5])) == {0, 100, 200}
