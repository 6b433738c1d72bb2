"""`sitewatch change scene` on the aligned Joplin tornado pair, with a picture and figures.

    .venv/bin/python scripts/joplin_change.py [--out docs/img] [--method NAME]

Runs the command a user runs (``sitewatch change scene pre_aligned.tif post_aligned.tif OUT
--aligned``, default method; the pair is aligned already, and so changed that the probe tiles of
co-registration rightly refuse to agree on a shift) on the real 0.6 m pre/post pair of the
22 May 2011 Joplin tornado in ``../shared/data/joplin_tornado_prepost/aligned`` (evaluation and
demonstration only: its provenance is unconfirmed, so no pixel of it is committed), then writes
into ``--out``:

* ``joplin_change_mask.png``: the change mask alone (white changed, grey not valid), sitewatch's
  own output, small enough to keep in the docs;
* ``joplin_change_overlay.png``: the after image with the changed pixels in red beside the
  before image, for looking at locally (it holds the imagery: not for the repository).

It prints the share of pixels flagged in two kinds of blocks chosen by eye on the pair before
the method was run: blocks the tornado flattened (houses reduced to debris, trees stripped) and
blocks it missed (the park with its ponds, the fields in the north-east). No labels exist for
this pair; these shares say whether destroyed houses stand out and untouched blocks stay quiet.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

SHARED = Path(os.environ.get("SITEWATCH_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
PAIR = SHARED / "joplin_tornado_prepost" / "aligned"

# Blocks as (column_from, row_from, column_to, row_to) in pixels of the 1965 x 1610 aligned grid,
# drawn on the two images before any change method ran on them.
DESTROYED = {
    "residential blocks south of the east-west avenue": (780, 1130, 1900, 1600),
    "blocks west of the north-south avenue": (20, 700, 740, 1040),
}
UNTOUCHED = {
    "park with two ponds (north-west)": (190, 330, 360, 640),
    "fields and lawns (north-east)": (1500, 40, 1960, 200),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--method", default=None, help="change method (default: the pipeline's choice)")
    args = parser.parse_args()
    before, after = PAIR / "pre_aligned.tif", PAIR / "post_aligned.tif"
    if not before.is_file():
        raise SystemExit(f"{before} not found: set SITEWATCH_SHARED_DATA to the real data folder")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sitewatch-joplin-") as scratch:
        result = Path(scratch) / "change.tif"
        command = [str(Path(sys.executable).parent / "sitewatch"), "change", "scene", str(before), str(after),
                   str(result), "--aligned", "--json"]
        if args.method:
            command += ["--method", args.method]
        run = subprocess.run(command, check=True, capture_output=True, text=True)
        print(run.stdout.strip())
        with rasterio.open(result) as dataset:
            mask, probability = dataset.read(1), dataset.read(2)
    valid = probability != 255
    changed = (mask == 1) & valid
    print(f"changed: {changed.sum() / valid.sum():.1%} of valid pixels")
    for kind, blocks in (("destroyed", DESTROYED), ("untouched", UNTOUCHED)):
        for name, (c0, r0, c1, r1) in blocks.items():
            part, seen = changed[r0:r1, c0:c1], valid[r0:r1, c0:c1]
            print(f"{kind:9s} {name:50s} flagged {part.sum() / max(seen.sum(), 1):6.1%}")
    picture = np.where(valid, np.where(changed, 255, 0), 128).astype(np.uint8)
    small = (picture.shape[1] // 2, picture.shape[0] // 2)
    Image.fromarray(picture).resize(small, Image.Resampling.BOX).save(args.out / "joplin_change_mask.png",
                                                                       optimize=True)
    with rasterio.open(before) as first, rasterio.open(after) as second:
        pre, post = first.read().transpose(1, 2, 0), second.read().transpose(1, 2, 0).copy()
    post[changed] = (0.4 * post[changed] + 0.6 * np.array([255, 0, 0])).astype(np.uint8)
    side = np.concatenate([pre, np.zeros((pre.shape[0], 16, 3), np.uint8), post], axis=1)
    Image.fromarray(side).resize((side.shape[1] // 2, side.shape[0] // 2)).save(
        args.out / "joplin_change_overlay.png")
    print(f"wrote {args.out / 'joplin_change_mask.png'} and {args.out / 'joplin_change_overlay.png'}")


if __name__ == "__main__":
    main()
