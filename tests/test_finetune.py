"""Fine-tuning the shipped models on a user's own labels into a workspace, and the workspace using them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from shapely.geometry import Point
from typer.testing import CliRunner

from sitewatch.analytics.change import get_change_detector
from sitewatch.analytics.change.learned import LearnedBuildings
from sitewatch.analytics.objects.onnx import load_card, shipped_model_dir
from sitewatch.app.cli import app
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.types import Observation, Scene
from sitewatch.imagery.grid import lonlat_to_crs
from sitewatch.pipeline.detect import detect_observation
from sitewatch.pipeline.models import (
    with_change_model,
    workspace_change_card,
    workspace_detector,
    workspace_model_card,
)
from sitewatch.store import Workspace, chip_relpath
from toy_frames import toy_frames

torch = pytest.importorskip("torch", reason="fine-tuning needs the `train` extra (torch)")

from sitewatch.training.change_finetune import ChangeFineTuneSettings, fine_tune_change  # noqa: E402
from sitewatch.training.finetune import FineTuneSettings, fine_tune_detector, split_frames  # noqa: E402

TINY = FineTuneSettings(steps=3, batch=2, crop=64)
WHEN = datetime(2019, 2, 22, 2, 15, tzinfo=UTC)


def _frames(root: Path, count: int = 5, seed: int = 0) -> Path:
    return toy_frames(root, count, seed, names=("car", "truck"))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A labelled folder and a workspace whose detector was fine-tuned on it (a few steps)."""
    root = tmp_path_factory.mktemp("finetune")
    folder = _frames(root / "frames")
    fine_tune_detector([folder], root / "ws" / "models", settings=TINY)
    return folder, root / "ws"


def test_split_keeps_a_fifth_out_by_name_whatever_the_order() -> None:
    folders = [(Path("a"), [f"f{i}" for i in range(9)]), (Path("b"), ["x"])]
    held = split_frames(folders)
    assert sum(len(v) for v in held.values()) == 2
    assert held == split_frames(list(reversed([(f, list(reversed(n))) for f, n in folders])))
    assert sum(len(v) for v in split_frames([(Path("a"), ["one", "two"])]).values()) == 1


def test_fine_tuned_model_and_card_are_written(tuned: tuple[Path, Path]) -> None:
    folder, workspace = tuned
    card = load_card(workspace_model_card(workspace))
    shipped = load_card(shipped_model_dir() / "vehicles.json")
    assert card.name == "vehicles-finetuned" and card.classes == shipped.classes
    assert card.training["fine_tuned_from"] == {"name": "vehicles", "version": shipped.version,
                                                "sha256": shipped.sha256}
    assert card.training["folders"] == [str(folder.resolve())]
    trained = card.training["frames"][str(folder.resolve())]
    held = card.training["validation_frames"][str(folder.resolve())]
    assert len(held) == 1 and sorted(trained + held) == [f"F{i}" for i in range(5)]
    assert card.training["steps"] == 3 and card.training["seconds"] > 0
    assert set(card.metrics["validation"]) == {"before", "after"}
    assert card.metrics["validation"]["after"]["frames"] == held
    assert (workspace / "models" / "vehicles.weights.npz").is_file() and card.weights_sha256


def test_workspace_detection_uses_the_fine_tuned_model(tuned: tuple[Path, Path]) -> None:
    folder, workspace = tuned
    assert workspace_detector(workspace) is workspace_detector(workspace)  # loaded once
    with Workspace.init(workspace) as ws:
        site = ws.site("sanumdong")
        centre = lonlat_to_crs(Point(site.geometry.centroid), site.utm_epsg)
        tif = ws.staging_dir() / "frame.tif"
        with Image.open(folder / "images" / "F0.png") as frame:
            pixels = np.asarray(frame.convert("RGB")).transpose(2, 0, 1)
        with rasterio.open(tif, "w", driver="GTiff", width=320, height=240, count=3, dtype="uint8",
                           crs=f"EPSG:{site.utm_epsg}",
                           transform=from_origin(centre.x, centre.y, 0.15, 0.15)) as sink:
            sink.write(pixels)
        scene = Scene(id="frame", uri=str(tif), sensor="aerial", acquired=WHEN, gsd=0.15,
                      crs=f"EPSG:{site.utm_epsg}", footprint=site.geometry, bands=("red", "green", "blue"),
                      width=320, height=240, checksum=hashlib.sha256(tif.read_bytes()).hexdigest())
        chip = chip_relpath("sanumdong", "obs-1")
        observation = Observation("obs-1", "sanumdong", "frame", WHEN, chip, 1.0)
        assert ws.add_scene(scene, [(observation, tif)])
        summary = detect_observation(ws, observation)
        assert summary.detector == "vehicles-finetuned"
        assert all(d.detector == "vehicles-finetuned" for d in ws.detections(observation_id="obs-1"))


