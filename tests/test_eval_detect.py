"""Detection metrics and the YOLO/DOTA/iSAID folder readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.detect import (
    ISAID_PALETTE,
    LabelledImage,
    LabelledObject,
    PredictedObject,
    average_precision,
    estimate_gsd,
    found_objects,
    match_class,
    read_folder,
    recall_by_condition,
    score_detections,
)


def _image(name: str, *objects: LabelledObject) -> LabelledImage:
    return LabelledImage(name, Path(f"/nonexistent/{name}.png"), tuple(objects))


def _car(x: float, y: float, difficult: bool = False) -> LabelledObject:
    return LabelledObject("car", (x, y, x + 30, y + 15), difficult)


def _pred(x: float, y: float, score: float, cls: str = "car") -> PredictedObject:
    return PredictedObject(cls, score, (x, y, x + 30, y + 15))


def test_perfect_predictions_score_one() -> None:
    images = [_image("a", _car(0, 0), _car(100, 0)), _image("b", _car(50, 50))]
    predictions = [[_pred(0, 0, 0.9), _pred(101, 1, 0.8)], [_pred(50, 50, 0.7)]]
    scores, counts = score_detections(images, predictions, ["car"], 0.5)
    assert scores[0].ap50 == pytest.approx(1.0)
    assert scores[0].precision == 1.0 and scores[0].recall == 1.0
    assert scores[0].mean_abs_count_error == 0.0 and scores[0].mean_rel_count_error == 0.0
    assert counts[0].true == {"car": 2} and counts[0].predicted == {"car": 2}


def test_false_positive_ranked_first_lowers_ap() -> None:
    images = [_image("a", _car(0, 0), _car(100, 0))]
    predictions = [[_pred(300, 300, 0.95), _pred(0, 0, 0.9), _pred(100, 0, 0.8)]]
    scores, hits, positives = match_class([i.objects for i in images], predictions, "car")
    assert positives == 2 and list(hits) == [False, True, True]
    # precision at recall 0.5 and 1.0 is 2/3 once interpolated
    assert average_precision(scores, hits, positives) == pytest.approx(2 / 3)


def test_duplicates_are_false_positives_and_difficult_objects_are_ignored() -> None:
    images = [_image("a", _car(0, 0), _car(200, 0, difficult=True))]
    predictions = [[_pred(0, 0, 0.9), _pred(1, 0, 0.85), _pred(200, 0, 0.8)]]
    _, hits, positives = match_class([i.objects for i in images], predictions, "car")
    assert positives == 1
    assert list(hits) == [True, False]  # the difficult match is dropped, not counted


def test_count_errors_absolute_and_relative() -> None:
    images = [_image("a", _car(0, 0), _car(100, 0)), _image("b", _car(0, 0), _car(40, 40), _car(80, 80),
                                                              _car(120, 120))]
    predictions = [[_pred(0, 0, 0.9), _pred(100, 0, 0.2)], [_pred(0, 0, 0.9)] * 5]
    scores, _ = score_detections(images, predictions, ["car"], 0.5)
    # image a: 1 found of 2 (error 1, 50 %); image b: 5 found of 4 (error 1, 25 %)
    assert scores[0].mean_abs_count_error == pytest.approx(1.0)
    assert scores[0].mean_rel_count_error == pytest.approx(0.375)


def test_no_ground_truth_gives_no_ap() -> None:
    assert average_precision(np.array([0.5]), np.array([False]), 0) is None


def _write_yolo(root: Path, names: list[str] | None) -> None:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", (200, 100)).save(root / "images" / "f1.png")
    (root / "labels" / "f1.txt").write_text("0 0.5 0.5 0.2 0.1\n2 0.25 0.25 0.1 0.2\n", encoding="utf-8")
    if names is not None:
        (root / "classes.names").write_text("\n".join(names) + "\n", encoding="utf-8")


def test_yolo_reader_maps_classes_and_pixels(tmp_path: Path) -> None:
    _write_yolo(tmp_path, ["car", "truck", "bus"])
    fmt, images = read_folder(tmp_path, gsd=0.2)
    assert fmt == "yolo" and len(images) == 1
    car, bus = images[0].objects
    assert car.class_name == "car" and car.box == pytest.approx((80, 45, 120, 55))
    assert bus.class_name == "large_vehicle" and bus.box == pytest.approx((40, 15, 60, 35))
    assert images[0].gsd == 0.2 and images[0].gsd_source == "option"


def test_yolo_reader_reads_gsd_metadata(tmp_path: Path) -> None:
    _write_yolo(tmp_path, None)
    (tmp_path / "data.yaml").write_text("names: [car, truck, bus]\ngsd: 0.15\n", encoding="utf-8")
    _, images = read_folder(tmp_path)
    assert images[0].gsd == 0.15 and images[0].gsd_source == "metadata"


def test_bad_yolo_line_names_file_and_line(tmp_path: Path) -> None:
    _write_yolo(tmp_path, ["car"])
    (tmp_path / "labels" / "f1.txt").write_text("0 0.5 oops\n", encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match=r"f1.txt:1"):
        read_folder(tmp_path)


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInputError, match="no image"):
        read_folder(tmp_path, fmt="yolo")


def test_dota_reader(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labelTxt").mkdir()
    Image.new("RGB", (100, 100)).save(tmp_path / "images" / "P1.png")
    (tmp_path / "labelTxt" / "P1.txt").write_text(
        "imagesource:GoogleEarth\ngsd:0.25\n"
        "10 10 40 12 39 25 9 23 small-vehicle 0\n"
        "50 50 90 50 90 60 50 60 large-vehicle 1\n"
        "0 0 5 0 5 5 0 5 ship 0\n",
        encoding="utf-8",
    )
    (tmp_path / "labelTxt" / "P2.txt").write_text("gsd:0.3\n", encoding="utf-8")  # no image: skipped
    fmt, images = read_folder(tmp_path)
    assert fmt == "dota" and [i.name for i in images] == ["P1"]
    car, truck, ship = images[0].objects
    assert car.class_name == "car" and car.box == (9, 10, 40, 25)
    assert truck.class_name == "large_vehicle" and truck.difficult
    assert ship.class_name == "ship"
    assert images[0].gsd == 0.25 and images[0].gsd_source == "label"


_CLASS_COLOUR = {name: colour for colour, name in ISAID_PALETTE.items()}


def _write_isaid(folder: Path, name: str = "P9001") -> None:
    """An iSAID-style image with its class and instance masks: cars, a truck, a storage tank, a
    fragment of a car cut by the left border, a 4-pixel speck, an instance straddling two classes
    and an id under 1000 (not an instance, as in the devkit)."""
    folder.mkdir(parents=True, exist_ok=True)
    classes = np.zeros((120, 160, 3), np.uint8)
    instances = np.zeros((120, 160, 3), np.uint8)
    next_id = iter(range(1, 100))

    def paint(rows: slice, cols: slice, class_name: str,
              instance: tuple[int, int, int] | None = None) -> None:
        classes[rows, cols] = _CLASS_COLOUR[class_name]
        number = 5000 + 997 * next(next_id)
        instances[rows, cols] = instance or (number % 256, number // 256 % 256, number // 65536)

    paint(slice(10, 20), slice(20, 44), "small_vehicle")            # car, 240 px
    paint(slice(30, 54), slice(100, 110), "small_vehicle")          # car, 240 px, upright
    paint(slice(70, 80), slice(60, 84), "small_vehicle")            # car, 240 px
    paint(slice(90, 100), slice(0, 6), "small_vehicle")             # fragment at the border, 60 px
    paint(slice(60, 74), slice(120, 160), "large_vehicle")          # truck reaching the right border
    paint(slice(5, 25), slice(130, 150), "storage_tank")
    paint(slice(100, 102), slice(30, 32), "small_vehicle")          # a 4-pixel speck
    paint(slice(40, 50), slice(20, 40), "large_vehicle", (10, 20, 30))
    classes[40:50, 40:44] = _CLASS_COLOUR["small_vehicle"]          # same instance, other class
    instances[40:50, 40:44] = (10, 20, 30)
    classes[110:115, 110:115] = _CLASS_COLOUR["small_vehicle"]
    instances[110:115, 110:115] = (200, 1, 0)                       # id 456: below the devkit's 1000
    Image.new("RGB", (160, 120), (90, 90, 90)).save(folder / f"{name}.png")
    Image.fromarray(classes).save(folder / f"{name}_instance_color_RGB.png")
    Image.fromarray(instances).save(folder / f"{name}_instance_id_RGB.png")


def test_isaid_reader_boxes_each_instance_around_its_pixels(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    _write_isaid(tmp_path)
    fmt, (image,) = read_folder(tmp_path)
    assert fmt == "isaid" and image.name == "P9001" and image.image_path.name == "P9001.png"
    boxes = sorted((o.class_name, o.box, o.difficult) for o in image.objects)
    assert boxes == [
        ("car", (0, 90, 6, 100), True),           # a sliver of a car cut by the border
        ("car", (20, 10, 44, 20), False),
        ("car", (30, 100, 32, 102), True),        # a speck, not an object
        ("car", (60, 70, 84, 80), False),
        ("car", (100, 30, 110, 54), False),
        ("large_vehicle", (20, 40, 44, 50), False),  # the class under most of it
        ("large_vehicle", (120, 60, 160, 74), False),  # at the border but whole
        ("storage_tank", (130, 5, 150, 25), False),
    ]
    assert "over 2 classes" in caplog.text
    # no GSD in the masks: the car boxes (24 px long) give 4.7 m / 24 px
    assert image.gsd == pytest.approx(4.7 / 24) and image.gsd_source == "estimated"
    _, (given,) = read_folder(tmp_path, gsd=0.3, fmt="isaid")
    assert given.gsd == 0.3 and given.gsd_source == "option"


def test_isaid_reader_refuses_foreign_colours_and_missing_masks(tmp_path: Path) -> None:
    _write_isaid(tmp_path)
    colours = np.asarray(Image.open(tmp_path / "P9001_instance_color_RGB.png")).copy()
    colours[0, 0] = (255, 0, 0)
    Image.fromarray(colours).save(tmp_path / "P9001_instance_color_RGB.png")
    with pytest.raises(UnsupportedInputError, match=r"\(255, 0, 0\) is not an iSAID class colour"):
        read_folder(tmp_path)
    (tmp_path / "P9001_instance_id_RGB.png").unlink()
    with pytest.raises(UnsupportedInputError, match=r"no instance mask P9001_instance_id_RGB\.png"):
        read_folder(tmp_path, fmt="isaid")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnsupportedInputError, match="no image with iSAID masks"):
        read_folder(tmp_path / "empty", fmt="isaid")


def test_gsd_estimate_from_car_boxes() -> None:
    # 47-pixel long sides are 4.7 m cars at 0.1 m
    images = [_image("a", *(LabelledObject("car", (0, 0, 47, 20)) for _ in range(5)))]
    assert estimate_gsd(images) == pytest.approx(0.1)
    assert estimate_gsd([_image("b")]) is None


@pytest.mark.shared_data
def test_real_folders_read(shared_data: Path) -> None:
    fmt, kit = read_folder(shared_data / "kit_ais_aerial_cars")
    assert fmt == "yolo" and len(kit) == 11
    assert sum(o.class_name == "car" for i in kit for o in i.objects) == 440  # 438 cars + 2 minibuses
    assert 0.1 < (kit[0].gsd or 0) < 0.2
    fmt, dota = read_folder(shared_data / "dota_samples" / "devkit")
    p1888 = next(i for i in dota if i.name == "P1888")
    assert fmt == "dota" and p1888.gsd == pytest.approx(0.266, abs=0.001)
    classes = [o.class_name for o in p1888.objects]
    assert classes.count("large_vehicle") == 50 and classes.count("car") == 14


@pytest.mark.shared_data
def test_real_isaid_samples_read(shared_data: Path) -> None:
    """The iSAID devkit's three sample images: every instance of the class masks, counted per class."""
    fmt, images = read_folder(shared_data / "isaid_dota_samples")
    assert fmt == "isaid" and [i.name for i in images] == ["P0003", "P0004", "P0005"]
    counts = {i.name: {c: sum(o.class_name == c for o in i.objects)
                       for c in ("car", "large_vehicle", "storage_tank")} for i in images}
    assert counts == {
        "P0003": {"car": 18, "large_vehicle": 40, "storage_tank": 1},
        "P0004": {"car": 24, "large_vehicle": 92, "storage_tank": 0},
        "P0005": {"car": 32, "large_vehicle": 99, "storage_tank": 0},
    }
    assert not any(o.difficult for i in images for o in i.objects)  # no specks or slivers in these
    # cars about 39 px long: about 0.12 m, Google Earth imagery of car parks and a bus depot
    assert all(i.gsd_source == "estimated" and 0.1 < (i.gsd or 0) < 0.14 for i in images)


