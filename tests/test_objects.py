"""The shipped ONNX vehicle detector: contract, tiling, de-duplication, GSD handling, accuracy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sitewatch.analytics.objects import (
    ObjectDetector,
    OnnxDetector,
    available_detectors,
    get_detector,
    register_detector,
)
from sitewatch.analytics.objects.onnx import (
    Tile,
    file_sha256,
    load_detector,
    nms,
    plan_tiles,
    shipped_model_dir,
    to_display_bytes,
)
from sitewatch.core.errors import UnsupportedInputError

KIT = "kit_ais_aerial_cars"


@pytest.fixture(scope="module")
def detector() -> OnnxDetector:
    found = get_detector("vehicles")
    assert isinstance(found, OnnxDetector)
    return found


def test_model_ships_inside_the_package_with_a_matching_card() -> None:
    folder = shipped_model_dir()
    card = json.loads((folder / "vehicles.json").read_text(encoding="utf-8"))
    onnx_path = folder / card["onnx_file"]
    assert onnx_path.stat().st_size < 5 * 1024 * 1024, "the shipped model should stay a few MB at most"
    assert file_sha256(onnx_path) == card["sha256"]
    assert {"car", "large_vehicle"} <= set(card["classes"])
    assert card["training"]["config"]["seed"] is not None
    assert any("CC-BY" in credit for credit in card["data_credit"])


def test_registry_and_protocol(detector: OnnxDetector) -> None:
    assert "vehicles" in available_detectors()
    assert isinstance(detector, ObjectDetector)
    info = detector.info
    assert info.bands == ("red", "green", "blue")
    assert info.gsd_range[0] <= info.model_gsd <= info.gsd_range[1]
    with pytest.raises(ValueError, match="already registered"):
        register_detector("vehicles", lambda: detector)
    with pytest.raises(UnsupportedInputError, match="no object detector named 'nope'"):
        get_detector("nope")


@pytest.mark.parametrize("gsd", [0.04, 2.0, 10.0, float("nan")])
def test_gsd_outside_range_is_refused(detector: OnnxDetector, gsd: float) -> None:
    image = np.zeros((3, 64, 64), np.uint8)
    with pytest.raises(UnsupportedInputError, match="ground sample distance"):
        detector.detect(image, gsd)


def test_wrong_bands_are_refused(detector: OnnxDetector) -> None:
    with pytest.raises(UnsupportedInputError, match="3 bands"):
        detector.detect(np.zeros((4, 64, 64), np.uint8), 0.3)
    with pytest.raises(UnsupportedInputError, match="3 bands"):
        detector.detect(np.zeros((64, 64), np.uint8), 0.3)


def test_empty_scene_gives_no_detections(detector: OnnxDetector) -> None:
    flat = np.full((3, 400, 400), 120, np.uint8)
    assert detector.detect(flat, 0.5) == []


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 3000), height=st.integers(1, 3000), tile=st.sampled_from([128, 256, 512]),
       overlap=st.sampled_from([16, 48, 96]), px=st.floats(0, 1), py=st.floats(0, 1))
def test_tile_cores_partition_the_image(width: int, height: int, tile: int, overlap: int,
                                        px: float, py: float) -> None:
    if overlap >= tile:
        return
    tiles = plan_tiles(width, height, tile, overlap)
    x, y = px * width, py * height
    owners = [t for t in tiles if t.core[0] <= x < t.core[2] and t.core[1] <= y < t.core[3]]
    assert len(owners) == 1
    owner = owners[0]
    # the owner sees at least half the overlap around the point (or the image edge)
    assert owner.x <= x <= owner.x + owner.width and owner.y <= y <= owner.y + owner.height
    margin = overlap / 2 - 1
    assert x - owner.x >= margin or owner.x == 0
    assert owner.x + owner.width - x >= margin or owner.x + owner.width == width
    assert all(t.width <= tile and t.height <= tile for t in tiles)
    assert max(t.x + t.width for t in tiles) == width and max(t.y + t.height for t in tiles) == height


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    assert list(nms(boxes, np.array([0.5, 0.9, 0.3]), 0.5)) == [1, 2]


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Textbook greedy NMS, every kept box against every remaining one."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        remaining = []
        for other in order:
            ix = max(0.0, min(boxes[best, 2], boxes[other, 2]) - max(boxes[best, 0], boxes[other, 0]))
            iy = max(0.0, min(boxes[best, 3], boxes[other, 3]) - max(boxes[best, 1], boxes[other, 1]))
            inter = ix * iy
            union = ((boxes[best, 2] - boxes[best, 0]) * (boxes[best, 3] - boxes[best, 1])
                     + (boxes[other, 2] - boxes[other, 0]) * (boxes[other, 3] - boxes[other, 1]) - inter)
            if inter / max(union, 1e-9) <= iou_threshold:
                remaining.append(other)
        order = remaining
    return keep


@pytest.mark.parametrize("seed", range(6))
def test_fast_nms_equals_the_textbook_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 400))
    corners = rng.uniform(0, 300, (count, 2))
    sizes = rng.uniform(2, 40, (count, 2)) * rng.choice([1.0, 3.0], (count, 1))  # a few long boxes
    boxes = np.hstack([corners, corners + sizes])
    scores = rng.choice(np.linspace(0.1, 1.0, 30), count)  # ties too
    for threshold in (0.3, 0.6):
        assert list(nms(boxes, scores, threshold)) == _greedy_nms(boxes, scores, threshold)
    assert list(nms(np.zeros((0, 4)), np.zeros(0), 0.5)) == []


def test_display_bytes_stretches_other_types_and_keeps_uint8() -> None:
    rng = np.random.default_rng(0)
    reflectance = rng.uniform(0.02, 0.3, (3, 50, 50)).astype(np.float32)
    stretched = to_display_bytes(reflectance)
    assert stretched.dtype == np.uint8 and stretched.shape == (50, 50, 3)
    assert stretched.min() <= 2 and stretched.max() >= 253
    raw = rng.integers(0, 256, (3, 20, 30), dtype=np.uint8)
    assert np.array_equal(to_display_bytes(raw), raw.transpose(1, 2, 0))
    with pytest.raises(UnsupportedInputError, match="no valid pixels"):
        to_display_bytes(reflectance, nodata_mask=np.ones((50, 50), bool))
    # Pixels laid out (rows, cols, bands) as PIL gives them, seen as (bands, rows, cols): nodata is
    # zeroed in the result, never in the caller's array, writable or not.
    picture = rng.integers(1, 256, (20, 30, 3), dtype=np.uint8)
    before = picture.copy()
    hole = np.zeros((20, 30), bool)
    hole[:5] = True
    masked = to_display_bytes(picture.transpose(2, 0, 1), nodata_mask=hole)
    assert (masked[:5] == 0).all() and np.array_equal(masked[5:], before[5:])
    assert np.array_equal(picture, before)
    picture.flags.writeable = False
    assert np.array_equal(to_display_bytes(picture.transpose(2, 0, 1), nodata_mask=hole), masked)


def _kit_frame(shared_data: Path, name: str) -> tuple[np.ndarray, float]:
    from sitewatch.evaluation.detect import read_folder

    _, images = read_folder(shared_data / KIT)
    image = next(i for i in images if i.name == name)
    pixels = np.asarray(Image.open(image.image_path).convert("RGB")).transpose(2, 0, 1)
    assert image.gsd is not None
    return pixels, image.gsd


@pytest.mark.shared_data
def test_small_tiles_give_the_same_objects_as_one_tile(shared_data: Path, detector: OnnxDetector) -> None:
    pixels, gsd = _kit_frame(shared_data, "MOS84")
    whole = detector.detect(pixels, gsd, tile=1024, overlap=96)
    tiled = detector.detect(pixels, gsd, tile=256, overlap=96)
    assert len(whole) > 15
    # small tiles lose a little context, so borderline scores may differ; duplicates are checked below
    assert abs(len(tiled) - len(whole)) <= max(2, len(whole) // 10)
    # every object of the one-tile run is found once in the tiled run
    centres = np.array([b.centre for b in tiled])
    for box in whole:
        distance = np.hypot(*(centres - np.array(box.centre)).T)
        assert (distance < 10).sum() <= 1


@pytest.mark.shared_data
def test_tiles_whose_core_is_unobserved_are_not_run(shared_data: Path, detector: OnnxDetector,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from sitewatch.analytics.objects import onnx

    pixels, gsd = _kit_frame(shared_data, "MOS84")
    nodata = np.zeros(pixels.shape[1:], bool)
    nodata[:, : pixels.shape[2] * 3 // 5] = True  # a scene edge: the left three fifths unobserved
    run: list[int] = []
    infer = OnnxDetector._infer

    def counting(self: OnnxDetector, batch: np.ndarray, tiles: list[onnx.Tile], threshold: float) -> list:
        run.append(len(tiles))
        return infer(self, batch, tiles, threshold)

    monkeypatch.setattr(OnnxDetector, "_infer", counting)
    skipped = detector.detect(pixels, gsd, nodata_mask=nodata, tile=256, overlap=96)
    tiles_skipping = sum(run)
    run.clear()
    with monkeypatch.context() as every_tile:
        every_tile.setattr(onnx, "_core_observed", lambda *_: True)
        everything = detector.detect(pixels, gsd, nodata_mask=nodata, tile=256, overlap=96)
    assert tiles_skipping < sum(run) * 0.6
    assert set(skipped) <= set(everything) and len(skipped) > 5
    for box in set(everything) - set(skipped):  # only boxes centred on unobserved pixels are lost
        assert nodata[int(box.centre[1]), int(box.centre[0])]
    assert detector.detect(pixels, gsd, nodata_mask=np.ones(pixels.shape[1:], bool)) == []


@pytest.mark.shared_data
def test_coarser_input_is_resampled_to_the_model_gsd(shared_data: Path, detector: OnnxDetector) -> None:
    pixels, gsd = _kit_frame(shared_data, "MOS84")
    native = detector.detect(pixels, gsd)
    factor = 0.3 / gsd
    small = Image.fromarray(pixels.transpose(1, 2, 0)).resize(
        (round(pixels.shape[2] / factor), round(pixels.shape[1] / factor)), Image.Resampling.BOX)
    coarse = detector.detect(np.asarray(small).transpose(2, 0, 1), 0.3)
    assert abs(len(coarse) - len(native)) <= max(2, len(native) // 6)
    # boxes come back in the coarse image's own pixels
    assert all(b.x1 <= small.width + 5 and b.y1 <= small.height + 5 for b in coarse)
    assert math.isclose(np.median([b.x1 - b.x0 for b in coarse]) * factor,
                        np.median([b.x1 - b.x0 for b in native]), rel_tol=0.3)


@pytest.mark.shared_data
@pytest.mark.slow
def test_held_out_scene_accuracy(shared_data: Path, detector: OnnxDetector) -> None:
    """The intersection scene MOS74..MOS93 was never trained on (configs/detector.yaml)."""
    from sitewatch.evaluation.detect import LabelledImage, PredictedObject, evaluate_folder, read_folder

    _, images = read_folder(shared_data / KIT)
    held = [i for i in images if i.name in {"MOS74", "MOS79", "MOS84", "MOS89", "MOS93"}]

    def predict(image: LabelledImage) -> list[PredictedObject]:
        pixels = np.asarray(Image.open(image.image_path).convert("RGB")).transpose(2, 0, 1)
        assert image.gsd is not None
        return [PredictedObject(b.class_name, b.score, (b.x0, b.y0, b.x1, b.y1))
                for b in detector.detect(pixels, image.gsd, score_threshold=0.05)]

    report = evaluate_folder(shared_data / KIT, predict, classes=detector.info.classes,
                             score_threshold=detector.info.score_threshold, detector_name="vehicles",
                             images=held)
    car = next(c for c in report.classes if c.class_name == "car")
    # Regression floor a little under the measured figures in docs/detector.md.
    assert car.ap50 is not None and car.ap50 >= 0.7
    assert car.mean_rel_count_error is not None and car.mean_rel_count_error <= 0.35


def test_batches_resampled_ahead_are_the_ones_inferred(detector: OnnxDetector,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The next batch is resampled in a thread while the model runs this one: each batch the model
    gets must be its own tiles' pixels: the bytes themselves for the shipped model, which takes bytes."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (3, 1100, 1000), dtype=np.uint8)
    gsd = 0.5
    seen: list[tuple[np.ndarray, list[Tile]]] = []
    infer = detector._infer

    def recording(batch: np.ndarray, tiles: list[Tile], threshold: float) -> list[np.ndarray]:
        seen.append((batch.copy(), list(tiles)))
        return infer(batch, tiles, threshold)

    monkeypatch.setattr(detector, "_infer", recording)
    detector.detect(image, gsd)
    assert len(seen) >= 3  # several batches, so one was resampled while another ran
    pixels = Image.fromarray(image.transpose(1, 2, 0))
    scale = gsd / detector.card.model_gsd
    tiles_in_order = [t for _, group in seen for t in group]
    assert len(tiles_in_order) == len(set(tiles_in_order))
    for batch, group in seen:
        for k, t in enumerate(group):
            box = (t.x / scale, t.y / scale, min((t.x + t.width) / scale, pixels.width),
                   min((t.y + t.height) / scale, pixels.height))
            patch = pixels.resize((t.width, t.height), Image.Resampling.BILINEAR, box=box)
            expected = np.asarray(patch).transpose(2, 0, 1)
            assert batch.dtype == np.uint8 and np.array_equal(batch[k, :, : t.height, : t.width], expected)


def test_tiles_per_call_do_not_change_the_boxes() -> None:
    """Tiles go to onnxruntime a pixel budget at a time (four 640-px tiles, one 1280-px tile): how
    many share a call must not change what each finds."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (3, 700, 800), dtype=np.uint8)
    one_each = load_detector(shipped_model_dir() / "vehicles.json", threads=1)
    one_each.batch_pixels = 1
    all_at_once = load_detector(shipped_model_dir() / "vehicles.json", threads=1)
    all_at_once.batch_pixels = 10**9
    first = one_each.detect(image, 0.5, score_threshold=0.05, tile=640, overlap=160)
    second = all_at_once.detect(image, 0.5, score_threshold=0.05, tile=640, overlap=160)
    assert len(first) > 10
    assert first == second
