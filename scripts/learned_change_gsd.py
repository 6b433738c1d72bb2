"""How the shipped learned change model fares across its declared 0.3-1 m range.

The model was trained on pairs drawn at 0.5 m. This draws synthetic pairs (procedural ground,
the training generator, a seed it never trained on) at several ground sample distances and
scores the model on them as given ("native") and with both dates resampled to 0.5 m first and
the probability resampled back ("resampled"): pooled pixel F1, precision and recall at the
model's fixed 0.5 operating point. It answers whether the detector should resample its input
(it should not: see docs/change.md).

    .venv/bin/python scripts/learned_change_gsd.py --pairs 120
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.typing import NDArray
from skimage.transform import resize

from sitewatch.analytics.change.learned import change_probability, normalise_date
from sitewatch.training.change_pairs import make_pair

TRAINING_GSD = 0.5


def probability(before: NDArray[np.float32], after: NDArray[np.float32],
                factor: float) -> NDArray[np.float32]:
    """The model's probability for two 0..255 dates, run after resizing them by ``factor``."""
    valid = np.ones(before.shape[1:], bool)
    first, second = normalise_date(before, valid), normalise_date(after, valid)
    if factor == 1.0:
        return change_probability(first, second)
    shape = (3, round(first.shape[1] * factor), round(first.shape[2] * factor))
    first, second = (np.asarray(resize(d, shape, order=1, anti_aliasing=factor < 1, preserve_range=True),
                                np.float32) for d in (first, second))
    back = resize(change_probability(first, second), before.shape[1:], order=1, anti_aliasing=factor > 1,
                  preserve_range=True)
    return np.asarray(back, np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=120, help="pairs per ground sample distance")
    parser.add_argument("--size", type=int, default=256, help="pair side in pixels")
    parser.add_argument("--gsd", type=float, nargs="+", default=[0.3, 0.5, 0.75, 1.0])
    parser.add_argument("--seed", type=int, default=777)
    args = parser.parse_args()
    for gsd in args.gsd:
        rng = np.random.default_rng(args.seed)
        pairs = [make_pair(rng, args.size, gsd=gsd, street_share=0.3, hip_share=0.4)
                 for _ in range(args.pairs)]
        modes = {"native": 1.0} | ({} if gsd == TRAINING_GSD else {"resampled": gsd / TRAINING_GSD})
        for mode, factor in modes.items():
            started = time.perf_counter()
            tp = fp = fn = 0
            for pair in pairs:
                mask = probability(pair.before * 255, pair.after * 255, factor) >= 0.5
                tp += int(np.sum(mask & pair.label))
                fp += int(np.sum(mask & ~pair.label))
                fn += int(np.sum(~mask & pair.label))
            print(f"gsd {gsd:4.2f} m  {mode:9}  F1 {2 * tp / max(2 * tp + fp + fn, 1):.3f}  "
                  f"precision {tp / max(tp + fp, 1):.3f}  recall {tp / max(tp + fn, 1):.3f}  "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
