"""Change detectors: the protocol's contract, and each method on seeded synthetic pairs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from sitewatch.analytics.change import ChangeDetector, change_detectors, get_change_detector
from sitewatch.analytics.change.base import ChangeResult, check_pair
from sitewatch.analytics.change.thresholds import otsu_threshold
from sitewatch.core.errors import UnsupportedInputError

ALL = ["contrast", "cva", "irmad", "learned", "learned-site", "pca-kmeans", "segments"]


def textured_scene(seed: int, bands: int = 3, size: int = 160) -> np.ndarray:
    """Smooth random texture (like land cover) with per-band structure, values ~0..255."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.normal(size=(size, size)), 3) * 400 + 120
    return np.stack([base * (0.8 + 0.2 * b) + rng.normal(0, 4, (size, size)) for b in range(bands)]
                    ).astype(np.float32)


def changed_pair(bands: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    before = textured_scene(1, bands)
    # another date: darker and lower contrast (sun, haze), fresh sensor noise, and a new bright building
    after = before * 0.8 + 15 + np.random.default_rng(2).normal(0, 4, before.shape).astype(np.float32)
    truth = np.zeros(before.shape[1:], bool)
    truth[40:80, 60:110] = True
    after[:, truth] = 330.0 + np.arange(bands, dtype=np.float32)[:, None] * 10
    return before, after.astype(np.float32), truth


def f1(mask: np.ndarray, truth: np.ndarray) -> float:
    tp = np.count_nonzero(mask & truth)
    return 2 * tp / (np.count_nonzero(mask) + np.count_nonzero(truth))


def test_registry_lists_every_method() -> None:
    assert change_detectors() == ALL
    for name in ALL:
        detector = get_change_detector(name)
        assert isinstance(detector, ChangeDetector)
        assert detector.name == name
        assert detector.gsd_range[0] < detector.gsd_range[1]
        assert "operating point" in detector.description
        assert len(detector.bands) in (0, detector.min_bands)  # named bands: as many as it needs


def test_unknown_detector_names_the_known_ones() -> None:
    with pytest.raises(UnsupportedInputError, match="cva"):
        get_change_detector("magic")


@pytest.mark.parametrize("name", [n for n in ALL if n != "contrast"])  # contrast: object scale, below
def test_detector_finds_a_new_building_despite_radiometric_change(name: str) -> None:
    before, after, truth = changed_pair(bands=4)
    result = get_change_detector(name)(before, after)
    assert result.probability.dtype == np.float32 and result.probability.shape == truth.shape
    assert result.probability.min() >= 0.0 and result.probability.max() <= 1.0
    assert np.array_equal(result.mask, result.probability >= result.threshold)
    assert result.rule and result.detector == name
    minimum = {"cva": 0.5, "pca-kmeans": 0.5, "irmad": 0.8, "learned": 0.8, "learned-site": 0.8,
               "segments": 0.8}[name]
    assert f1(result.mask, truth) >= minimum, f"{name}: F1 {f1(result.mask, truth):.2f}"


@pytest.mark.parametrize("name", ALL)
def test_results_are_new_arrays_and_inputs_are_left_alone(name: str) -> None:
    # The scene path reuses its input buffers window after window; a result that aliased them
    # would be overwritten under the caller.
    before, after, _ = changed_pair()
    valid = np.ones(before.shape[1:], bool)
    kept = before.copy(), after.copy()
    result = get_change_detector(name)(before, after, valid=valid)
    for output in (result.probability, result.mask):
        for given in (before, after, valid):
            assert not np.shares_memory(output, given)
    assert np.array_equal(before, kept[0]) and np.array_equal(after, kept[1]) and valid.all()


@pytest.mark.parametrize("name", ALL)
def test_invalid_pixels_are_never_changed(name: str) -> None:
    before, after, _ = changed_pair()
    valid = np.ones(before.shape[1:], bool)
    valid[:, :30] = False
    after[:, :, :30] = np.nan  # nodata must not leak into statistics either
    result = get_change_detector(name)(before, after, valid=valid)
    assert not result.mask[:, :30].any()
    assert (result.probability[:, :30] == 0).all()
    assert np.isfinite(result.probability).all()


def test_irmad_false_alarm_rate_matches_its_significance() -> None:
    """On a no-change pair related by a linear band mix plus noise the chi-square test holds its 1 %."""
    rng = np.random.default_rng(5)
    before = rng.normal(100, 20, (4, 150, 150)).astype(np.float32)
    mix = np.array([[1.2, 0.1, 0, 0], [0, 0.9, 0.2, 0], [0.1, 0, 1.1, 0], [0, 0, 0.3, 0.8]], np.float32)
    after = np.einsum("ij,jrc->irc", mix, before) + 5 + rng.normal(0, 3, before.shape).astype(np.float32)
    result = get_change_detector("irmad")(before, after)
    assert 0.003 <= result.changed_fraction <= 0.025


def test_irmad_needs_two_bands() -> None:
    before, after, _ = changed_pair(bands=1)
    with pytest.raises(UnsupportedInputError, match="at least 2 band"):
        get_change_detector("irmad")(before, after)


def test_check_pair_refuses_bad_inputs() -> None:
    detector = get_change_detector("segments")
    image = np.zeros((3, 8, 8), np.float32)
    with pytest.raises(UnsupportedInputError, match="same grid"):
        check_pair(detector, image, np.zeros((3, 8, 9), np.float32), None)
    with pytest.raises(UnsupportedInputError, match=r"\(bands, rows, cols\)"):
        check_pair(detector, image[0], image[0], None)
    with pytest.raises(UnsupportedInputError, match="outside its range"):
        check_pair(detector, image, image, None, gsd=30.0)
    with pytest.raises(UnsupportedInputError, match="valid mask"):
        check_pair(detector, image, image, np.ones((4, 4), bool))


def test_identical_images_give_no_change_for_cva() -> None:
    image = textured_scene(3)
    result = get_change_detector("cva")(image, image.copy())
    assert not result.mask.any()


def test_change_result_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same"):
        ChangeResult(np.zeros((4, 4), np.float32), np.zeros((4, 5), bool), 0.5, "x", "cva")


def test_otsu_splits_two_modes() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 5000), rng.normal(10, 1, 1000)])
    assert 3.0 < otsu_threshold(values) < 7.0
    assert otsu_threshold(np.full(10, 2.0)) == float("inf")
    with pytest.raises(ValueError, match="no finite"):
        otsu_threshold(np.array([np.nan]))


