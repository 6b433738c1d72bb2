"""Training the detector: targets, augmentation geometry, and a tiny end-to-end run to ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sitewatch.analytics.objects.onnx import ModelCard, OnnxDetector, file_sha256
from sitewatch.core.errors import UnsupportedInputError
from toy_frames import toy_frames

torch = pytest.importorskip("torch", reason="training needs the `train` extra (torch)")

from sitewatch.training.config import load_config  # noqa: E402
from sitewatch.training.data import (  # noqa: E402
    Augmentation,
    CropSampler,
    TrainingFrame,
    encode_targets,
    rotate_boxes,
)
from sitewatch.training.detector import (  # noqa: E402
    choose_threshold,
    count_threshold,
    export_onnx,
    train_detector,
)
from sitewatch.training.model import STRIDE, CenterNetLite, parameter_count  # noqa: E402
from sitewatch.training.quantize import calibration_crops, quantize_detector  # noqa: E402


def test_targets_peak_at_the_centre_cell() -> None:
    boxes = np.array([[40.0, 20.0, 70.0, 34.0]], np.float32)  # centre (55, 27) -> cell (13, 6)
    target = encode_targets(boxes, np.array([1]), num_classes=2, size=64, stride=4, max_objects=4)
    assert target["heat"].shape == (2, 16, 16)
    assert target["heat"][1, 6, 13] == 1.0 and target["heat"][0].max() == 0.0
    assert target["index"][0] == 6 * 16 + 13 and target["mask"].tolist() == [1, 0, 0, 0]
    log_w, log_h, dx, dy = target["regression"][0]
    assert np.exp(log_w) == pytest.approx(30) and np.exp(log_h) == pytest.approx(14)
    assert dx == pytest.approx(55 / 4 - 13) and dy == pytest.approx(27 / 4 - 6)


def test_rotating_boxes_by_a_quarter_turn_matches_the_pixels() -> None:
    image = np.zeros((100, 100), np.uint8)
    image[10:20, 30:70] = 255  # x 30..70, y 10..20
    turned = np.asarray(Image.fromarray(image).rotate(90, center=(50, 50)))
    rows, cols = np.nonzero(turned > 127)
    box = rotate_boxes(np.array([[30, 10, 70, 20]], float), 90, 50)[0]
    assert box == pytest.approx([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], abs=1.0)
    assert rotate_boxes(np.array([[1, 2, 3, 4]], float), 0.0, 50)[0] == pytest.approx([1, 2, 3, 4])


def _toy_folder(root: Path, frames: int = 3, seed: int = 0) -> Path:
    return toy_frames(root, frames, seed)


def test_crops_keep_boxes_on_their_objects(tmp_path: Path) -> None:
    folder = _toy_folder(tmp_path / "toy")
    image = Image.open(folder / "images" / "F0.png").convert("RGB")
    labels = np.loadtxt(folder / "labels" / "F0.txt", ndmin=2)
    boxes = np.stack([(labels[:, 1] - labels[:, 3] / 2) * 320, (labels[:, 2] - labels[:, 4] / 2) * 240,
                      (labels[:, 1] + labels[:, 3] / 2) * 320, (labels[:, 2] + labels[:, 4] / 2) * 240], 1)
    frame = TrainingFrame("F0", image, 0.15, boxes.astype(np.float32), np.zeros(len(boxes), np.int64))
    sampler = CropSampler([frame], model_gsd=0.3, crop=96, seed=3,
                          augmentation=Augmentation(degrade_probability=0, colour_jitter=0, noise_std=0))
    for _ in range(10):
        crop = sampler.sample()
        pixels, crop_boxes = crop.pixels, crop.boxes
        assert pixels.shape == (3, 96, 96) and pixels.min() >= 0 and pixels.max() <= 1
        for x0, y0, x1, y1 in crop_boxes:
            cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
            if 2 <= cx < 94 and 2 <= cy < 94:
                assert pixels[:, cy, cx].mean() < 0.35  # a dark car under every box centre



def test_object_centred_crops_find_the_rare_class() -> None:
    """A big frame with many cars and one crane: random crops miss the crane, centred crops do not."""
    image = Image.new("RGB", (2000, 2000), (128, 128, 120))
    rng = np.random.default_rng(0)
    corners = rng.uniform(50, 1900, size=(200, 2))
    cars = np.hstack([corners, corners + np.array([10.0, 5.0])])
    crane = np.array([[1500.0, 300.0, 1540.0, 330.0]])
    frame = TrainingFrame("big", image, 0.3, np.vstack([cars, crane]).astype(np.float32),
                          np.array([0] * 200 + [1], np.int64))

    def crane_crops(probability: float) -> int:
        sampler = CropSampler([frame], model_gsd=0.3, crop=96, seed=5,
                              augmentation=Augmentation(object_probability=probability))
        return sum(1 in sampler.sample().classes for _ in range(200))

    assert crane_crops(0.0) <= 5
    assert crane_crops(0.8) >= 40  # about half of the centred crops: the classes weigh the same

def test_model_is_small_and_shapes_follow_the_stride() -> None:
    model = CenterNetLite(num_classes=5).eval()
    assert parameter_count(model) < 1_000_000
    with torch.no_grad():
        peaks, size, offset = model(torch.rand(2, 3, 64, 96))
    assert peaks.shape == (2, 5, 64 // STRIDE, 96 // STRIDE)
    assert size.shape == offset.shape == (2, 2, 16, 24)
    assert float(offset.min()) >= 0 and float(offset.max()) <= 1


def test_the_light_network_has_the_same_outputs_for_about_half_the_work() -> None:
    full, light = CenterNetLite(num_classes=5, width=48), CenterNetLite(num_classes=5, width=48, light=True)
    assert parameter_count(light) < 0.85 * parameter_count(full)
    with torch.no_grad():
        shapes = [[o.shape for o in m.eval()(torch.rand(1, 3, 64, 96))] for m in (full, light)]
    assert shapes[0] == shapes[1]
    # the full network's parameters keep their names: the shipped weights load into it
    assert {k for k in full.state_dict() if k.startswith(("heat.0", "box.0", "fuse4", "stage4"))} >= {
        "heat.0.0.weight", "box.0.0.weight", "fuse4.0.weight", "stage4.0.0.weight"}
    assert not any(k.startswith("shared") for k in full.state_dict())


def _config(tmp_path: Path, folder: Path, name: str) -> Path:
    """A toy config that uses every part of the training data: extra labels, pasted vehicles and
    look-alikes, mined negatives, the sensor looks, merged classes."""
    path = tmp_path / f"{name}.yaml"
    extra = tmp_path / "extra.yaml"
    extra.write_text("F0:\n  car: [[1, 1, 29, 13]]\n  ignore: [[100, 100, 140, 120]]\n", encoding="utf-8")
    path.write_text(
        "name: toy\nversion: test\nseed: 5\nclasses: [car, large_vehicle]\n"
        f"output: {tmp_path / name}/toy.onnx\n"
        f"datasets:\n  - path: {folder}\n    holdout: [F2]\n    validation: [F1]\n"
        f"    extra_labels: {extra}\n"
        "training: {steps: 6, batch: 2, crop: 64, threads: 2}\n"
        "merge_classes: [large_vehicle]\n"
        "sprites: {drawn_cars: 3, drawn_large: 2}\n"
        "composite: {vehicle_probability: 0.5, marking_probability: 0.3, clutter_probability: 0.3,"
        " building_shadow_probability: 0.3}\n"
        "mining: {at: [0.5], threshold: 0.0}\n"
        "augmentation: {negative_probability: 0.5, haze_probability: 0.3, blur_probability: 0.3,"
        " jpeg_probability: 0.3, saturation_jitter: 0.3}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_training_exports_a_working_onnx_model_reproducibly(tmp_path: Path) -> None:
    from sitewatch.analytics.objects.onnx import load_detector

    folder = _toy_folder(tmp_path / "toy")
    first = train_detector(load_config(_config(tmp_path, folder, "a")))
    second = train_detector(load_config(_config(tmp_path, folder, "b")))
    assert first.sha256 == second.sha256, "same config and seed must give the same weights"
    card = json.loads(first.card_path.read_text(encoding="utf-8"))
    assert card["sha256"] == first.sha256 and card["training"]["frames"] == ["F0"]
    assert set(card["class_thresholds"]) == {"car", "large_vehicle"}
    assert card["merge_classes"] == ["large_vehicle"] and "3" in card["training"]["hard_negatives_mined"]
    assert card["metrics"]["holdout"]["frames"] == ["F2"]
    assert card["metrics"]["validation"]["frames"] == ["F1"]
    detector = load_detector(first.card_path, threads=1)
    boxes = detector.detect(np.zeros((3, 100, 120), np.uint8), 0.15, score_threshold=0.0)
    assert all(b.class_name in ("car", "large_vehicle") for b in boxes)
    # The float weights beside it, for fine-tuning: reproducible too, and the same model as the ONNX file.
    assert card["weights_file"] == "toy.weights.npz" and card["architecture"] == {"model": "CenterNetLite",
                                                                                  "width": 32}
    again = json.loads(second.card_path.read_text(encoding="utf-8"))
    assert card["weights_sha256"] == again["weights_sha256"]
    from sitewatch.training.finetune import load_base

    _, model = load_base(first.card_path)
    image = np.random.default_rng(2).random((1, 3, 64, 64), dtype=np.float32)
    with torch.no_grad():
        peaks = model.eval()(torch.from_numpy(image))[0].numpy()
    assert np.allclose(peaks, detector.session.run(None, {"image": image})[0], atol=1e-4)


def test_int8_model_follows_the_float_model_and_is_reproducible(tmp_path: Path) -> None:
    import onnxruntime as ort

    torch.manual_seed(0)
    model = CenterNetLite(num_classes=2, width=16)
    export_onnx(model, tmp_path / "float.onnx")
    image = Image.new("RGB", (300, 200), (120, 125, 110))
    ImageDraw.Draw(image).rectangle([100, 80, 130, 92], fill=(20, 20, 30))
    frame = TrainingFrame("F", image, 0.15, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    crops = calibration_crops([frame], model_gsd=0.3, seed=1, count=4, size=64)
    assert len(crops) == 4 and crops[0].shape == (3, 64, 64) and 0 <= crops[0].min() <= crops[0].max() <= 1
    small = calibration_crops([frame], model_gsd=0.3, seed=1, count=2, size=256)  # 150 x 100 model px
    assert [c.shape for c in small] == [(3, 96, 96)] * 2
    quantize_detector(tmp_path / "float.onnx", tmp_path / "a.onnx", crops)
    quantize_detector(tmp_path / "float.onnx", tmp_path / "b.onnx", crops)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx", "float.onnx"]  # no leftovers
    batch = np.stack(crops).astype(np.float32)
    pixels = np.rint(batch * 255).astype(np.uint8)  # the crops' bytes: the 8-bit model takes bytes
    sessions = [ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
                for name in ("float.onnx", "a.onnx")]
    assert [s.get_inputs()[0].type for s in sessions] == ["tensor(float)", "tensor(uint8)"]
    runs = [session.run(None, {"image": image})
            for session, image in zip(sessions, (batch, pixels), strict=True)]
    (float_peaks, float_size, _), (int8_peaks, int8_size, _) = runs
    assert int8_peaks.shape == float_peaks.shape
    heat = np.maximum(float_peaks, int8_peaks) > 0  # peaks are scores where a local maximum, else 0
    assert np.abs(float_size - int8_size).max() < 0.15 * max(1.0, np.abs(float_size).max())
    assert heat.any()


def test_byte_input_gives_the_float_input_model_outputs_bit_for_bit(tmp_path: Path) -> None:
    """The 8-bit model's first steps (normalise, quantise) map each byte to itself even when the
    calibration crops hold no black or white (the range is fixed, not measured), so they are dropped
    and the bytes fed as they are: the outputs are the float-input model's, exactly."""
    import onnxruntime as ort

    from sitewatch.training.quantize import take_bytes

    torch.manual_seed(1)
    model = CenterNetLite(num_classes=2, width=16)
    export_onnx(model, tmp_path / "float.onnx")
    image = Image.new("RGB", (300, 200), (120, 125, 110))  # grey ground, one dark car: no 0 or 255
    ImageDraw.Draw(image).rectangle([100, 80, 130, 92], fill=(20, 20, 30))
    frame = TrainingFrame("F", image, 0.15, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    crops = calibration_crops([frame], model_gsd=0.3, seed=1, count=4, size=64)
    quantize_detector(tmp_path / "float.onnx", tmp_path / "floats.onnx", crops, byte_input=False)
    quantize_detector(tmp_path / "float.onnx", tmp_path / "bytes.onnx", crops)
    floats, takes = (ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
                     for name in ("floats.onnx", "bytes.onnx"))
    assert takes.get_inputs()[0].type == "tensor(uint8)" and floats.get_inputs()[0].type == "tensor(float)"
    pixels = np.random.default_rng(3).integers(0, 256, (2, 3, 96, 128), dtype=np.uint8)
    pixels[0, :, :8] = 0  # black and white as well as everything between
    pixels[1, :, :8] = 255
    before = floats.run(None, {"image": np.multiply(pixels, np.float32(1 / 255), dtype=np.float32)})
    after = takes.run(None, {"image": pixels})
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert (before[0] > 0).any()  # some peaks, so equal is not trivially equal
    assert not take_bytes(tmp_path / "bytes.onnx")  # already bytes: left as it is
    assert not take_bytes(tmp_path / "float.onnx")  # not quantised: nothing maps bytes to themselves
    # The detector feeds either kind: the same boxes from both.
    boxes = []
    for name in ("floats.onnx", "bytes.onnx"):
        card = ModelCard(name="toy", version="1", onnx_file=name, sha256=file_sha256(tmp_path / name),
                         classes=("car", "large_vehicle"), bands=("red", "green", "blue"), model_gsd=0.3,
                         gsd_range=(0.1, 1.0), stride=STRIDE, input_multiple=16, score_threshold=0.0)
        detector = OnnxDetector(tmp_path / name, card, threads=1)
        assert detector.takes_bytes == (name == "bytes.onnx")
        found = detector.detect(pixels[0], 0.3, score_threshold=0.0)
        boxes.append([(b.class_name, b.score, b.x0, b.y0, b.x1, b.y1) for b in found])
    assert boxes[0] == boxes[1] and boxes[0]


def test_threshold_is_the_lowest_keeping_training_precision(tmp_path: Path) -> None:
    from sitewatch.evaluation.detect import LabelledImage, LabelledObject, PredictedObject

    objects = tuple(LabelledObject("car", (10.0 * i, 0.0, 10.0 * i + 8, 4.0)) for i in range(10))
    image = LabelledImage("F", tmp_path / "F.png", objects, 0.15)
    found = [PredictedObject("car", 0.9 - 0.02 * i, o.box) for i, o in enumerate(objects)]
    # Ten true cars scored 0.72-0.9, and one false car at 0.61 and one at 0.29.
    false = [PredictedObject("car", 0.61, (500, 500, 508, 504)),
             PredictedObject("car", 0.29, (600, 600, 608, 604))]
    threshold = choose_threshold([image], [found + false], ("car",))
    assert threshold == pytest.approx(0.30)  # the 0.61 false car still leaves precision 10/11 >= 0.9
    assert choose_threshold([image], [found + false], ("car",), precision_floor=0.95) == pytest.approx(0.62)


def test_validation_threshold_makes_counts_right(tmp_path: Path) -> None:
    from sitewatch.evaluation.detect import LabelledImage, LabelledObject, PredictedObject

    objects = tuple(LabelledObject("car", (10.0 * i, 0.0, 10.0 * i + 8, 4.0)) for i in range(10))
    image = LabelledImage("V", tmp_path / "V.png", objects, 0.15)
    # On a new scene the detector is unsure: its ten true cars score 0.31-0.49, one false car 0.2.
    found = [PredictedObject("car", 0.31 + 0.02 * i, o.box) for i, o in enumerate(objects)]
    found.append(PredictedObject("car", 0.2, (500, 500, 508, 504)))
    assert count_threshold([image], [found], ("car",)) == pytest.approx(0.22)  # 10 found, 10 true


def test_bad_config_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInputError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match=r"broken\.yaml"):
        load_config(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(_config(tmp_path, tmp_path, "w").read_text(encoding="utf-8") + "precision: int4\n",
                     encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match="precision 'int4'"):
        load_config(wrong)


CONFIGS = Path(__file__).parents[1] / "configs"


DETECTOR_CONFIGS = [CONFIGS / "detector.yaml", *sorted((CONFIGS / "experiments").glob("detector*.yaml"))]


@pytest.mark.parametrize("config", DETECTOR_CONFIGS, ids=lambda p: p.name)
def test_detector_configs_load_and_experiments_never_write_into_the_package(config: Path) -> None:
    loaded = load_config(config)
    package = Path(__file__).parents[1] / "src" / "sitewatch"
    writes_into_package = package in loaded.output.resolve().parents
    # The shipped model's config writes into the package; an experiment never overwrites a shipped one.
    assert writes_into_package == (config.parent.name != "experiments")


def test_an_experiment_is_the_shipped_recipe_with_its_own_changes(tmp_path: Path) -> None:
    shipped = load_config(CONFIGS / "detector.yaml")
    light = load_config(CONFIGS / "experiments" / "detector-light.yaml")
    assert light.light and not shipped.light and light.name != shipped.name
    # the inherited paths still point where the shipped config meant them to
    assert light.datasets == shipped.datasets and light.mosaics == shipped.mosaics
    assert light.steps == shipped.steps and light.augmentation == shipped.augmentation
    coarse = load_config(CONFIGS / "experiments" / "detector-0.5m.yaml")
    assert coarse.augmentation.degrade_max_gsd == 1.0  # one key of a section, the rest inherited
    assert coarse.augmentation.scale_jitter == shipped.augmentation.scale_jitter
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n", encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match="extends itself"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: missing.yaml\n", encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match=r"missing\.yaml not found"):
        load_config(tmp_path / "c.yaml")
