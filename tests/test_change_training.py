"""The learned change detector: synthetic pairs, tiling, the shipped model, and training it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sitewatch.analytics.change.learned import _spans, normalise_date
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.training.change_pairs import make_pair
from sitewatch.training.roofs import BuiltFrame, Roof


def test_pairs_are_reproducible_and_labels_are_buildings_on_one_date() -> None:
    first = make_pair(np.random.default_rng(4), 96)
    second = make_pair(np.random.default_rng(4), 96)
    assert np.array_equal(first.before, second.before) and np.array_equal(first.label, second.label)
    assert first.before.shape == first.after.shape == (3, 96, 96) and first.label.shape == (96, 96)
    assert first.before.dtype == np.float32 and first.before.min() >= 0.0 and first.after.max() <= 1.0
    shares = [make_pair(np.random.default_rng(seed), 96).label.mean() for seed in range(30)]
    # most pairs hold a new or demolished building; some hold none (only unlabelled change)
    assert 0.02 < float(np.mean(shares)) < 0.4
    assert min(shares) == 0.0 and max(shares) > 0.05


def test_labelled_pixels_differ_between_the_dates_more_than_the_rest() -> None:
    gaps = []
    for seed in range(20):
        pair = make_pair(np.random.default_rng(seed), 128)
        if pair.label.sum() < 50:
            continue
        difference = np.abs(normalise_date(pair.after) - normalise_date(pair.before)).sum(axis=0)
        gaps.append(difference[pair.label].mean() - difference[~pair.label].mean())
    assert len(gaps) >= 8 and np.median(gaps) > 0.1


def _roofs_and_built() -> tuple[list[Roof], list[BuiltFrame]]:
    """A tiny stand-in for the Kampala tiles: one built-up frame with three outlined houses."""
    pixels = np.full((3, 160, 160), 120, np.uint8)
    buildings = np.zeros((160, 160), np.int32)
    for number, (r, c) in enumerate(((20, 20), (20, 100), (100, 60)), start=1):
        pixels[:, r:r + 24, c:c + 30] = np.array((200, 60, 40) if number % 2 else (90, 90, 95))[:, None, None]
        buildings[r:r + 24, c:c + 30] = number
    roofs = [Roof(np.full((3, 12, 20), 180.0), np.ones((12, 20), bool))]
    return roofs, [BuiltFrame(pixels, buildings)]


def test_version_3_pairs_label_site_change_around_building_change() -> None:
    roofs, built = _roofs_and_built()
    site_only, torn = 0, 0
    for seed in range(24):
        pair = make_pair(np.random.default_rng(seed), 96, roofs=roofs, roof_share=0.5, built=built,
                         built_share=0.5, land_share=1.0)
        assert pair.site is not None and pair.site.shape == pair.label.shape
        assert not (pair.label & ~pair.site).any(), "building change is site change"
        site_only += int((pair.site & ~pair.label).sum() > 100)
    assert site_only >= 18  # every pair holds earthworks, a pad, a road, clearing or water
    for seed in range(40):
        pair = make_pair(np.random.default_rng(seed), 96, built=built, built_share=1.0)
        torn += int(pair.label.sum() >= 24 * 30 * 0.8)
    assert torn >= 5  # real buildings of the built-up frame are torn down on one date


def test_version_3_off_draws_as_version_2() -> None:
    roofs, built = _roofs_and_built()
    plain = make_pair(np.random.default_rng(9), 96, street_share=0.3, hip_share=0.4)
    off = make_pair(np.random.default_rng(9), 96, street_share=0.3, hip_share=0.4, roofs=roofs, built=built)
    assert np.array_equal(plain.before, off.before) and np.array_equal(plain.label, off.label)


def test_real_frames_are_used_as_backgrounds() -> None:
    frame = np.full((3, 200, 200), 7, np.uint8)
    pair = make_pair(np.random.default_rng(1), 64, frames=[frame], frame_share=1.0)
    # the background is the flat frame (buildings and cars aside), not procedural terrain
    assert np.median(pair.before) < 0.15


@pytest.mark.parametrize(("length", "tile", "overlap"), [(100, 512, 64), (512, 512, 64), (1300, 512, 64),
                                                         (2049, 512, 96)])
def test_tile_cores_partition_the_axis(length: int, tile: int, overlap: int) -> None:
    spans = _spans(length, tile, overlap)
    covered = np.zeros(length, int)
    for start, stop, keep_from, keep_to in spans:
        assert 0 <= start <= keep_from < keep_to <= stop <= length and stop - start <= tile
        covered[keep_from:keep_to] += 1
        # a kept pixel is at least a quarter of the overlap inside its tile unless at the image edge
        assert keep_from == 0 or keep_from - start >= overlap // 4
        assert keep_to == length or stop - keep_to >= overlap // 4
    assert (covered == 1).all()


@pytest.mark.parametrize("length", [600, 1024, 1610, 2048, 4096])
def test_tiles_are_spread_so_little_is_computed_twice(length: int) -> None:
    spans = _spans(length, 512, 64, 16)
    sizes = {stop - start for start, stop, _, _ in spans}
    assert len(sizes) == 1 and sizes.pop() % 16 == 0  # one size, no padding to run
    computed = sum(stop - start for start, stop, _, _ in spans)
    assert computed <= length + len(spans) * 64 + 16  # overlaps of about 64 px, not a last tile repeated
    overlaps = [spans[i][1] - spans[i + 1][0] for i in range(len(spans) - 1)]
    assert min(overlaps) >= 64


def test_normalise_date_ignores_invalid_pixels_and_gain() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(50, 150, (3, 40, 40)).astype(np.float32)
    brighter = image * 1.7 + 30
    assert np.allclose(normalise_date(image), normalise_date(brighter), atol=1e-4)
    valid = np.ones((40, 40), bool)
    valid[:, :5] = False
    spoiled = image.copy()
    spoiled[:, :, :5] = 10_000.0
    assert np.allclose(normalise_date(spoiled, valid)[:, :, 5:], normalise_date(image[:, :, 5:]), atol=0.02)


def test_shipped_model_finds_a_new_roof_and_not_a_gain_change() -> None:
    from sitewatch.analytics.change import get_change_detector

    pair = make_pair(np.random.default_rng(12345), 256)
    detector = get_change_detector("learned")
    result = detector(pair.before * 255, pair.after * 255)
    if pair.label.any():
        hit = (result.mask & pair.label).sum() / pair.label.sum()
        assert hit > 0.5
    same = detector(pair.before * 255, pair.before * 200 + 10)
    assert same.mask.mean() < 0.01
    assert "0.5" in result.rule


def test_large_images_run_in_tiles_like_one_piece() -> None:
    from sitewatch.analytics.change.learned import change_probability

    pair = make_pair(np.random.default_rng(3), 320)
    before, after = normalise_date(pair.before), normalise_date(pair.after)
    whole = change_probability(before, after, tile=320)
    tiled = change_probability(before, after, tile=192, overlap=64)
    assert np.mean(np.abs(tiled - whole) < 0.1) > 0.99


def test_a_street_has_rows_of_houses_beside_its_road_and_only_houses_are_labelled() -> None:
    from sitewatch.training.change_pairs import _street

    road, drives, houses = _street(np.random.default_rng(2), (256, 256), 0.5, hip=0.5)
    assert road.mean() > 0.02 and drives.any() and len(houses) >= 4
    assert not (drives & road).any()
    for house in houses:
        assert not (house.footprint & road).any()
    sizes = [house.footprint.sum() for house in houses if house.footprint.sum() > 50]
    assert max(sizes) < 3 * np.median(sizes)  # alike, as on one street
    labelled = [make_pair(np.random.default_rng(seed), 128, street_share=1.0).label.mean()
                for seed in range(8)]
    assert all(0.0 <= share < 0.6 for share in labelled) and np.mean(labelled) > 0.03


def test_flip_averaging_is_the_mean_of_the_mirror_images_and_mirrors_with_the_input() -> None:
    from sitewatch.analytics.change.learned import change_probability

    pair = make_pair(np.random.default_rng(8), 160)
    before, after = normalise_date(pair.before), normalise_date(pair.after)

    def logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p))

    plain = [change_probability(before[:, ::r, ::c].copy(), after[:, ::r, ::c].copy(), flips=False)[::r, ::c]
             for r in (1, -1) for c in (1, -1)]
    averaged = change_probability(before, after, flips=True)
    expected = 1 / (1 + np.exp(-np.mean([logit(p) for p in plain], axis=0)))
    assert np.mean(np.abs(averaged - expected) < 1e-3) > 0.999
    mirrored = change_probability(before[:, ::-1].copy(), after[:, ::-1].copy(), flips=True)
    assert np.mean(np.abs(mirrored[::-1] - averaged) < 1e-3) > 0.999


torch = pytest.importorskip("torch", reason="training needs the `train` extra (torch)")


def _config(tmp_path: Path, name: str, frames: Path) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        "name: toy\nversion: '0'\nseed: 3\n"
        f"output: {tmp_path / name}/toy.onnx\n"
        f"data: {{size: 64, pairs: 12, validation_pairs: 4, backgrounds: [{{path: {frames}, gsd: 0.25}}],"
        " land_share: 0.5}\n"
        "outputs: [buildings, site]\n"
        "width: 8\ntraining: {steps: 3, batch: 2, threads: 1, workers: 1}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_change_training_exports_a_working_model_reproducibly(tmp_path: Path) -> None:
    from sitewatch.analytics.change.learned import ChangeModelCard
    from sitewatch.training.change import load_change_config, train_change

    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(
        frames / "a.png")
    first = train_change(load_change_config(_config(tmp_path, "a", frames)))
    second = train_change(load_change_config(_config(tmp_path, "b", frames)))
    assert first.sha256 == second.sha256, "same config and seed must give the same weights"
    card = ChangeModelCard.from_dict(json.loads(first.card_path.read_text(encoding="utf-8")), "card")
    assert card.sha256 == first.sha256 and card.threshold == 0.5
    assert set(card.metrics["synthetic_validation"]) == {"precision", "recall", "f1"}
    assert card.outputs == ("buildings", "site")
    assert set(card.metrics["synthetic_validation_by_output"]) == {"buildings", "site"}
    import onnxruntime as ort

    session = ort.InferenceSession(str(first.onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"before": np.zeros((1, 3, 80, 96), np.float32),
                                "after": np.zeros((1, 3, 80, 96), np.float32)})[0]
    assert logits.shape == (1, 2, 80, 96)
    # The float weights beside it, for fine-tuning: reproducible too, and the same model as the ONNX file.
    import torch

    from sitewatch.training.change_model import SiameseUNet
    from sitewatch.training.weights import load_into, load_weights

    other = json.loads(second.card_path.read_text(encoding="utf-8"))
    assert card.weights_file and card.weights_sha256 == other["weights_sha256"]
    model = SiameseUNet(card.architecture["width"], card.architecture["outputs"])
    npz = first.card_path.parent / card.weights_file
    load_into(model, load_weights(npz, card.weights_sha256, card=first.card_path), source=npz)
    first_date, second_date = np.random.default_rng(3).random((2, 1, 3, 32, 48), dtype=np.float32)
    with torch.no_grad():
        torch_logits = model.eval()(torch.from_numpy(first_date), torch.from_numpy(second_date)).numpy()
    onnx_logits = session.run(None, {"before": first_date, "after": second_date})[0]
    assert np.allclose(torch_logits, onnx_logits, atol=1e-4)


def _toy_pairs(count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [make_pair(np.random.default_rng(seed), size) for seed in range(count)]
    return (np.stack([(p.before * 255).astype(np.uint8) for p in pairs]),
            np.stack([(p.after * 255).astype(np.uint8) for p in pairs]))


def test_an_eight_bit_change_model_stays_close_to_the_float_one(tmp_path: Path) -> None:
    import onnxruntime as ort

    from sitewatch.training.change import export_change_onnx
    from sitewatch.training.change_model import SiameseUNet
    from sitewatch.training.quantize import quantize_change_model

    torch.manual_seed(0)
    export_change_onnx(SiameseUNet(8, 2).eval(), tmp_path / "float.onnx")
    before, after = _toy_pairs(6, 64)
    pairs = [(normalise_date(b), normalise_date(a)) for b, a in zip(before, after, strict=True)]
    quantize_change_model(tmp_path / "float.onnx", tmp_path / "a.onnx", pairs)
    quantize_change_model(tmp_path / "float.onnx", tmp_path / "b.onnx", pairs)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    feed = {"before": np.stack([b for b, _ in pairs]), "after": np.stack([a for _, a in pairs])}
    exact, eight = (ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
                    .run(None, feed)[0] for name in ("float.onnx", "a.onnx"))
    assert np.corrcoef(exact.ravel(), eight.ravel())[0, 1] > 0.98
    with pytest.raises(ValueError, match="calibration pairs"):
        quantize_change_model(tmp_path / "float.onnx", tmp_path / "c.onnx", [])


def test_bad_change_config_names_the_problem(tmp_path: Path) -> None:
    from sitewatch.training.change import load_change_config

    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nversion: '1'\nseed: 1\noutput: m.onnx\ndata: {size: 100}\n", encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match="multiple of 16"):
        load_change_config(path)
    path.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match=r"configs/change\.yaml"):
        load_change_config(path)
    path.write_text("name: x\nversion: '1'\nseed: 1\noutput: m.onnx\noutputs: [site]\n", encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match="must start with 'buildings'"):
        load_change_config(path)