def test_contrast_finds_vehicles_and_ignores_illumination_haze_and_a_small_shift() -> None:
    rng = np.random.default_rng(5)
    size = 240
    ground = ndimage.gaussian_filter(rng.normal(size=(size, size)), 2) * 60 + 110
    before = np.stack([ground * f for f in (1.0, 0.9, 0.7)]).astype(np.float32)
    shade = np.linspace(0.6, 1.0, size)[None, None, :]  # a cloud shadow fading across the chip
    after = (np.roll(before, 1, axis=2) * 0.85 * shade + 10).astype(np.float32)  # 1 px misregistration
    after += rng.normal(0, 1.5, after.shape).astype(np.float32)
    quiet = get_change_detector("contrast")(before, after)
    assert quiet.changed_fraction < 0.002
    truth = np.zeros((size, size), bool)
    for row, col in [(30, 30), (30, 120), (100, 60), (150, 180), (200, 40), (200, 150)]:
        truth[row:row + 5, col:col + 12] = True  # trucks, 2.5 x 6 m at 0.5 m
    after[:, truth] = 25.0
    result = get_change_detector("contrast")(before, after)
    assert f1(result.mask, truth) >= 0.6, f"F1 {f1(result.mask, truth):.2f}"


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 7])
def test_closed_form_chi_square_cdf_is_scipys(dof: int) -> None:
    from scipy import special

    from sitewatch.analytics.change.irmad import chi_square_cdf, chi_square_sf

    x = np.concatenate([np.linspace(0.0, 60.0, 2000), np.random.default_rng(dof).chisquare(dof, 5000)])
    assert np.allclose(chi_square_cdf(x.astype(np.float32), dof), special.chdtr(dof, x), atol=1e-6)
    assert np.allclose(chi_square_sf(x, dof), special.chdtrc(dof, x), atol=1e-6)


def test_irmad_whole_image_chi_square_is_the_pixel_formula() -> None:
    from sitewatch.analytics.change.irmad import fit_irmad

    rng = np.random.default_rng(5)
    before = rng.normal(100.0, 20.0, (3, 40, 50)).astype(np.float32)
    after = (0.8 * before + rng.normal(0.0, 5.0, before.shape) + 10.0).astype(np.float32)
    transform = fit_irmad(before.reshape(3, -1), after.reshape(3, -1))
    expected = transform.chi_square(before.reshape(3, -1), after.reshape(3, -1)).reshape(40, 50)
    assert np.allclose(transform.chi_square_image(before, after), expected, rtol=1e-3, atol=1e-3)


def test_check_pair_leaves_the_callers_pixels_and_copies_only_when_it_must() -> None:
    detector = get_change_detector("cva")
    rng = np.random.default_rng(4)
    before, after = (rng.normal(100, 20, (3, 30, 30)).astype(np.float32) for _ in range(2))
    valid = rng.random((30, 30)) > 0.3
    kept = before.copy()
    first, second, seen = check_pair(detector, before, after, valid)
    np.testing.assert_array_equal(before, kept)  # the caller's pixels are never written
    assert first is not before and not first[:, ~valid].any() and not second[:, ~valid].any()
    np.testing.assert_array_equal(seen, valid)
    before[:, ~valid] = 0.0
    after[:, ~valid] = 0.0
    first, second, _ = check_pair(detector, before, after, valid)
    assert first is before and second is after  # unseen pixels already +0.0: nothing to copy
    after[1, np.argwhere(~valid)[0][0], np.argwhere(~valid)[0][1]] = -0.0  # not +0.0 bit for bit
    first, second, _ = check_pair(detector, before, after, valid)
    assert first is not before and not np.signbit(second).any()