def test_report_serialises(tmp_path: Path) -> None:
    from sitewatch.evaluation.detect import evaluate_folder

    _write_yolo(tmp_path, ["car", "truck", "bus"])
    report = evaluate_folder(
        tmp_path, lambda image: [PredictedObject("car", 0.9, (80, 45, 120, 55))],
        classes=("car", "large_vehicle"), score_threshold=0.5, detector_name="test", gsd=0.2,
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["classes"]["car"]["ap50"] == 1.0
    assert data["classes"]["large_vehicle"]["ap50"] == 0.0
    assert data["per_image"][0]["true"] == {"car": 1, "large_vehicle": 1}


@pytest.mark.shared_data
@pytest.mark.slow
def test_cli_on_held_out_real_frames(shared_data: Path, tmp_path: Path) -> None:
    """What the issue author runs: `sitewatch eval detect <YOLO folder of unseen frames> --json`."""
    from typer.testing import CliRunner

    from sitewatch.app.cli import app

    source = shared_data / "kit_ais_aerial_cars"
    folder = tmp_path / "unseen"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "aerial.names").symlink_to(source / "aerial.names")
    for name in ("MOS74", "MOS84", "MOS93"):  # the held-out intersection scene
        (folder / "images" / f"{name}.png").symlink_to(source / "images" / f"{name}.png")
        (folder / "labels" / f"{name}.txt").symlink_to(source / "labels" / f"{name}.txt")
    result = CliRunner().invoke(app, ["eval", "detect", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["format"] == "yolo" and report["images"] == 3 and report["gsd_sources"] == ["estimated"]
    car = report["classes"]["car"]
    assert car["ground_truth"] > 60
    assert car["ap50"] >= 0.7 and car["mean_rel_count_error"] <= 0.35

    table = CliRunner().invoke(app, ["eval", "detect", str(folder)])
    assert table.exit_code == 0 and "AP50" in table.output and "car" in table.output


def test_cli_refuses_a_missing_folder(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sitewatch.app.cli import app

    result = CliRunner().invoke(app, ["eval", "detect", str(tmp_path / "nope"), "--json"])
    assert result.exit_code != 0
    assert isinstance(result.exception, UnsupportedInputError)
    assert "is not a folder" in str(result.exception)


def test_recall_by_condition_tells_shadow_and_heading(tmp_path: Path) -> None:
    """Four cars on a bright ground, two in a dark patch (shadow), two boxed nearly square (diagonal)."""
    pixels = np.full((200, 300), 200, np.uint8)
    pixels[:100, :150] = 40  # a building's shadow over the top-left quarter
    path = tmp_path / "frame.png"
    Image.fromarray(pixels).convert("RGB").save(path)
    cars = (
        LabelledObject("car", (40.0, 40.0, 70.0, 52.0)),     # in shadow, along the x axis
        LabelledObject("car", (60.0, 60.0, 80.0, 76.0)),     # in shadow, nearly square: diagonal
        LabelledObject("car", (200.0, 140.0, 230.0, 152.0)),  # in sun, along the axis
        LabelledObject("car", (240.0, 40.0, 260.0, 56.0)),   # in sun, diagonal
    )
    image = LabelledImage("frame", path, cars)
    predicted = [PredictedObject("car", 0.9, cars[2].box), PredictedObject("car", 0.8, cars[1].box),
                 PredictedObject("car", 0.2, cars[0].box)]  # below the threshold: not found
    found = found_objects(image.objects, predicted, "car", 0.5)
    assert found == [False, True, True, False]
    recall = {c.condition: (c.found, c.ground_truth)
              for c in recall_by_condition([image], [predicted], "car", 0.5)}
    assert recall == {"in_shadow": (1, 2), "in_sun": (1, 2), "diagonal": (1, 2), "along_axes": (1, 2)}
