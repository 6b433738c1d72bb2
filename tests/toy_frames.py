"""Tiny labelled frames for training tests: grey images with dark 'cars' and their YOLO labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def toy_frames(root: Path, count: int = 3, seed: int = 0,
               names: Sequence[str] = ("car", "truck", "bus")) -> Path:
    """``count`` 320x240 frames at 0.15 m, six dark 28x12 px 'cars' each (4.2 m x 1.8 m), labelled
    as class 0 of ``names`` in a YOLO folder ``root``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(f"names: [{', '.join(names)}]\ngsd: 0.15\n", encoding="utf-8")
    for index in range(count):
        image = Image.new("RGB", (320, 240), (128, 128, 120))
        draw = ImageDraw.Draw(image)
        lines = []
        for _ in range(6):
            x, y = rng.uniform(20, 280), rng.uniform(20, 210)
            draw.rectangle([x, y, x + 28, y + 12], fill=(30, 30, 40))
            lines.append(f"0 {(x + 14) / 320:.5f} {(y + 6) / 240:.5f} {28 / 320:.5f} {12 / 240:.5f}")
        image.save(root / "images" / f"F{index}.png")
        (root / "labels" / f"F{index}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
