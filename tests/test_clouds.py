"""Opaque-cloud masks from pixels: clouds are flagged, bright roofs and dark scenes are not."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.clouds import CloudSettings, cloud_mask, full_scale, grow

BANDS = ("red", "green", "blue")


def ground(rows: int = 200, cols: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.empty((3, rows, cols), np.uint8)
    image[0], image[1], image[2] = 120, 105, 80  # brown ground
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def test_a_large_white_cloud_is_masked_with_its_rim() -> None:
    image = ground()
    rows, cols = np.ogrid[:200, :200]
    cloud = (rows - 100) ** 2 + (cols - 100) ** 2 < 40**2  # 1,256 px² radius 40 px at 1 m = 5,000 m²
    image[:, cloud] = 240
    mask = cloud_mask(image, np.ones((200, 200), bool), BANDS, gsd=1.0)
    assert mask[cloud].all()
    assert mask.sum() > cloud.sum()  # the translucent rim is included
    assert not mask[:, :20].any()


def test_bright_roofs_and_coloured_surfaces_are_not_clouds() -> None:
    image = ground()
    image[:, 20:40, 20:40] = 235  # a white roof of 400 m²: too small to be a cloud
    image[:, 100:190, 100:190] = np.array([230, 200, 60], np.uint8)[:, None, None]  # big yellow field
    assert not cloud_mask(image, np.ones((200, 200), bool), BANDS, gsd=1.0).any()


def test_single_band_images_get_no_mask_and_scale_follows_the_dtype() -> None:
    image = np.full((1, 50, 50), 250, np.uint8)
    assert not cloud_mask(image, np.ones((50, 50), bool), ("pan",), gsd=1.0).any()
    valid = np.ones((4, 4), bool)
    assert full_scale(np.zeros((3, 4, 4), np.uint8), valid) == 255.0
    assert full_scale(np.full((3, 4, 4), 2000, np.uint16), valid) == 2047.0
    assert full_scale(np.full((3, 4, 4), 8000, np.uint16), valid) == 10000.0
    assert full_scale(np.full((3, 4, 4), 0.3, np.float32), valid) == 1.0


def test_bad_settings_and_gsd_are_refused() -> None:
    with pytest.raises(UnsupportedInputError, match="edge_brightness"):
        CloudSettings(core_brightness=0.5, edge_brightness=0.7)
    with pytest.raises(UnsupportedInputError, match="gsd"):
        cloud_mask(ground(), np.ones((200, 200), bool), BANDS, gsd=0.0)


def test_the_clouds_of_a_real_landsat_scene_are_a_small_minority() -> None:
    from pathlib import Path

    with rasterio.open(Path(__file__).parent / "data" / "RGB.byte.tif") as dataset:
        image = dataset.read()
        gsd = abs(dataset.transform.a)
    valid = (image != 0).any(axis=0)
    mask = cloud_mask(image, valid, BANDS, gsd=gsd)
    share = mask.sum() / valid.sum()
    assert 0.01 < share < 0.15  # the scene has a cloud bank in the north and scattered cumulus
    north, south = mask[: mask.shape[0] // 3], mask[2 * mask.shape[0] // 3:]
    assert north.sum() > south.sum()


def _plain_cloud_mask(array: np.ndarray, valid: np.ndarray, gsd: float) -> np.ndarray:
    """The mask's formulas written plainly (as before issue 18): what the in-place version must give."""
    settings = CloudSettings()
    visible = array[:3].astype(np.float32)
    brightness = visible.mean(axis=0) / full_scale(array, valid)
    top, bottom = visible.max(axis=0), visible.min(axis=0)
    colourless = valid & ((top - bottom) / np.maximum(top, 1e-6) < settings.max_saturation)
    core = colourless & (brightness >= settings.core_brightness)
    labels, _ = ndimage.label(colourless & (brightness >= settings.edge_brightness), np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel())
    keep = np.zeros(sizes.shape, bool)
    keep[np.unique(labels[core])] = True
    keep &= sizes * gsd * gsd >= settings.min_area_m2
    keep[0] = False
    clouds = keep[labels]
    margin = round(settings.margin_m / gsd)
    if margin > 0 and clouds.any():
        clouds = ndimage.binary_dilation(clouds, structure=np.ones((3, 3), bool), iterations=margin)
    return clouds & valid


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_the_mask_is_the_plain_formulas_pixel_for_pixel(dtype: str) -> None:
    rng = np.random.default_rng(5)
    top = {"uint8": 255, "uint16": 4095, "float32": 1.0}[dtype]
    for gsd in (0.5, 1.0, 3.0):
        image = ground(240, 260, seed=int(gsd * 10)).astype(np.float64) / 255 * top
        rows, cols = np.ogrid[:240, :260]
        for centre_row, centre_col, radius in rng.integers(0, 260, (4, 3)) // (1, 1, 4):
            cloud = (rows - centre_row) ** 2 + (cols - centre_col) ** 2 < radius**2
            image[:, cloud] = top * rng.uniform(0.55, 0.98, (3, 1)) * rng.uniform(0.97, 1.0)
        image = image.astype(dtype)
        valid = rng.random((240, 260)) > 0.05
        mask = cloud_mask(image, valid, BANDS, gsd=gsd)
        assert mask.dtype == bool
        np.testing.assert_array_equal(mask, _plain_cloud_mask(image, valid, gsd))


def test_growing_is_repeated_dilation_by_the_square() -> None:
    rng = np.random.default_rng(2)
    for steps in (1, 2, 5, 20):
        mask = rng.random((90, 130)) > 0.997
        mask[0, 5] = mask[89, 129] = mask[45, 0] = True  # seeds on the edges
        expected = ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=steps)
        np.testing.assert_array_equal(grow(mask, steps), expected)
