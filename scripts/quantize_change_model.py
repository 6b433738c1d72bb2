"""Make the shipped learned change model 8-bit from its float ONNX file, without training it again.

The step ``sitewatch train change configs/change.yaml`` runs after training when the config says
``precision: int8`` (:func:`sitewatch.training.change.write_change_onnx`), run on the float model
already trained (an hour to train again): activation ranges from 200 synthetic pairs of the
generator drawn with the config's seed + 2, then
:func:`sitewatch.training.quantize.quantize_change_model`. The float file of version 3 is in git:

    git show b96c2d3:src/sitewatch/analytics/change/models/buildings.onnx > /tmp/buildings-v3-float.onnx
    .venv/bin/python scripts/quantize_change_model.py /tmp/buildings-v3-float.onnx

It writes ``buildings.onnx`` (8-bit) and its card's SHA-256 in the package; the float weights
beside it (``buildings.weights.npz``, what fine-tuning starts from) are unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sitewatch.analytics.change.learned import SHIPPED_MODEL, normalise_date, shipped_model_dir
from sitewatch.analytics.objects.onnx import file_sha256
from sitewatch.training.change import CALIBRATION_PAIRS, draw_pairs, load_change_config, pair_sources
from sitewatch.training.quantize import quantize_change_model

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/change.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("float_onnx", type=Path, help="the float ONNX file of the shipped model")
    parser.add_argument("--output", type=Path, default=shipped_model_dir(),
                        help="folder of the card and model written (default: the package's)")
    args = parser.parse_args()
    config = load_change_config(CONFIG)
    card_path = args.output / f"{SHIPPED_MODEL}.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    before, after, _ = draw_pairs(config, config.seed + 2, CALIBRATION_PAIRS, pair_sources(config))
    calibration = [(normalise_date(b), normalise_date(a)) for b, a in zip(before, after, strict=True)]
    output = args.output / card["onnx_file"]
    quantize_change_model(args.float_onnx, output, calibration)
    card["sha256"] = file_sha256(output)
    card["training"]["config"]["precision"] = "int8"
    card["training"]["quantised"] = {
        "from_float_sha256": file_sha256(args.float_onnx), "calibration_pairs": CALIBRATION_PAIRS,
        "calibration_seed": config.seed + 2, "script": "scripts/quantize_change_model.py",
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output} (8-bit, SHA-256 {card['sha256'][:12]}...) and {card_path}")


if __name__ == "__main__":
    main()
