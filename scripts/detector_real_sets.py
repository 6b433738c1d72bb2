"""Score a vehicle detector on every real labelled set in ../shared/data, one table.

    .venv/bin/python scripts/detector_real_sets.py [--card PATH/TO/vehicles.json] [--json]

Sets: the KIT AIS intersection scene split as the training config splits it (validation frames
MOS74, MOS79, which chose the car threshold; test frames MOS84, MOS89, MOS93, used for no choice),
the DOTA samples (P1888 bus depot alone, and with the P0706 marina, whose cars are unlabelled),
and the iSAID samples (boxes from instance masks). Each set is read and scored exactly as
``sitewatch eval detect`` reads and scores it; the KIT splits are folders of links made in a
temporary directory. Nothing here chooses anything: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from sitewatch.analytics.objects.onnx import OnnxDetector, load_detector, shipped_model_dir
from sitewatch.evaluation.detect import LabelledImage, PredictedObject, evaluate_folder

SHARED = Path(os.environ.get("SITEWATCH_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))


def _kit_split(root: Path, names: tuple[str, ...]) -> Path:
    kit = SHARED / "kit_ais_aerial_cars"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name in names:
        (root / "images" / f"{name}.png").symlink_to(kit / "images" / f"{name}.png")
        (root / "labels" / f"{name}.txt").symlink_to(kit / "labels" / f"{name}.txt")
    (root / "aerial.names").symlink_to(kit / "aerial.names")
    return root


def _dota_p1888(root: Path) -> Path:
    devkit = SHARED / "dota_samples" / "devkit"
    (root / "images").mkdir(parents=True)
    (root / "labelTxt").mkdir()
    (root / "images" / "P1888.png").symlink_to(devkit / "images" / "P1888.png")
    (root / "labelTxt" / "P1888.txt").symlink_to(devkit / "labelTxt" / "P1888.txt")
    return root


def _predict(detector: OnnxDetector):  # type: ignore[no-untyped-def]
    def predict(image: LabelledImage) -> list[PredictedObject]:
        with Image.open(image.image_path) as opened:
            pixels = np.asarray(opened.convert("RGB")).transpose(2, 0, 1)
        gsd = image.gsd if image.gsd is not None else detector.info.model_gsd
        return [PredictedObject(b.class_name, b.score, (b.x0, b.y0, b.x1, b.y1))
                for b in detector.detect(pixels, gsd, score_threshold=0.05)]
    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", type=Path, default=shipped_model_dir() / "vehicles.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: set SITEWATCH_SHARED_DATA to the real data folder")
    detector = load_detector(args.card, threads=2)
    thresholds = detector.info.thresholds()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sitewatch-sets-") as scratch:
        sets = {
            "KIT AIS test (MOS84, 89, 93)": _kit_split(Path(scratch) / "kit_test",
                                                       ("MOS84", "MOS89", "MOS93")),
            "KIT AIS validation (MOS74, 79)": _kit_split(Path(scratch) / "kit_val", ("MOS74", "MOS79")),
            "DOTA P1888 (bus depot)": _dota_p1888(Path(scratch) / "p1888"),
            "DOTA P1888 + P0706 (marina)": SHARED / "dota_samples" / "devkit",
            "iSAID P0003-P0005": SHARED / "isaid_dota_samples",
        }
        for name, folder in sets.items():
            report = evaluate_folder(folder, _predict(detector), classes=detector.info.classes,
                                     score_threshold=thresholds, detector_name=detector.info.name)
            for score in report.classes:
                if score.class_name not in ("car", "large_vehicle"):
                    continue
                conditions = {c.condition: c.recall for c in report.conditions
                              if c.class_name == score.class_name}
                rows.append({"set": name, "class": score.class_name, "ap50": score.ap50,
                             "precision": score.precision, "recall": score.recall,
                             "true": score.ground_truth, "found": score.predicted,
                             "relative_count_error": score.mean_rel_count_error,
                             "recall_in_shadow": conditions.get("in_shadow"),
                             "recall_diagonal": conditions.get("diagonal")})
    if args.json:
        print(json.dumps({"card": str(args.card), "thresholds": thresholds, "rows": rows}, indent=2))
        return

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    print(f"{args.card} thresholds " + ", ".join(f"{k} {v:.2f}" for k, v in thresholds.items()))
    print(f"{'set':32s} {'class':14s} {'AP50':>6s} {'P':>6s} {'R':>6s} {'true':>5s} {'found':>5s} "
          f"{'count err':>9s} {'R shadow':>8s} {'R diag':>7s}")
    for r in rows:
        print(f"{r['set']:32s} {r['class']:14s} {fmt(r['ap50']):>6s} {fmt(r['precision']):>6s} "
              f"{fmt(r['recall']):>6s} {r['true']:5d} {r['found']:5d} {fmt(r['relative_count_error']):>9s} "
              f"{fmt(r['recall_in_shadow']):>8s} {fmt(r['recall_diagonal']):>7s}")


if __name__ == "__main__":
    main()
