"""Give a shipped model that predates ``<name>.weights.npz`` its float weights, read back from its ONNX file.

Fine-tuning (``sitewatch train detector --data``, ``sitewatch train change --pairs``) starts from
float weights; ``sitewatch train`` writes them beside every model it trains from now on. The
models shipped before that have only their ONNX files, whose BatchNorm layers are folded into
the convolutions (and whose vehicle weights are 8-bit). This reads each convolution back
(dequantised where 8-bit), turns each folded BatchNorm into an identity with the folded bias as
its shift (see :func:`sitewatch.training.weights.state_from_onnx`), checks the torch model
against the ONNX file on a real image, writes ``<name>.weights.npz`` and records it in the card.

    .venv/bin/python scripts/float_weights_from_onnx.py            # both shipped models
    .venv/bin/python scripts/float_weights_from_onnx.py --check    # only compare, write nothing
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from sitewatch.analytics.objects.onnx import takes_bytes
from sitewatch.training.change_model import SiameseUNet
from sitewatch.training.model import CenterNetLite
from sitewatch.training.weights import save_weights, state_from_onnx, weights_path

ROOT = Path(__file__).resolve().parents[1]
VEHICLES = ROOT / "src/sitewatch/analytics/objects/models/vehicles.json"
BUILDINGS = ROOT / "src/sitewatch/analytics/change/models/buildings.json"
SHARED_DATA = Path(os.environ.get("SITEWATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
AERIAL = SHARED_DATA / "kit_ais_aerial_cars/images/MOS155.png"
"""A real aerial frame with cars (CC-BY 3.0); without ../shared/data, a Landsat crop from tests/data."""
SCRIPT = "scripts/float_weights_from_onnx.py"


def _image(size: int) -> torch.Tensor:
    """A real image as (1, 3, size, size) floats 0..1."""
    with Image.open(AERIAL if AERIAL.is_file() else ROOT / "tests/data/RGB.byte.tif") as opened:
        pixels = np.asarray(opened.convert("RGB").resize((size, size)), np.float32) / 255.0
    return torch.from_numpy(pixels.transpose(2, 0, 1)[None].copy())


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _write(card_path: Path, state: dict[str, np.ndarray], note: str,
           architecture: dict[str, object]) -> None:
    card = json.loads(card_path.read_text(encoding="utf-8"))
    weights = weights_path(card_path.parent / card["onnx_file"])
    card["architecture"] = architecture
    card["weights_file"] = weights.name
    card["weights_sha256"] = save_weights(weights, state)
    card.setdefault("training", {})["float_weights"] = note
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {weights} ({sum(v.size for v in state.values())} values), sha256 {card['weights_sha256']}")


def vehicles(check: bool) -> None:
    card = json.loads(VEHICLES.read_text(encoding="utf-8"))
    width = int(card.get("architecture", {}).get("width", card["training"]["config"]["width"]))
    model = CenterNetLite(len(card["classes"]), width=width)
    image = _image(256)
    state = state_from_onnx(model, VEHICLES.parent / card["onnx_file"], (image,))
    with torch.no_grad():
        peaks = model.eval()(image)[0].numpy()
    session = _session(VEHICLES.parent / card["onnx_file"])
    fed = np.rint(image.numpy() * 255).astype(np.uint8) if takes_bytes(session) else image.numpy()
    onnx_peaks = session.run(None, {"image": fed})[0]
    threshold = card["score_threshold"]
    print(f"vehicles: float vs 8-bit ONNX on a real crop: peaks >= {threshold}: "
          f"{int((peaks >= threshold).sum())} vs {int((onnx_peaks >= threshold).sum())}; largest score "
          f"difference {float(np.abs(peaks - onnx_peaks).max()):.3f} (8-bit activations)")
    if not check:
        _write(VEHICLES, state, f"read back from the 8-bit ONNX file by {SCRIPT}: weights dequantised, "
               "BatchNorm folded into the convolutions", {"model": "CenterNetLite", "width": width})


def buildings(check: bool) -> None:
    card = json.loads(BUILDINGS.read_text(encoding="utf-8"))
    width = int(card.get("architecture", {}).get("width", card["training"]["config"]["width"]))
    outputs = len(card.get("outputs", ["buildings"]))
    model = SiameseUNet(width, outputs)
    before, after = _image(128), _image(128).flip(3)
    state = state_from_onnx(model, BUILDINGS.parent / card["onnx_file"], (before, after))
    with torch.no_grad():
        logits = model.eval()(before, after).numpy()
    session = _session(BUILDINGS.parent / card["onnx_file"])
    expected = session.run(None, {"before": before.numpy(), "after": after.numpy()})[0]
    difference = float(np.abs(logits - expected).max())
    print(f"buildings: float torch vs ONNX logits: largest difference {difference:.2e}")
    if difference > 1e-3:
        raise SystemExit("the torch model does not reproduce the ONNX file; nothing written")
    if not check:
        _write(BUILDINGS, state, f"read back from the float ONNX file by {SCRIPT}: BatchNorm folded into "
               "the convolutions", {"model": "SiameseUNet", "width": width, "outputs": outputs})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; write nothing")
    parser.add_argument("--model", choices=("vehicles", "buildings", "both"), default="both")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.model in ("vehicles", "both"):
        vehicles(args.check)
    if args.model in ("buildings", "both"):
        buildings(args.check)


if __name__ == "__main__":
    main()
