"""Give a detector that takes floats 0..1 the byte input of the models trained since issue 18's 7th pass.

``sitewatch train detector`` now writes 8-bit models that take the image's bytes
(:func:`sitewatch.training.quantize.take_bytes`): their first steps, normalising the floats and
quantising them again to 8 bits, mapped every byte to itself and are gone. The shipped model was
trained before; this rewrites its ONNX file the same way (the training extra's ``onnx`` is needed),
checks that the rewritten graph gives the same outputs bit for bit as the file it replaces, on real
frames at the tile sizes the detector runs and on random bytes, and records the new checksum in the
card (the old one under ``training.byte_input``). A card whose model already takes bytes is left
as it is; a model whose steps do not map each byte to itself is refused.

    .venv/bin/python scripts/detector_byte_input.py                  # the shipped model
    .venv/bin/python scripts/detector_byte_input.py models/vehicles.json  # a workspace's fine-tuned one
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from sitewatch.analytics.objects.onnx import file_sha256, load_card, shipped_model_dir, takes_bytes
from sitewatch.training.quantize import BYTE_INPUT, take_bytes

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SITEWATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
FRAMES = [SHARED_DATA / "kit_ais_aerial_cars/images/MOS155.png", ROOT / "tests/data/RGB.byte.tif"]
"""Real images to compare on (the KIT frame is CC-BY 3.0; without ../shared/data, a tests/data raster)."""
SIZES = [(1280, 1280), (960, 1280), (256, 320)]
"""(rows, cols) of the batches compared: a whole tile, a smaller one, an edge tile."""


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _batches() -> list[np.ndarray]:
    """Byte batches (n, 3, rows, cols): crops of the real frames, and random bytes."""
    batches = []
    for path in FRAMES:
        if not path.is_file():
            continue
        with Image.open(path) as opened:
            rgb = opened.convert("RGB")
        for rows, cols in SIZES:
            patch = np.asarray(rgb.resize((cols, rows), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
            batches.append(np.ascontiguousarray(patch[None]))
    rng = np.random.default_rng(0)
    batches.append(rng.integers(0, 256, (2, 3, 256, 320), dtype=np.uint8))
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card", type=Path, nargs="?", default=shipped_model_dir() / "vehicles.json")
    args = parser.parse_args()
    card = load_card(args.card)
    model = args.card.parent / card.onnx_file
    if file_sha256(model) != card.sha256:
        raise SystemExit(f"{model} does not match its card's checksum; restore it first")
    if takes_bytes(_session(model)):
        print(f"{model} already takes bytes; nothing to do")
        return
    with tempfile.TemporaryDirectory(prefix="sitewatch-bytes-") as scratch:
        rewritten = Path(scratch) / model.name
        shutil.copyfile(model, rewritten)
        if not take_bytes(rewritten):
            raise SystemExit(f"{model}: its input steps do not map each byte to itself; left as it is")
        floats, takes = _session(model), _session(rewritten)
        for batch in _batches():
            before = floats.run(None, {BYTE_INPUT: np.multiply(batch, np.float32(1.0 / 255.0),
                                                               dtype=np.float32)})
            after = takes.run(None, {BYTE_INPUT: batch})
            same = all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
            print(f"batch {batch.shape}: outputs identical: {same}")
            if not same:
                raise SystemExit(f"{model}: the rewritten graph's outputs differ; left as it is")
        old = card.sha256
        shutil.copyfile(rewritten, model)
    data = json.loads(args.card.read_text(encoding="utf-8"))
    data["sha256"] = file_sha256(model)
    data.setdefault("training", {})["byte_input"] = (
        f"rewritten to take the image's bytes by {Path(__file__).relative_to(ROOT)} from the 8-bit model "
        f"of sha256 {old}: the same outputs bit for bit")
    args.card.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {model}, sha256 {data['sha256']} (was {old})")


if __name__ == "__main__":
    main()
