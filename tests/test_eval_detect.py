"""Detection metrics and the YOLO/DOTA folder readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.detect import (
    LabelledImage,
    LabelledObject,
    PredictedObject,
    average_precision,
    estimate_gsd,
    match_class,
    read_folder,
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
