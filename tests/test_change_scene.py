"""Change over a scene window by window: one shift and radiometric map, no seams, clear refusals."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from scipy import ndimage

from sitewatch.analytics.change import ChangeResult, get_change_detector
from sitewatch.analytics.change.base import BoolMask, ChangeDetector, FloatImage
from sitewatch.analytics.change.scene import (
    _source_window,
    plan_scene,
    probe_windows,
    scene_change,
    scene_windows,
)
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.coregister import apply_shift

SHIFT = (1.4, -0.6)
GAIN, OFFSET = 0.8, 20.0


@dataclass(frozen=True)
class AbsoluteDifference:
    """A pixel-wise detector (no per-window statistics), so windows must agree with the whole."""

    name: str = "absolute-difference"
    min_bands: int = 1
    bands: tuple[str, ...] = ()
    gsd_range: tuple[float, float] = (0.0, 1000.0)
    description: str = "mean absolute difference / 255, for tests"
    context_px: int = 0

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        probability = np.clip(np.abs(after - before).mean(axis=0) / 255, 0, 1).astype(np.float32)
        if valid is not None:
            probability[~valid] = 0
        return ChangeResult(probability, probability >= 0.2, 0.2, "fixed 0.2", self.name)


def _texture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    field = sum(w * ndimage.zoom(rng.normal(size=(shape[0] // s + 2, shape[1] // s + 2)), s, order=3)
                [: shape[0], : shape[1]] for s, w in ((5, 12.0), (13, 15.0), (31, 12.0)))
    return np.asarray(field)


def _write(path: Path, pixels: np.ndarray, transform: Affine | None = None) -> Path:
    profile = {"driver": "GTiff", "width": pixels.shape[2], "height": pixels.shape[1],
               "count": pixels.shape[0], "dtype": "uint8", "crs": "EPSG:32651",
               "transform": transform or Affine(0.5, 0, 400000, 0, -0.5, 4400000)}
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(pixels)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """A 3-band 700 x 900 scene and its second date: shifted by SHIFT, dimmer, with three new roofs."""
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(5)
    rows, cols = 700, 900
    base = _texture(rng, (rows + 8, cols + 8))
    scene = np.stack([base + 90 + 10 * b for b in range(3)])
    built = np.zeros((rows + 8, cols + 8), bool)
    for r, c in ((100, 150), (400, 600), (250, 520)):  # one across the window boundary at 512
        built[r:r + 30, c:c + 25] = True
    later = np.where(built[None], 235.0, scene)
    moved = ndimage.shift(later, (0, *SHIFT), order=1, mode="nearest")
    before = np.clip(scene[:, 4:-4, 4:-4], 0, 255).astype(np.uint8)
    after = np.clip(moved[:, 4:-4, 4:-4] * GAIN + OFFSET, 0, 255).astype(np.uint8)
    return _write(folder / "before.tif", before), _write(folder / "after.tif", after), built[4:-4, 4:-4]


def test_windows_tile_the_raster_and_probes_spread_over_it() -> None:
    windows = scene_windows(900, 700, 256)
    covered = np.zeros((700, 900), int)
    for w in windows:
        covered[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] += 1
    assert (covered == 1).all()
    probes = probe_windows(5000, 4000)
    assert len(probes) == 9
    assert max(p.col_off + p.width for p in probes) == 5000 and min(p.row_off for p in probes) == 0
    with pytest.raises(UnsupportedInputError, match="window side"):
        scene_windows(10, 10, 0)


def test_plan_measures_the_shift_and_the_radiometric_map(pair: tuple[Path, Path, np.ndarray]) -> None:
    with rasterio.open(pair[0]) as before, rasterio.open(pair[1]) as after:
        plan = plan_scene(before, after)
    # after(p) = before(p - SHIFT): the shift that puts after back on before is -SHIFT
    assert plan.registration.shift == pytest.approx((-SHIFT[0], -SHIFT[1]), abs=0.15)
    assert plan.radiometry is not None
    assert plan.radiometry.gains == pytest.approx((1 / GAIN,) * 3, rel=0.05)


@pytest.mark.parametrize("shift", [(a, b) for a in (-2.5, -1.0, -0.3, 0.0, 0.4, 1.0, 2.7)
                                   for b in (-1.6, 0.0, 0.5, 3.2)])
def test_a_window_reads_exactly_the_pixels_its_shift_needs(shift: tuple[float, float]) -> None:
    # The second date's source window is grown only on the side the shift comes from; shifting it
    # gives the same pixels, and the same validity, as shifting the whole raster.
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (2, 40, 50)).astype(np.float32)
    whole, whole_valid = apply_shift(image, shift)
    for part in (Window(12, 9, 20, 17), Window(0, 0, 20, 17), Window(30, 23, 20, 17)):
        grown, inner = _source_window(part, shift, 50, 40)
        source = image[(slice(None), *grown.toslices())]
        shifted, covered = apply_shift(source, shift)
        target = part.toslices()
        np.testing.assert_array_equal(covered[inner], whole_valid[target])
        np.testing.assert_array_equal(shifted[(slice(None), *inner)], whole[(slice(None), *target)])
        # one-sided: no more than the taps need on either axis
        assert grown.height <= part.height + math.ceil(abs(shift[0])) + 1
        assert grown.width <= part.width + math.ceil(abs(shift[1])) + 1


@pytest.mark.parametrize("bands", [None, (2,), (2, 0)])
def test_windows_agree_with_the_whole_scene_without_seams(pair: tuple[Path, Path, np.ndarray],
                                                          bands: tuple[int, ...] | None) -> None:
    detector = AbsoluteDifference()
    selected = list(bands or (0, 1, 2))
    with rasterio.open(pair[0]) as before, rasterio.open(pair[1]) as after:
        plan = plan_scene(before, after)
        whole_before = before.read().astype(np.float32)[selected]
        aligned, valid = apply_shift(after.read().astype(np.float32)[selected], plan.registration.shift)
    assert plan.radiometry is not None
    gains = np.float32(plan.radiometry.gains)[selected, None, None]
    offsets = np.float32(plan.radiometry.offsets)[selected, None, None]
    expected = detector(whole_before, aligned * gains + offsets, valid=valid).probability
    mosaic = np.full(expected.shape, np.nan, np.float32)
    seen: list[tuple[int, int]] = []
    parts = scene_change(pair[0], pair[1], detector, window=256, workers=2, plan=plan,
                         progress=lambda done, total: seen.append((done, total)), bands=bands)
    for part in parts:
        w = part.window
        mosaic[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] = part.result.probability
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == list(range(1, 13))
    assert not np.isnan(mosaic).any()
    inside = valid.copy()
    inside[:, :3] = inside[:, -3:] = False
    inside[:3] = inside[-3:] = False
    np.testing.assert_allclose(mosaic[inside], expected[inside], atol=2e-3)
    # the window edges (every 256 px) are shifted from real pixels, not left invalid
    assert (mosaic[255:257, 10:-10] > 0).mean() > 0.95


@dataclass(frozen=True)
class LocalDifference(AbsoluteDifference):
    """The absolute difference averaged over 13 x 13 pixels: each answer depends on 6 pixels around."""

    name: str = "local-difference"
    context_px: int = 6

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        local = ndimage.uniform_filter(np.abs(after - before).mean(axis=0) / 255, 13, mode="nearest")
        probability = np.clip(local, 0, 1).astype(np.float32)
        return ChangeResult(probability, probability >= 0.2, 0.2, "fixed 0.2", self.name)


def test_windows_read_the_margin_their_detector_looks_at(pair: tuple[Path, Path, np.ndarray]) -> None:
    with rasterio.open(pair[0]) as before, rasterio.open(pair[1]) as after:
        plan = plan_scene(before, after)

    def mosaic(detector: ChangeDetector) -> np.ndarray:
        out = np.full((700, 900), np.nan, np.float32)
        for part in scene_change(pair[0], pair[1], detector, window=256, workers=2, plan=plan):
            w = part.window
            assert part.result.probability.shape == part.valid.shape == (w.height, w.width)
            out[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] = part.result.probability
        return out

    single = list(scene_change(pair[0], pair[1], LocalDifference(), window=1024, plan=plan))
    assert len(single) == 1  # the whole scene in one window: no seams
    whole = single[0].result.probability
    seams = np.zeros(whole.shape, bool)
    for edge in (256, 512, 768):
        seams[:, edge - 6:edge + 6] = True
        if edge < 700:
            seams[edge - 6:edge + 6] = True
    interior = np.zeros(whole.shape, bool)
    interior[8:-8, 8:-8] = True
    with_margin = mosaic(LocalDifference())
    without = mosaic(dataclasses.replace(LocalDifference(), context_px=0))
    np.testing.assert_allclose(with_margin[interior], whole[interior], atol=1e-5)
    assert np.abs(without - whole)[seams & interior].max() > 0.01  # what the margin is for


def test_a_real_detector_finds_the_new_roofs(pair: tuple[Path, Path, np.ndarray]) -> None:
    changed = np.zeros(pair[2].shape, bool)
    for part in scene_change(pair[0], pair[1], get_change_detector("cva"), window=512, workers=2):
        w = part.window
        changed[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] = part.result.mask
    truth = ndimage.binary_erosion(pair[2], iterations=2)
    assert changed[truth].mean() > 0.85
    # CVA's Otsu split flags part of any window, even one without change; the top windows hold the roofs
    top = np.zeros(changed.shape, bool)
    top[:512] = True
    assert changed[top & ~ndimage.binary_dilation(pair[2], iterations=4)].mean() < 0.02


def test_rasters_on_different_grids_are_refused(pair: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    with rasterio.open(pair[1]) as after:
        pixels = after.read()
    moved = _write(tmp_path / "moved.tif", pixels, Affine(0.5, 0, 400010, 0, -0.5, 4400000))
    with pytest.raises(UnsupportedInputError, match="not on one grid"):
        next(scene_change(pair[0], moved, AbsoluteDifference()))
    fewer = _write(tmp_path / "fewer.tif", pixels[:2])
    with pytest.raises(UnsupportedInputError, match="3 bands"):
        next(scene_change(pair[0], fewer, AbsoluteDifference()))
    with pytest.raises(UnsupportedInputError, match=r"bands \[3\] do not all exist"):
        next(scene_change(pair[0], pair[1], AbsoluteDifference(), bands=[3]))


def _named(path: Path, source: Path, names: tuple[str, ...], *, crs: bool = True, size: int = 256) -> Path:
    """The first ``size`` x ``size`` pixels of ``source`` with a near-infrared band added in front,
    the bands described by ``names``; no CRS when ``crs`` is False."""
    with rasterio.open(source) as dataset:
        pixels = dataset.read(window=Window(0, 0, size, size))
    pixels = np.concatenate([pixels[:1] // 2 + 60, pixels])
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 4, "dtype": "uint8",
               "crs": "EPSG:32651" if crs else None, "transform": Affine(0.5, 0, 400000, 0, -0.5, 4400000)}
    with rasterio.open(path, "w", **profile) as target:
        target.write(pixels)
        for index, name in enumerate(names, start=1):
            target.set_band_description(index, name)
    return path


def test_the_scene_default_is_chosen_by_gsd_and_band_names(pair: tuple[Path, Path, np.ndarray],
                                                           tmp_path: Path) -> None:
    from sitewatch.analytics.change import FALLBACK_CHANGE_METHOD
    from sitewatch.pipeline.change import write_scene_change

    names = ("nir", "red", "green", "blue")
    before, after = (_named(tmp_path / f"{n}.tif", p, names) for n, p in (("a", pair[0]), ("b", pair[1])))
    outcome = write_scene_change(before, after, tmp_path / "out.tif", workers=1)
    assert outcome.detector == "learned" and outcome.bands == ("red", "green", "blue")
    assert "RGB bands by name" in outcome.choice and outcome.changed_area_m2 is not None
    # no CRS: the pixel size is unknown, so the fallback runs (and no area can be given)
    before, after = (_named(tmp_path / f"{n}-nocrs.tif", p, names, crs=False)
                     for n, p in (("a", pair[0]), ("b", pair[1])))
    outcome = write_scene_change(before, after, tmp_path / "out-nocrs.tif", workers=1)
    assert outcome.detector == FALLBACK_CHANGE_METHOD and "GSD unknown" in outcome.choice
    assert outcome.changed_area_m2 is None and outcome.bands == names
    # a method named by the caller that reads RGB gets those bands too, by name
    named = write_scene_change(before, after, tmp_path / "out-named.tif", workers=1,
                               detector=get_change_detector("learned"))
    assert named.bands == ("red", "green", "blue") and named.choice == "named by the caller"


def test_the_scene_verb_writes_mask_and_probability_and_keeps_old_output_on_failure(
    pair: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from sitewatch.app.cli import app

    output = tmp_path / "out" / "change.tif"
    result = CliRunner().invoke(app, ["change", "scene", str(pair[0]), str(pair[1]), str(output),
                                      "--method", "cva", "--window", "300", "--json"])
    assert result.exit_code == 0, result.output
    summary = __import__("json").loads(result.output)
    assert summary["windows"] == 9 and summary["detector"] == "cva"
    with rasterio.open(output) as written:
        mask, percent = written.read()
        assert written.nodata == 255 and written.count == 2
    assert set(np.unique(mask)) <= {0, 1, 255} and (mask == 255).any()  # the shifted-in edge
    assert summary["changed_pixels"] == int((mask == 1).sum())
    assert (percent[mask == 1] >= 50).all() and (mask[(percent > 50) & (percent != 255)] == 1).all()
    assert mask[pair[2] & (mask != 255)].mean() > 0.85
    before = output.read_bytes()
    with rasterio.open(pair[1]) as after:
        pixels = after.read()
    moved = _write(tmp_path / "moved.tif", pixels, Affine(0.5, 0, 400010, 0, -0.5, 4400000))
    failed = CliRunner().invoke(app, ["change", "scene", str(pair[0]), str(moved), str(output),
                                      "--method", "cva"])
    assert failed.exit_code != 0
    assert output.read_bytes() == before and not list(output.parent.glob(".*partial"))


def test_the_file_written_beside_the_compute_holds_every_window_and_a_failed_write_stops_the_run(
    pair: tuple[Path, Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows are written by a thread of their own while the next are computed: the file must
    hold exactly each window's result, and a write that fails must fail the run, leaving no file."""
    from sitewatch.pipeline import change as pipeline_change

    detector = get_change_detector("cva")
    output = tmp_path / "out.tif"
    outcome = pipeline_change.write_scene_change(pair[0], pair[1], output, detector=detector, window=256,
                                                 workers=2)
    with rasterio.open(pair[0]) as before, rasterio.open(pair[1]) as after:
        plan = plan_scene(before, after)
    expected = np.full((2, 700, 900), 255, np.uint8)
    for part in scene_change(pair[0], pair[1], detector, window=256, workers=1, plan=plan):
        rows, cols = part.window.toslices()
        expected[0, rows, cols] = np.where(part.valid, part.result.mask, 255)
        expected[1, rows, cols] = np.where(part.valid, np.rint(part.result.probability * 100), 255)
    with rasterio.open(output) as written:
        assert np.array_equal(written.read(), expected)
    assert outcome.windows == 12 and outcome.changed_pixels == int((expected[0] == 1).sum())
    assert outcome.valid_pixels == int((expected[0] != 255).sum())

    real_write, calls = pipeline_change._write_window, []

    def fails_on_the_fifth(sink: object, part: object) -> tuple[int, int]:
        calls.append(part)
        if len(calls) == 5:
            raise OSError("disk full (injected)")
        return real_write(sink, part)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline_change, "_write_window", fails_on_the_fifth)
    with pytest.raises(OSError, match="disk full"):
        pipeline_change.write_scene_change(pair[0], pair[1], tmp_path / "failed.tif", detector=detector,
                                           window=256, workers=2)
    assert not list(tmp_path.glob("*failed*"))
