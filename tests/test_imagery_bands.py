"""Bands found by name: red, green and blue wherever they sit, never 'the first three'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp

from sitewatch.imagery.bands import canonical_band, find_bands, rgb_bands, unnamed
from sitewatch.imagery.readers import band_names


@pytest.mark.parametrize(("names", "expected"), [
    (("red", "green", "blue"), (0, 1, 2)),
    (("red", "green", "blue", "nir"), (0, 1, 2)),                                  # NAIP
    (("coastal", "blue", "green", "yellow", "red", "red_edge", "nir1", "nir2"), (4, 2, 1)),  # WorldView-3
    (("Blue", "Green", "Red", "NIR"), (2, 1, 0)),                                  # GDAL / Sentinel order
    (("R", "G", "B"), (0, 1, 2)),
    ((" RED ", "Green", "blue"), (0, 1, 2)),
    (("nir", "red", "green"), None),                                               # false colour: no blue
    (("b1", "b2", "b3"), None),                                                    # unnamed
    (("", "", ""), None),
    (("Band 1", "Band 2", "Band 3"), None),
    (("red-edge", "green", "blue"), None),                                         # red edge is not red
])
def test_rgb_by_name(names: tuple[str, ...], expected: tuple[int, int, int] | None) -> None:
    assert rgb_bands(names) == expected


def test_canonical_names_and_unnamed_bands() -> None:
    assert canonical_band("Red Edge") == "red_edge" and canonical_band("B") == "blue"
    assert canonical_band("b12") == "" and canonical_band("band_3") == ""
    assert unnamed(("b1", "b2", "")) and not unnamed(("b1", "nir"))
    assert find_bands(("nir", "red"), ("red", "nir")) == (1, 0)
    assert find_bands(("red",), ("red", "nir")) is None


def _tiff(path: Path, count: int, interpretation: list[ColorInterp] | None,
          descriptions: list[str] | None = None) -> Path:
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": count, "dtype": "uint8",
               "crs": "EPSG:32633", "transform": Affine(0.5, 0, 500000, 0, -0.5, 5000000)}
    if count == 3 and interpretation is None:
        profile["photometric"] = "MINISBLACK"
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.zeros((count, 8, 8), np.uint8))
        if interpretation is not None:
            dataset.colorinterp = interpretation
        for index, description in enumerate(descriptions or [], start=1):
            dataset.set_band_description(index, description)
    return path


def test_band_names_from_descriptions_then_colour_interpretation(tmp_path: Path) -> None:
    rgb = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    cases = {
        "interpretation": (_tiff(tmp_path / "a.tif", 3, rgb), ("red", "green", "blue")),
        "descriptions win": (
            _tiff(tmp_path / "b.tif", 3, rgb, ["nir", "red", "green"]), ("nir", "red", "green")),
        "grey is no colour": (_tiff(tmp_path / "c.tif", 3, None), ("b1", "b2", "b3")),
        "alpha is no band name": (
            _tiff(tmp_path / "d.tif", 4, [*rgb, ColorInterp.alpha]), ("red", "green", "blue", "b4")),
    }
    for case, (path, expected) in cases.items():
        with rasterio.open(path) as dataset:
            assert band_names(dataset) == expected, case
