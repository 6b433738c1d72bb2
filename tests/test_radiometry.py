"""Radiometric normalisation on pseudo-invariant pixels, robust to the change itself."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from sitewatch.imagery.radiometry import RadiometryError, fit_radiometry, normalise_radiometry


def scene(seed: int = 0, size: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=(3, size, size)), (0, 3, 3))
    return (smooth * 300 + 120).astype(np.float32)


def test_gain_and_offset_recovered_despite_a_bright_new_building() -> None:
    reference = scene()
    rng = np.random.default_rng(1)
    subject = (reference - 20) / 1.4 + rng.normal(0, 1, reference.shape).astype(np.float32)
    subject[:, 50:110, 50:110] = 255.0  # 9 % of the pixels changed, far brighter than anything else
    normalised, fit = normalise_radiometry(reference, subject)
    assert fit.gains == pytest.approx((1.4, 1.4, 1.4), rel=0.03)
    assert fit.offsets == pytest.approx((20, 20, 20), abs=4)
    assert min(fit.correlations) > 0.99
    unchanged = np.ones(reference.shape[1:], bool)
    unchanged[50:110, 50:110] = False
    assert np.abs(normalised - reference)[:, unchanged].mean() < 2.5


def test_identical_dates_give_the_identity() -> None:
    reference = scene(2)
    fit = fit_radiometry(reference, reference.copy())
    assert fit.gains == pytest.approx((1, 1, 1), abs=1e-6)
    assert fit.offsets == pytest.approx((0, 0, 0), abs=1e-3)


def test_too_few_valid_pixels_are_refused() -> None:
    reference = scene(3)
    valid = np.zeros(reference.shape[1:], bool)
    valid[:5, :5] = True
    with pytest.raises(RadiometryError, match="valid pixels"):
        fit_radiometry(reference, reference, valid=valid)


def test_mismatched_grids_are_refused() -> None:
    with pytest.raises(RadiometryError, match="co-register"):
        fit_radiometry(scene(size=50), scene(size=40))
