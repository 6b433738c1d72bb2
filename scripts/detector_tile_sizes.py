"""Does the detector's tile size, or model, change what it finds? Paired, object by object, at 0.5 m.

    .venv/bin/python scripts/detector_tile_sizes.py [--tiles 640 608 704 1280] [--mosaics DIR]
    .venv/bin/python scripts/detector_tile_sizes.py --cards OTHER/vehicles-0.5m.json [--mosaics DIR]
    .venv/bin/python scripts/detector_tile_sizes.py --cards OTHER.json --gsd 1.0   # mosaics at 1 m

The real labelled sets of docs/detector.md are finer than the model's 0.3 m and fit one tile, so
at their own GSD the tile size hardly matters. Here each set's frames are resampled to 0.5 m (PIL
BOX, as ``benchmarks/bench_detect.py`` makes its chip) and laid out in three seeded mosaics of 12
frames (a frame repeats in them), which at 0.3 m span several tiles; the simulator renders of seeds
8 and 9 (0.5 m and 1 m) are scored as they are. For each true object the script records whether a
box at its class's operating threshold matched it (IoU 0.5), once per tile size, and prints AP50
(every box down to a score of 0.05 ranked), recall, the per-image count error and McNemar's exact
two-sided p of each tile size against the first:
``lost`` objects found with the first tile size and missed with the other, ``gained`` the reverse.
Tile sizes near the first (608, 704) move only the seams and the phase of the network's stride
grid: their differences are what seam placement alone does, the noise a real change must exceed.
Objects repeated across mosaics are not independent, so p-values on the mosaics are optimistic.

``--cards`` compares other models with the shipped one instead (each at its card's tiles and
thresholds), e.g. a model trained at 0.5 m (``configs/experiments/detector-0.5m.yaml``) on the same
0.5 m scenes.

``--mosaics DIR`` keeps the mosaics as DOTA folders (``gsd:0.5`` in each label file), for
``sitewatch eval detect DIR/kit_test --json`` and the like; ``--gsd`` makes them at another GSD
(the renders keep theirs and are reported per GSD: ``renders8@1`` are the 1 m renders of seed 8).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from math import comb
from pathlib import Path

import numpy as np
from PIL import Image

from sitewatch.analytics.objects.onnx import OnnxDetector, load_detector, load_shipped_detector
from sitewatch.evaluation.detect import (
    LabelledImage,
    LabelledObject,
    PredictedObject,
    found_objects,
    read_folder,
    score_detections,
)
from sitewatch.training.config import load_config
from sitewatch.training.simulated import simulated_frames

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SITEWATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
GSD = 0.5
"""The mosaics' GSD unless ``--gsd`` says otherwise."""
RANKED = 0.05
"""Lowest score kept for AP50: every candidate the ranking needs, the operating thresholds above it."""
DOTA_NAMES = {"car": "small-vehicle", "large_vehicle": "large-vehicle"}
Scene = tuple[np.ndarray, float, list[LabelledObject]]


def _real_sets() -> dict[str, list]:  # type: ignore[type-arg]
    kit = read_folder(SHARED / "kit_ais_aerial_cars")[1]
    dota = read_folder(SHARED / "dota_samples" / "devkit")[1]
    return {
        "kit_test": [i for i in kit if i.name in {"MOS84", "MOS89", "MOS93"}],
        "kit_val": [i for i in kit if i.name in {"MOS74", "MOS79"}],
        "dota_p1888": [i for i in dota if i.name == "P1888"],
        "dota_all": dota,
        "isaid": read_folder(SHARED / "isaid_dota_samples")[1],
    }


