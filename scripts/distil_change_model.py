"""Make the shipped learned change model one view in 8 bits from the float model it replaces.

The steps ``sitewatch train change configs/change.yaml`` runs after training when the config sets
``distil_steps`` and ``precision: int8`` (:mod:`sitewatch.training.change_distill`,
:func:`sitewatch.training.quantize.quantize_change_model`), run on the float model already
trained, so it need not be trained again (an hour): the student starts from the float weights
beside the model, learns the teacher's four-view mean in one view, and is written as an 8-bit
ONNX file with its float weights and card. The teacher is the float ONNX file of version 3:

    git show b96c2d3:src/sitewatch/analytics/change/models/buildings.onnx > /tmp/buildings-v3.onnx
    nice -n 10 .venv/bin/python scripts/distil_change_model.py /tmp/buildings-v3.onnx

It reads the card and weights in the package, writes the new ones there, and prints the
synthetic validation scores of the ONNX file written (500 pairs, the config's seed + 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sitewatch.analytics.change.learned import ChangeModelCard, normalise_date, shipped_model_dir
from sitewatch.analytics.objects.onnx import file_sha256
from sitewatch.training.change import draw_pairs, load_change_config, pair_sources, write_change_onnx
from sitewatch.training.change_distill import DISTIL_PAIRS, DISTIL_STEPS, distil_single_view
from sitewatch.training.change_model import SiameseUNet
from sitewatch.training.weights import load_into, load_weights, save_weights, state_arrays

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/change.yaml"


def _validation(onnx_path: Path, config_path: Path) -> dict[str, dict[str, float]]:
    """Pixel precision, recall and F1 of each output of the ONNX file, one view, at 0.5."""
    config = load_change_config(config_path)
    before, after, labels = draw_pairs(config, config.seed + 1, config.validation_pairs, pair_sources(config))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    tp, fp, fn = (np.zeros(labels.shape[1], np.int64) for _ in range(3))
    for start in range(0, len(before), 50):
        first = np.stack([normalise_date(image) for image in before[start:start + 50]])
        second = np.stack([normalise_date(image) for image in after[start:start + 50]])
        guess = session.run(None, {"before": first, "after": second})[0] >= 0
        truth = labels[start:start + 50]
        tp += (guess & truth).sum(axis=(0, 2, 3))
        fp += (guess & ~truth).sum(axis=(0, 2, 3))
        fn += (~guess & truth).sum(axis=(0, 2, 3))
    scores = {}
    for k, output in enumerate(config.outputs):
        precision, recall = tp[k] / max(tp[k] + fp[k], 1), tp[k] / max(tp[k] + fn[k], 1)
        scores[output] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                          "f1": round(float(2 * precision * recall / max(precision + recall, 1e-12)), 4)}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", type=Path, help="the float ONNX file of the model to distil (v3)")
    parser.add_argument("--steps", type=int, default=DISTIL_STEPS)
    parser.add_argument("--output", type=Path, default=shipped_model_dir(),
                        help="folder of the card and weights read and written (default: the package's)")
    args = parser.parse_args()

    card_path = args.output / "buildings.json"
    base = ChangeModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")), str(card_path))
    config = dataclasses.replace(load_change_config(CONFIG), output=args.output / base.onnx_file)
    student = SiameseUNet(int(base.architecture["width"]), int(base.architecture["outputs"]))
    weights = card_path.parent / (base.weights_file or "")
    load_into(student, load_weights(weights, base.weights_sha256, card=card_path), source=weights)
    sources = pair_sources(config)
    before, after, _ = draw_pairs(config, config.seed + 11, DISTIL_PAIRS, sources)
    student = distil_single_view(args.teacher, student, before, after, steps=args.steps,
                                 threads=config.threads, weight_decay=config.weight_decay, progress=print)
    write_change_onnx(student, config, sources)
    scores = _validation(config.output, CONFIG)
    card = dataclasses.replace(
        base, version=config.version, flips=config.flips, sha256=file_sha256(config.output),
        weights_sha256=save_weights(weights, state_arrays(student)),
        training={**base.training, "config": config.raw,
                  "distilled": {"from": {"version": base.version, "sha256": file_sha256(args.teacher)},
                                "steps": args.steps, "script": "scripts/distil_change_model.py"}},
        metrics={"synthetic_validation": scores["buildings"], "synthetic_validation_by_output": scores},
    )
    card_path.write_text(json.dumps(card.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {config.output} ({card.sha256[:12]}...), {weights}; synthetic validation {scores}")


if __name__ == "__main__":
    main()