def test_eval_compares_shipped_and_workspace_models_on_held_out_frames(tuned: tuple[Path, Path]) -> None:
    folder, workspace = tuned
    result = CliRunner().invoke(app, ["eval", "detect", str(folder), "-w", str(workspace), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    card = load_card(workspace_model_card(workspace))
    assert report["frames_trained_on_left_out"] == card.training["frames"][str(folder.resolve())]
    assert report["before"]["detector"] == "vehicles" and report["after"]["detector"] == "vehicles-finetuned"
    assert report["before"]["images"] == report["after"]["images"] == 1
    car_threshold = report["after"]["score_threshold"]["car"]
    assert car_threshold == card.score_threshold == dict(card.class_thresholds)["car"]
    table = CliRunner().invoke(app, ["eval", "detect", str(folder), "-w", str(workspace)])
    assert table.exit_code == 0 and "before" in table.output and "after" in table.output


def test_a_damaged_workspace_model_is_refused(tuned: tuple[Path, Path], tmp_path: Path) -> None:
    folder, workspace = tuned
    copy = tmp_path / "ws"
    (copy / "models").mkdir(parents=True)
    for path in (workspace / "models").iterdir():
        (copy / "models" / path.name).write_bytes(path.read_bytes())
    onnx = copy / "models" / "vehicles.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(UnsupportedInputError, match=r"does not match the checksum.*train detector --data"):
        workspace_detector(copy)
    result = CliRunner().invoke(app, ["eval", "detect", str(folder), "-w", str(copy)])
    assert isinstance(result.exception, UnsupportedInputError)  # the console entry point exits 4 with it


def test_fine_tuning_is_deterministic(tmp_path: Path, tuned: tuple[Path, Path]) -> None:
    folder, workspace = tuned
    again = fine_tune_detector([folder], tmp_path / "models", settings=TINY)
    first = load_card(workspace_model_card(workspace))
    assert again.sha256 == first.sha256
    assert load_card(again.card_path).weights_sha256 == first.weights_sha256


def test_train_cli_fine_tunes_into_the_workspace(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "frames", count=2)
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(app, ["train", "detector", "--data", str(folder), "-w", str(workspace),
                                      "--steps", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["card"] == str(workspace / "models" / "vehicles.json")
    assert len(summary["frames"]["training"]) == len(summary["frames"]["held_out"]) == 1
    assert set(summary["before"]) == set(summary["after"]) >= {"frames", "car"}


def test_train_cli_wants_a_config_or_data_not_both(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "frames", count=2)
    both = CliRunner().invoke(app, ["train", "detector", "configs/detector.yaml", "--data", str(folder)])
    neither = CliRunner().invoke(app, ["train", "detector"])
    pairs = CliRunner().invoke(app, ["train", "change", "configs/change.yaml", "--pairs", str(folder)])
    assert both.exit_code == neither.exit_code == pairs.exit_code == 2
    assert "not both" in both.output and "--data" in neither.output


def test_validation_folders_are_held_out_whole(tmp_path: Path) -> None:
    data, held = _frames(tmp_path / "a", count=2), _frames(tmp_path / "b", count=2, seed=3)
    result = fine_tune_detector([data, data], tmp_path / "models", validation=[held], settings=TINY)
    card = load_card(result.card_path)
    assert card.training["frames"] == {str(data.resolve()): ["F0", "F1"]}  # a folder given twice counts once
    assert card.training["validation_frames"] == {str(data.resolve()): [], str(held.resolve()): ["F0", "F1"]}
    assert len(card.metrics["validation"]["after"]["frames"]) == 2
    with pytest.raises(UnsupportedInputError, match="both to train on"):
        fine_tune_detector([data], tmp_path / "other", validation=[data], settings=TINY)


def test_too_few_or_unlabelled_frames_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInputError, match="at least two labelled frames"):
        fine_tune_detector([_frames(tmp_path / "one", count=1)], tmp_path / "models", settings=TINY)
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    with pytest.raises(UnsupportedInputError, match="no image with a YOLO label file"):
        fine_tune_detector([empty], tmp_path / "models", settings=TINY)
    frames = _frames(tmp_path / "trucks")
    for label in (frames / "labels").iterdir():
        label.write_text("4 0.5 0.5 0.1 0.1\n", encoding="utf-8")  # class 4 is not in the names: no vehicle
    with pytest.raises(UnsupportedInputError, match="hold no object of the model's classes"):
        fine_tune_detector([frames], tmp_path / "models", settings=TINY)
    assert not (tmp_path / "models").exists()


# --- the change model -----------------------------------------------------------------------------


def _pairs(root: Path, count: int = 3, seed: int = 1) -> Path:
    """LEVIR-style pairs: a textured ground where bright 'roofs' appear on the second date."""
    rng = np.random.default_rng(seed)
    for part in ("A", "B", "label"):
        (root / part).mkdir(parents=True)
    for index in range(count):
        ground = rng.normal(110, 12, (64, 64, 3)).clip(0, 255)
        after, label = ground.copy(), np.zeros((64, 64), np.uint8)
        for _ in range(2):
            r, c = rng.integers(4, 44, size=2)
            after[r:r + 16, c:c + 16] = (200, 190, 180)
            label[r:r + 16, c:c + 16] = 255
        Image.fromarray(ground.astype(np.uint8)).save(root / "A" / f"p{index}.png")
        Image.fromarray(after.astype(np.uint8)).save(root / "B" / f"p{index}.png")
        Image.fromarray(label).save(root / "label" / f"p{index}.png")
    return root


def test_change_fine_tuning_writes_a_model_the_workspace_and_eval_use(tmp_path: Path) -> None:
    folder = _pairs(tmp_path / "pairs")
    workspace = tmp_path / "ws"
    result = fine_tune_change([folder], workspace / "models",
                              settings=ChangeFineTuneSettings(steps=2, batch=2, crop=64))
    card = json.loads(workspace_change_card(workspace).read_text(encoding="utf-8"))
    assert card["name"] == "buildings-finetuned"
    assert card["training"]["fine_tuned_from"]["name"] == "buildings"
    assert len(result.validation_pairs) == 1 and len(result.train_pairs) == 2
    assert set(card["metrics"]["validation"]) == {"before", "after"}
    learned = with_change_model(get_change_detector("learned"), workspace_change_card(workspace))
    assert isinstance(learned, LearnedBuildings) and learned.model == workspace_change_card(workspace)
    assert with_change_model(get_change_detector("cva"), workspace_change_card(workspace)).name == "cva"
    assert "fine-tuned" in learned(np.zeros((3, 32, 32), np.float32), np.ones((3, 32, 32), np.float32)).rule

    scored = CliRunner().invoke(app, ["eval", "change", str(folder), "-m", "learned", "-m", "cva",
                                      "-w", str(workspace), "--json"])
    assert scored.exit_code == 0, scored.output
    report = json.loads(scored.output)
    assert [m["method"] for m in report["methods"]] == ["learned", "learned (workspace)", "cva"]
    assert report["pairs"] == list(result.validation_pairs)
    assert report["methods"][1]["pooled"]["f1"] == card["metrics"]["validation"]["after"]["f1"]

    onnx = workspace / "models" / "buildings.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(UnsupportedInputError, match=r"SHA-256.*train change --pairs"):
        learned(np.zeros((3, 32, 32), np.float32), np.ones((3, 32, 32), np.float32))