def write_mosaics(out: Path, seed: int = 18, gsd: float = GSD) -> None:
    """Three mosaics at ``gsd`` per real set, as DOTA folders under ``out``."""
    rng = np.random.default_rng(seed)
    for set_name, images in _real_sets().items():
        frames = []
        for image in images:
            scale = image.gsd / gsd
            with Image.open(image.image_path) as opened:
                rgb = opened.convert("RGB")
            small = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BOX)
            sx, sy = small.width / rgb.width, small.height / rgb.height
            frames.append((small, [(o.class_name, o.box[0] * sx, o.box[1] * sy, o.box[2] * sx, o.box[3] * sy,
                                    o.difficult) for o in image.objects]))
        (out / set_name / "images").mkdir(parents=True)
        (out / set_name / "labelTxt").mkdir()
        for m in range(3):
            placed, x, y, row_height, column = [], int(rng.integers(0, 200)), int(rng.integers(0, 200)), 0, 0
            for k in range(max(12, len(frames))):
                small, objects = frames[(k + m) % len(frames)]
                placed.append((x, y, small, objects))
                row_height = max(row_height, small.height)
                column += 1
                if column == 4:
                    column, x, y = 0, int(rng.integers(0, 60)), y + row_height + int(rng.integers(0, 60))
                    row_height = 0
                else:
                    x += small.width + int(rng.integers(0, 60))
            width = max(px + s.width for px, _, s, _ in placed) + int(rng.integers(0, 60))
            height = max(py + s.height for _, py, s, _ in placed) + int(rng.integers(0, 60))
            canvas = Image.new("RGB", (width, height), (110, 112, 105))
            lines = ["imagesource:mosaic", f"gsd:{gsd}"]
            for px, py, small, objects in placed:
                canvas.paste(small, (px, py))
                for cls, x0, y0, x1, y1, difficult in objects:
                    x0, y0, x1, y1 = x0 + px, y0 + py, x1 + px, y1 + py
                    lines.append(f"{x0:.2f} {y0:.2f} {x1:.2f} {y0:.2f} {x1:.2f} {y1:.2f} {x0:.2f} {y1:.2f} "
                                 f"{DOTA_NAMES.get(cls, cls)} {int(difficult)}")
            canvas.save(out / set_name / "images" / f"mosaic{m}.png")
            label_path = out / set_name / "labelTxt" / f"mosaic{m}.txt"
            label_path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _scenes(mosaics: Path, classes: tuple[str, ...]) -> dict[str, list[Scene]]:
    config = load_config(ROOT / "configs" / "detector.yaml")
    groups: dict[str, list[Scene]] = {}
    # Seed 8 measures; seed 9 chose the thresholds of the classes without a real validation frame.
    for spec in (config.simulated_holdout, config.simulated_validation):
        assert spec is not None, "configs/detector.yaml names the renders of seeds 8 and 9"
        for frame in simulated_frames(spec, classes):
            objects = [LabelledObject(classes[int(c)], (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
                       for b, c in zip(frame.boxes, frame.classes, strict=True)]
            groups.setdefault(f"renders{spec.seed}@{frame.gsd:g}", []).append(
                (np.asarray(frame.image).transpose(2, 0, 1), frame.gsd, objects))
    for folder in sorted(p for p in mosaics.iterdir() if p.is_dir()):
        for image in read_folder(folder)[1]:
            with Image.open(image.image_path) as opened:
                pixels = np.asarray(opened.convert("RGB")).transpose(2, 0, 1)
            assert image.gsd is not None
            groups.setdefault(folder.name, []).append((pixels, image.gsd, list(image.objects)))
    return groups


def _mcnemar(lost: int, gained: int) -> float:
    n = lost + gained
    return min(1.0, 2 * sum(comb(n, k) for k in range(min(lost, gained) + 1)) / 2**n) if n else 1.0


Variant = tuple[str, OnnxDetector, int | None, int | None]
"""(label, detector, tile, overlap): one way of running a detector; None keeps the model card's."""


def compare(mosaics: Path, variants: list[Variant]) -> None:
    """Each variant on every scene; AP50, recall and count error per class, paired against the first."""
    classes = variants[0][1].info.classes
    for group, scenes in _scenes(mosaics, classes).items():
        found: dict[str, dict[str, list[bool]]] = {label: {} for label, *_ in variants}
        ap50: dict[str, dict[str, float | None]] = {}
        errors: dict[str, dict[str, list[float]]] = {label: {} for label, *_ in variants}
        for label, detector, tile, overlap in variants:
            thresholds = detector.info.thresholds()  # each model at its own operating thresholds
            images, predictions = [], []
            for index, (pixels, gsd, objects) in enumerate(scenes):
                predicted = [PredictedObject(b.class_name, b.score, (b.x0, b.y0, b.x1, b.y1))
                             for b in detector.detect(pixels, gsd, score_threshold=RANKED, tile=tile,
                                                      overlap=overlap)]
                images.append(LabelledImage(f"{group}-{index}", Path(group), tuple(objects), gsd))
                predictions.append(predicted)
                for cls in classes:
                    truth = [o for o in objects if o.class_name == cls]
                    if not truth:
                        continue
                    flags = found_objects(truth, predicted, cls, thresholds[cls])
                    found[label].setdefault(cls, []).extend(f for f, o in zip(flags, truth, strict=True)
                                                            if not o.difficult)
                    true = sum(not o.difficult for o in truth)
                    count = sum(p.class_name == cls and p.score >= thresholds[cls] for p in predicted)
                    if true:
                        errors[label].setdefault(cls, []).append(abs(count - true) / true)
            scored = [c for c in classes if c in found[label]]
            ap50[label] = {score.class_name: score.ap50
                           for score in score_detections(images, predictions, scored, thresholds)[0]}
        first = variants[0][0]
        for cls, flags in found[first].items():
            base = np.array(flags)
            line = (f"{group:13s} {cls:13s} n={len(base):5d} | {first}: AP50 {_ap(ap50[first][cls])} recall "
                    f"{base.mean():.3f} count err {np.mean(errors[first][cls]):.3f}")
            for label, *_ in variants[1:]:
                other = np.array(found[label][cls])
                lost, gained = int((base & ~other).sum()), int((~base & other).sum())
                line += (f" | {label}: AP50 {_ap(ap50[label][cls])} recall {other.mean():.3f} count err "
                         f"{np.mean(errors[label][cls]):.3f} lost {lost} gained {gained} "
                         f"p={_mcnemar(lost, gained):.3f}")
            print(line, flush=True)


def _ap(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[640, 608, 704, 1280])
    parser.add_argument("--overlap", type=int, default=160)
    parser.add_argument("--cards", nargs="+", type=Path, metavar="CARD",
                        help="compare the shipped model with the models of these cards (each at its own "
                             "tiles and thresholds) instead of tile sizes")
    parser.add_argument("--mosaics", type=Path, help="write the mosaics here and keep them")
    parser.add_argument("--gsd", type=float, default=GSD, help=f"the mosaics' GSD in metres (default {GSD})")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: set SITEWATCH_SHARED_DATA to the real data folder")
    shipped = load_shipped_detector()
    if args.cards:
        variants: list[Variant] = [("shipped", shipped, None, None)] + [
            (card.stem, load_detector(card), None, None) for card in args.cards]
    else:
        variants = [(str(tile), shipped, tile, args.overlap) for tile in args.tiles]
    with tempfile.TemporaryDirectory(prefix="sitewatch-mosaics-") as scratch:
        mosaics = args.mosaics or Path(scratch)
        if args.mosaics is not None and args.mosaics.exists():
            raise SystemExit(f"{args.mosaics} exists; give a new folder")
        write_mosaics(mosaics, gsd=args.gsd)
        compare(mosaics, variants)


if __name__ == "__main__":
    main()
