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

from sitewatch.analytics.change import FALLBACK_CHANGE_METHOD, get_change_detector
from sitewatch.app.cli import app
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.change import (
    Confusion,
    discover_pairs,
    evaluate_change,
    evaluate_default,
    evaluate_methods,
)


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


def _write_levir(root: Path, pairs: int = 2, suffix: str = ".png") -> None:
    rng = np.random.default_rng(0)
    for part in ("A", "B", "label"):
        (root / part).mkdir(parents=True)
    for index in range(pairs):
        before = (ndimage.gaussian_filter(rng.normal(size=(64, 64, 3)), (2, 2, 0)) * 200 + 100).clip(0, 255)
        after = before.copy()
        label = np.zeros((64, 64), np.uint8)
        label[10:30, 20:40] = 255
        after[10:30, 20:40] = 250
        name = f"pair_{index}"
        Image.fromarray(before.astype(np.uint8)).save(root / "A" / f"{name}{suffix}")
        Image.fromarray(after.astype(np.uint8)).save(root / "B" / f"{name}{suffix}")
        Image.fromarray(label).save(root / "label" / f"{name}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "A" / "unlabelled.png")


def _write_sparse(folder: Path, names: tuple[str, ...] = (), gsd: float = 30.0, crs: bool = True) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    before = (ndimage.gaussian_filter(rng.normal(size=(4, 60, 60)), (0, 2, 2)) * 100 + 100).clip(0, 255)
    after = before * 0.9 + 5
    after[:, 5:25, 5:25] = 255
    profile = {"driver": "GTiff", "width": 60, "height": 60, "count": 4, "dtype": "uint8",
               "crs": "EPSG:32651" if crs else None, "transform": Affine(gsd, 0, 500000, 0, -gsd, 3500000),
               "photometric": "MINISBLACK"}
    for name, pixels in (("2000.tif", before), ("2003.tif", after)):
        with rasterio.open(folder / name, "w", **profile) as target:
            target.write(pixels.astype(np.uint8))
            for index, band in enumerate(names, start=1):
                target.set_band_description(index, band)
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
    # PNG pairs: bands named by their colour interpretation, no GSD in the files
    assert pairs[0].bands == ("red", "green", "blue")
    assert pairs[0].gsd is None and pairs[0].gsd_source == "unknown"


@pytest.mark.parametrize("suffix", [".jpg", ".bmp"])
def test_jpeg_and_bmp_pairs_are_red_green_blue(tmp_path: Path, suffix: str) -> None:
    _write_levir(tmp_path, pairs=1, suffix=suffix)
    (pair,) = discover_pairs(tmp_path)
    assert pair.bands == ("red", "green", "blue")


def test_gsd_for_pairs_whose_files_carry_none(tmp_path: Path) -> None:
    _write_levir(tmp_path / "levir")
    assert {p.gsd_source for p in discover_pairs(tmp_path / "levir", gsd=0.5)} == {"option"}
    (tmp_path / "levir" / "gsd.txt").write_text("0.5\n", encoding="utf-8")
    assert {(p.gsd, p.gsd_source) for p in discover_pairs(tmp_path / "levir")} == {(0.5, "metadata")}
    assert {(p.gsd, p.gsd_source) for p in discover_pairs(tmp_path / "levir", gsd=0.3)} == {(0.3, "option")}
    # a data.yaml beside a folder of pair folders applies to all of them
    _write_sparse(tmp_path / "sets" / "Site", crs=False)
    (tmp_path / "sets" / "data.yaml").write_text("gsd: 2.0\n", encoding="utf-8")
    (pair,) = discover_pairs(tmp_path / "sets")
    assert (pair.gsd, pair.gsd_source) == (2.0, "metadata")
    # a georeferenced raster keeps its own
    _write_sparse(tmp_path / "geo" / "Site")
    (pair,) = discover_pairs(tmp_path / "geo", gsd=0.5)
    assert (pair.gsd, pair.gsd_source) == (30.0, "file")
    (tmp_path / "levir" / "gsd.txt").write_text("half a metre\n", encoding="utf-8")
    with pytest.raises(UnsupportedInputError, match=r"gsd.txt: expected one number"):
        list(discover_pairs(tmp_path / "levir"))
    with pytest.raises(UnsupportedInputError, match="must be positive"):
        list(discover_pairs(tmp_path / "levir", gsd=-1.0))


def test_sparse_reader_scores_only_labelled_pixels(tmp_path: Path) -> None:
    _write_sparse(tmp_path / "Site")
    (pair,) = discover_pairs(tmp_path)
    assert pair.name == "Site" and pair.gsd == 30.0 and pair.before.shape == (4, 60, 60)
    assert pair.gsd_source == "file" and pair.bands == ("b1", "b2", "b3", "b4")
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
        "contrast", "cva", "irmad", "learned", "learned-site", "pca-kmeans", "segments", "default"]
    assert report["labelled_pixels"] == 2 * 64 * 64 and report["not_scored"] == []
    assert report["inputs"]["pair_0"] == {"gsd": None, "gsd_source": "unknown",
                                          "bands": ["red", "green", "blue"]}
    for method in report["methods"]:
        assert method["operating_point"]
        assert set(method["pooled"]) >= {"precision", "recall", "f1", "iou", "kappa"}
    by_name = {m["method"]: m for m in report["methods"]}
    assert by_name["cva"]["pooled"]["f1"] > 0.9
    # PNG pairs carry no GSD: the default is the fallback, scored as that method scores
    default = by_name["default"]
    assert default["chosen"] == FALLBACK_CHANGE_METHOD
    assert default["chosen_per_pair"] == {"pair_0": FALLBACK_CHANGE_METHOD, "pair_1": FALLBACK_CHANGE_METHOD}
    assert default["pooled"] == by_name[FALLBACK_CHANGE_METHOD]["pooled"]
    assert "chosen" not in by_name["cva"]


