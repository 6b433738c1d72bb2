"""`sitewatch eval change`: readers for both layouts, pooled metrics, CLI output, reference figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from sitewatch.analytics.change import get_change_detector
from sitewatch.app.cli import app
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.change import Confusion, discover_pairs, evaluate_change


def test_pooled_metrics_by_hand() -> None:
    counts = Confusion(tp=30, fp=10, fn=20, tn=140)
    assert counts.precision == pytest.approx(0.75)
    assert counts.recall == pytest.approx(0.6)
    assert counts.f1 == pytest.approx(2 * 30 / (60 + 30))
    assert counts.iou == pytest.approx(0.5)
    assert counts.overall_accuracy == pytest.approx(0.85)
    expected = (40 * 50 + 160 * 150) / 200**2
    assert counts.kappa == pytest.approx((0.85 - expected) / (1 - expected))
    pooled = counts + Confusion(tp=0, fp=0, fn=0, tn=100)
    assert pooled.total == 300 and pooled.f1 == counts.f1
    assert Confusion().f1 == 0.0 and Confusion().kappa == 0.0


def _write_levir(root: Path, pairs: int = 2) -> None:
    rng = np.random.default_rng(0)
    for part in ("A", "B", "label"):
        (root / part).mkdir(parents=True)
    for index in range(pairs):
        before = (ndimage.gaussian_filter(rng.normal(size=(64, 64, 3)), (2, 2, 0)) * 200 + 100).clip(0, 255)
        after = before.copy()
        label = np.zeros((64, 64), np.uint8)
        label[10:30, 20:40] = 255
        after[10:30, 20:40] = 250
        name = f"pair_{index}.png"
        Image.fromarray(before.astype(np.uint8)).save(root / "A" / name)
        Image.fromarray(after.astype(np.uint8)).save(root / "B" / name)
        Image.fromarray(label).save(root / "label" / name)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "A" / "unlabelled.png")


def _write_sparse(folder: Path) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    before = (ndimage.gaussian_filter(rng.normal(size=(4, 60, 60)), (0, 2, 2)) * 100 + 100).clip(0, 255)
    after = before * 0.9 + 5
    after[:, 5:25, 5:25] = 255
    profile = {"driver": "GTiff", "width": 60, "height": 60, "count": 4, "dtype": "uint8",
               "crs": "EPSG:32651", "transform": Affine(30, 0, 500000, 0, -30, 3500000)}
    for name, pixels in (("2000.tif", before), ("2003.tif", after)):
        with rasterio.open(folder / name, "w", **profile) as target:
            target.write(pixels.astype(np.uint8))
    change = np.zeros((60, 60), np.uint8)
    change[8:20, 8:20] = 255
    unchanged = np.zeros((60, 60), np.uint8)
    unchanged[40:55, 40:55] = 255
    Image.fromarray(change).save(folder / "change.bmp")
    Image.fromarray(unchanged).save(folder / "unchanged.bmp")


def test_levir_reader_pairs_images_with_labels(tmp_path: Path) -> None:
    _write_levir(tmp_path)
    pairs = list(discover_pairs(tmp_path))
    assert [p.name for p in pairs] == ["pair_0", "pair_1"]
    assert pairs[0].before.shape == (3, 64, 64) and pairs[0].labelled.all()
    assert pairs[0].changed.sum() == 400


def test_sparse_reader_scores_only_labelled_pixels(tmp_path: Path) -> None:
    _write_sparse(tmp_path / "Site")
    (pair,) = discover_pairs(tmp_path)
    assert pair.name == "Site" and pair.gsd == 30.0 and pair.before.shape == (4, 60, 60)
    assert pair.labelled.sum() == 144 + 225 and pair.changed.sum() == 144
    (score,) = evaluate_change([pair], [get_change_detector("cva")])
    assert score.pooled.total == 369
    assert score.pooled.f1 == 1.0 and score.pooled.kappa == 1.0


def test_unknown_layout_is_refused_with_the_expected_layouts(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInputError, match="A/ B/ label/"):
        list(discover_pairs(tmp_path))


def test_cli_json_reports_every_method_and_its_operating_point(tmp_path: Path) -> None:
    _write_levir(tmp_path)
    outcome = CliRunner().invoke(app, ["eval", "change", str(tmp_path), "--json"])
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.output)
    assert [m["method"] for m in report["methods"]] == [
        "contrast", "cva", "irmad", "learned", "pca-kmeans", "segments"]
    assert report["labelled_pixels"] == 2 * 64 * 64
    for method in report["methods"]:
        assert method["operating_point"]
        assert set(method["pooled"]) >= {"precision", "recall", "f1", "iou", "kappa"}
    cva = next(m for m in report["methods"] if m["method"] == "cva")
    assert cva["pooled"]["f1"] > 0.9


def test_cli_table_with_one_method(tmp_path: Path) -> None:
    _write_levir(tmp_path)
    outcome = CliRunner().invoke(app, ["eval", "change", str(tmp_path), "--method", "cva"])
    assert outcome.exit_code == 0, outcome.output
    assert "cva" in outcome.output and "Otsu" in outcome.output


@pytest.mark.slow
def test_reference_figures_on_levir_and_landsat(shared_data: Path) -> None:
    """The classical references of the issue (CVA 0.23, PCA-KMeans 0.23 pooled F1 on LEVIR samples),
    and IR-MAD's accuracy on the Landsat pairs, reproduced."""
    levir = list(discover_pairs(shared_data / "levir_cd_samples"))
    cva, pca = evaluate_change(levir, [get_change_detector("cva"), get_change_detector("pca-kmeans")])
    assert cva.pooled.f1 == pytest.approx(0.23, abs=0.02)
    assert pca.pooled.f1 == pytest.approx(0.23, abs=0.02)
    landsat = list(discover_pairs(shared_data / "landsat_taizhou_nanjing_cd"))
    (irmad,) = evaluate_change(landsat, [get_change_detector("irmad")])
    assert irmad.pooled.overall_accuracy > 0.93 and irmad.pooled.kappa > 0.8
