"""Re-measure a trained detector's card without training it again.

    .venv/bin/python scripts/remeasure_detector_card.py configs/detector.yaml

Training is deterministic, and the operating thresholds and the card's scores depend only on the
exported model, the config and the frames (``sitewatch.training.detector.measured_card``). When
the threshold rule or the scoring changes, this rewrites the card of the model at the config's
``output`` as ``sitewatch train detector CONFIG`` would, keeping the card's training record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sitewatch.analytics.objects.onnx import file_sha256, load_card
from sitewatch.training.config import load_config
from sitewatch.training.detector import _split, measured_card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    args = parser.parse_args()
    config = load_config(args.config)
    card_path = config.output.with_suffix(".json")
    card = load_card(card_path)
    if file_sha256(config.output) != card.sha256:
        raise SystemExit(f"{config.output} does not match its card's checksum; train it again instead")
    card, holdout, simulated = measured_card(config, _split(config), card, training=card.training)
    card_path.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"rewrote {card_path}: thresholds {dict(card.class_thresholds)}")
    print(json.dumps({"holdout": holdout, "holdout_simulated": simulated}, indent=1)[:2000])


if __name__ == "__main__":
    main()