def test_cli_gsd_makes_the_default_the_learned_model_on_rgb(tmp_path: Path) -> None:
    _write_levir(tmp_path)
    outcome = CliRunner().invoke(app, ["eval", "change", str(tmp_path), "--gsd", "0.5", "--json",
                                       "-m", "learned", "-m", "default"])
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.output)
    learned, default = report["methods"]
    assert default["method"] == "default" and default["chosen"] == "learned"
    assert default["pooled"] == learned["pooled"] and report["inputs"]["pair_1"]["gsd_source"] == "option"
    table = CliRunner().invoke(app, ["eval", "change", str(tmp_path), "--method", "default"])
    assert table.exit_code == 0, table.output
    scored = table.output.split("operating points")[0]
    assert f"default ({FALLBACK_CHANGE_METHOD})" in scored and "learned" not in scored


def test_methods_get_the_rgb_bands_by_name(tmp_path: Path) -> None:
    # 0.5 m pairs stored as nir, blue, green, red: the learned model must see red, green, blue
    _write_sparse(tmp_path / "Site", names=("nir", "blue", "green", "red"), gsd=0.5)
    (pair,) = discover_pairs(tmp_path)
    learned = get_change_detector("learned")
    (scored,) = evaluate_change([pair], [learned])
    direct = learned(pair.before[[3, 2, 1]], pair.after[[3, 2, 1]])
    assert scored.pooled == Confusion.of(direct.mask, pair)
    default = evaluate_default([pair])
    assert default.chosen == (("Site", "learned"),) and default.pooled == scored.pooled
    assert default.label == "default (learned)"


def test_a_method_without_its_bands_is_left_out_or_refused(tmp_path: Path) -> None:
    _write_sparse(tmp_path / "Site")  # 30 m, bands unnamed
    (pair,) = discover_pairs(tmp_path)
    evaluation = evaluate_methods([pair])
    assert "learned" not in [s.method for s in evaluation.scores]
    assert [name for name, _ in evaluation.not_scored] == ["learned", "learned-site"]
    for _, why in evaluation.not_scored:
        assert "red, green, blue bands by name" in why and "'b1', 'b2'" in why
    default = next(s for s in evaluation.scores if s.method == "default")
    assert default.chosen == (("Site", "irmad"),)
    refused = CliRunner().invoke(app, ["eval", "change", str(tmp_path), "--method", "learned"])
    assert refused.exit_code != 0
    assert "red, green, blue bands by name" in str(refused.exception)
    listed = CliRunner().invoke(app, ["eval", "change", str(tmp_path)])
    assert listed.exit_code == 0 and "not scored: learned" in listed.output


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
    assert {p.bands for p in levir} == {("red", "green", "blue")} and {p.gsd for p in levir} == {None}
    cva, pca = evaluate_change(levir, [get_change_detector("cva"), get_change_detector("pca-kmeans")])
    assert cva.pooled.f1 == pytest.approx(0.23, abs=0.02)
    assert pca.pooled.f1 == pytest.approx(0.23, abs=0.02)
    landsat = list(discover_pairs(shared_data / "landsat_taizhou_nanjing_cd"))
    assert {p.gsd for p in landsat} == {30.0}
    (irmad,) = evaluate_change(landsat, [get_change_detector("irmad")])
    assert irmad.pooled.overall_accuracy > 0.93 and irmad.pooled.kappa > 0.8
    # at 30 m the pipeline's default is IR-MAD, so it scores exactly as IR-MAD does
    default = evaluate_default(landsat)
    assert default.chosen_methods == ("irmad",) and default.pooled == irmad.pooled
