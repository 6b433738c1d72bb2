"""Co-registration: sub-pixel shifts recovered, untrustworthy cases refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from sitewatch.imagery.coregister import (
    CoregistrationError,
    CoregistrationSettings,
    apply_shift,
    coregister,
    estimate_shift,
)


def texture(seed: int = 0, size: int = 384) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=(3, size, size)), (0, 2, 2))
    return (smooth * 100 + 100).astype(np.float32)


def shifted(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    bands = [ndimage.shift(band, shift, order=3, mode="reflect") for band in image]
    return np.stack(bands).astype(np.float32)


@settings(max_examples=8, deadline=None)
@given(st.floats(-6, 6), st.floats(-6, 6))
def test_subpixel_shift_is_recovered(rows: float, cols: float) -> None:
    reference = texture()
    moving = shifted(reference, (rows, cols))
    registration = estimate_shift(reference, moving)
    assert registration.shift == pytest.approx((-rows, -cols), abs=0.15)
    assert registration.confidence > 0.5
    assert registration.tiles_agreeing == registration.tiles_used


def test_shift_on_real_landsat_with_new_noise(shared_data: Path) -> None:
    with rasterio.open(shared_data / "rasterio_landsat7_rgb" / "RGB.byte.tif") as source:
        reference = source.read(window=((200, 712), (200, 712))).astype(np.float32)
    rng = np.random.default_rng(3)
    moving = shifted(reference, (2.3, -1.6)) * 0.9 + 10 + rng.normal(0, 2, reference.shape).astype(np.float32)
    aligned, valid, registration = coregister(reference, moving)
    assert registration.shift == pytest.approx((-2.3, 1.6), abs=0.2)
    inner = (slice(None), slice(10, -10), slice(10, -10))
    before_error = np.abs(moving - reference)[inner].mean()
    after_error = np.abs(aligned * (1 / 0.9) - 10 / 0.9 - reference)[inner].mean()
    assert after_error < before_error / 2
    assert valid[10:-10, 10:-10].all()


def test_flat_images_are_refused() -> None:
    flat = np.full((3, 300, 300), 50.0, np.float32)
    with pytest.raises(CoregistrationError, match="texture"):
        estimate_shift(flat, flat)


def test_unrelated_images_are_refused_not_guessed() -> None:
    with pytest.raises(CoregistrationError, match="disagree"):
        estimate_shift(texture(1), texture(2))


def test_poor_overlap_is_refused() -> None:
    image = texture()
    valid = np.zeros(image.shape[1:], bool)
    valid[:100] = True
    with pytest.raises(CoregistrationError, match="valid on both dates"):
        estimate_shift(image, image, valid_moving=valid)


def test_implausible_shift_is_refused() -> None:
    reference = texture(size=512)
    moving = shifted(reference, (20.0, 0.0))
    with pytest.raises(CoregistrationError, match="plausible"):
        estimate_shift(reference, moving, settings=CoregistrationSettings(max_shift=5.0))


def test_different_grids_are_refused() -> None:
    with pytest.raises(CoregistrationError, match="one grid"):
        estimate_shift(texture(size=300), texture(size=256))


def test_apply_shift_marks_pixels_shifted_in_from_outside() -> None:
    image = texture(size=64)
    moved, valid = apply_shift(image, (3.0, -2.0))
    assert not valid[:3].any() and not valid[:, -2:].any()
    assert valid[3:, :-2].all()
    assert np.allclose(moved[:, 3:, :-2], image[:, :-3, 2:], atol=1e-3)
    assert not moved[:, :3].any() and not moved[:, :, -2:].any()  # what came from outside is 0
    same, all_valid = apply_shift(image, (0.0, 0.0))
    assert np.array_equal(same, image) and all_valid.all()


def test_apply_shift_is_scipy_bilinear_shift_inside_and_honours_invalid_sources() -> None:
    from scipy import ndimage

    image = texture(size=64)
    valid = np.ones(image.shape[1:], bool)
    valid[30, 40] = False
    moved, covered = apply_shift(image, (1.6, -2.3), valid=valid)
    expected = np.stack([ndimage.shift(band, (1.6, -2.3), order=1, mode="constant") for band in image])
    assert np.allclose(moved[:, covered], expected[:, covered], atol=1e-3)
    # rows 0-1 and the last 3 columns come from outside; pixel (30, 40) feeds (31..32, 37..38)
    assert not covered[:2].any() and not covered[:, -3:].any()
    assert not moved[:, :2].any() and not moved[:, :, -3:].any()  # 0 where not every tap is inside
    assert not covered[31:33, 37:39].any()
    assert covered.sum() == (64 - 2) * (64 - 3) - 4
