"""Opaque-cloud masks from pixels: clouds are flagged, bright roofs and dark scenes are not."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.clouds import CloudSettings, cloud_mask, full_scale

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
