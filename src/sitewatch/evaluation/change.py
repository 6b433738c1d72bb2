"""Evaluate change detectors on labelled image pairs.

Two layouts are read:

* LEVIR style: ``DIR/A/<name>``, ``DIR/B/<name>``, ``DIR/label/<name>`` (0 = unchanged,
  non-zero = changed); every pixel is labelled. Common variants of the folder names
  (``T1``/``T2``, ``time1``/``time2``, ``im1``/``im2``; ``labels``, ``OUT``, ``gt``, ``mask``, ``cm``)
  and of the image suffix (label ``x.png`` for image ``x.tif``) are accepted.
* Sparse masks (the Landsat Taizhou / Nanjing pairs): a folder holding two rasters of the
  same grid (sorted by name = sorted by date) with ``change.bmp`` and ``unchanged.bmp``,
  where non-zero marks a labelled pixel; pixels in neither mask are not scored.

Metrics are those of the changed class (precision, recall, F1, IoU) plus overall accuracy
and Cohen's kappa, computed from confusion counts pooled over all pairs, so that big and
small pairs weigh by their pixel count and no per-pair average flatters a method.
No method is fitted on labels here: detectors only ever see the two images.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import NotGeoreferencedWarning

from sitewatch.analytics.change import ChangeDetector
from sitewatch.core.errors import ImageryError, UnsupportedInputError

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}
_SPARSE_LABELS = ("change.bmp", "unchanged.bmp")
_NOT_IMAGES = {"change.bmp", "unchanged.bmp"}
_BEFORE_NAMES = ("A", "T1", "time1", "im1")
_AFTER_NAMES = ("B", "T2", "time2", "im2")
_LABEL_NAMES = ("label", "labels", "OUT", "gt", "mask", "cm")
"""Folder names of the LEVIR layout and of its common variants (WHU-CD, SECOND, S2Looking, ...)."""


def _levir_parts(root: Path) -> tuple[Path, Path, Path] | None:
    """The (before, after, label) folders of a LEVIR-style layout, or None."""
    found = []
    for names in (_BEFORE_NAMES, _AFTER_NAMES, _LABEL_NAMES):
        match = next((root / n for n in names if (root / n).is_dir()), None)
        if match is None:
            return None
        found.append(match)
    return found[0], found[1], found[2]


@dataclass(frozen=True, slots=True)
class LabelledPair:
    """Two images of one grid and the reference change labels."""

    name: str
    before: NDArray[np.float32]
    """(bands, rows, cols)"""
    after: NDArray[np.float32]
    changed: NDArray[np.bool_]
    """True where the reference says changed."""
    labelled: NDArray[np.bool_]
    """True where a reference label exists (all True for dense labels)."""
    gsd: float | None = None
    """Ground sample distance in metres when the files say so."""


@dataclass(frozen=True, slots=True)
class Confusion:
    """Pixel confusion counts of the changed class."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @classmethod
    def of(cls, predicted: NDArray[np.bool_], pair: LabelledPair) -> Confusion:
        scored = pair.labelled
        truth = pair.changed[scored]
        guess = predicted[scored]
        return cls(
            tp=int(np.count_nonzero(guess & truth)),
            fp=int(np.count_nonzero(guess & ~truth)),
            fn=int(np.count_nonzero(~guess & truth)),
            tn=int(np.count_nonzero(~guess & ~truth)),
        )

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else 0.0

    @property
    def iou(self) -> float:
        return self.tp / (self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else 0.0

    @property
    def overall_accuracy(self) -> float:
        return (self.tp + self.tn) / self.total if self.total else 0.0

    @property
    def kappa(self) -> float:
        """Cohen's kappa: agreement beyond what the two marginals give by chance."""
        n = self.total
        if n == 0:
            return 0.0
        predicted_changed, truly_changed = self.tp + self.fp, self.tp + self.fn
        expected = (predicted_changed * truly_changed + (n - predicted_changed) * (n - truly_changed)) / n**2
        return (self.overall_accuracy - expected) / (1 - expected) if expected < 1 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "iou": round(self.iou, 4),
            "overall_accuracy": round(self.overall_accuracy, 4),
            "kappa": round(self.kappa, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


@dataclass(frozen=True, slots=True)
class MethodScore:
    """One method's pooled score over a data set, with its per-pair counts."""

    method: str
    rule: str
    """How the method's operating point was chosen."""
    pooled: Confusion
    pairs: tuple[tuple[str, Confusion], ...] = field(default_factory=tuple)
    seconds: float = 0.0
    outside_gsd_range: tuple[str, ...] = ()
    """Pairs whose known GSD lies outside the range the method declares (scored anyway, flagged)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "operating_point": self.rule,
            "pooled": self.pooled.as_dict(),
            "seconds": round(self.seconds, 3),
            "outside_gsd_range": list(self.outside_gsd_range),
            "pairs": {name: counts.as_dict() for name, counts in self.pairs},
        }


# --- readers ----------------------------------------------------------------------------------


def _read_raster(path: Path) -> tuple[NDArray[np.float32], float | None]:
    try:
        with warnings.catch_warnings():
            # PNG/JPEG pairs carry no georeferencing; only the pixels are needed here.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            source = rasterio.open(path)
        with source:
            pixels = source.read().astype(np.float32)
            gsd = float(abs(source.res[0])) if source.crs is not None and source.crs.is_projected else None
    except rasterio.errors.RasterioIOError as error:
        raise ImageryError(f"{path}: cannot be read as an image ({error})") from error
    if pixels.shape[0] == 4 and path.suffix.lower() == ".png":
        pixels = pixels[:3]  # drop PNG alpha: it carries no reflectance
    return pixels, gsd


def _read_label(path: Path) -> NDArray[np.bool_]:
    pixels, _ = _read_raster(path)
    return np.asarray(pixels.max(axis=0) > 0)


def read_levir_pairs(root: Path) -> Iterator[LabelledPair]:
    """Pairs of a LEVIR-style folder (``A/``, ``B/``, ``label/``); pairs without a label are skipped."""
    parts = _levir_parts(root)
    if parts is None:
        raise UnsupportedInputError(f"{root}: no A/ B/ label/ folders")
    before_dir, after_dir, label_dir = parts
    labels = sorted(p for p in label_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not labels:
        raise UnsupportedInputError(f"{label_dir}: no label images found; expected PNG/TIFF masks")
    for label_path in labels:
        before_path = _same_stem(before_dir, label_path)
        after_path = _same_stem(after_dir, label_path)
        if before_path is None or after_path is None:
            log.warning("%s: no matching before/after image, skipped", label_path)
            continue
        before, gsd = _read_raster(before_path)
        after, _ = _read_raster(after_path)
        changed = _read_label(label_path)
        if before.shape != after.shape or before.shape[1:] != changed.shape:
            log.warning("%s: A %s, B %s and label %s differ in size, skipped", label_path.name,
                        before.shape, after.shape, changed.shape)
            continue
        yield LabelledPair(label_path.stem, before, after, changed, np.ones_like(changed), gsd)


def _same_stem(folder: Path, label_path: Path) -> Path | None:
    """The image in ``folder`` named like the label (same name, else same stem, any image suffix)."""
    if (folder / label_path.name).is_file():
        return folder / label_path.name
    candidates = sorted(folder.glob(f"{label_path.stem}.*"))
    return next((p for p in candidates if p.suffix.lower() in _IMAGE_SUFFIXES), None)


def read_sparse_pair(folder: Path) -> LabelledPair:
    """A folder with two same-grid rasters plus ``change.bmp`` / ``unchanged.bmp`` sparse masks."""
    images = sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.name.lower() not in _NOT_IMAGES and _is_raster(p)
    )
    if len(images) != 2:
        raise UnsupportedInputError(
            f"{folder}: expected exactly two rasters beside change.bmp/unchanged.bmp, found "
            f"{[p.name for p in images]}; remove quick-looks or extra files"
        )
    before, gsd = _read_raster(images[0])
    after, _ = _read_raster(images[1])
    changed = _read_label(folder / "change.bmp")
    unchanged = _read_label(folder / "unchanged.bmp")
    if before.shape != after.shape or before.shape[1:] != changed.shape or changed.shape != unchanged.shape:
        raise UnsupportedInputError(
            f"{folder}: images {before.shape}/{after.shape} and masks {changed.shape}/{unchanged.shape} "
            "are not on one grid"
        )
    if (changed & unchanged).any():
        raise UnsupportedInputError(f"{folder}: {int((changed & unchanged).sum())} pixels are in both masks")
    return LabelledPair(folder.name, before, after, changed, changed | unchanged, gsd)


def _is_raster(path: Path) -> bool:
    if path.suffix.lower() in {".hdr", ".jpg", ".jpeg", ".md", ".txt", ".aux", ".xml"}:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            rasterio.open(path).close()
        return True
    except rasterio.errors.RasterioIOError:
        return False


def discover_pairs(root: Path) -> Iterator[LabelledPair]:
    """Every labelled pair under ``root``: a LEVIR folder, a sparse-mask folder, or folders of them."""
    if not root.is_dir():
        raise UnsupportedInputError(f"{root}: not a folder; give a LEVIR-style A/B/label folder or a folder "
                                    "of sparse-mask pairs")
    if _levir_parts(root) is not None:
        yield from read_levir_pairs(root)
        return
    if all((root / name).is_file() for name in _SPARSE_LABELS):
        yield read_sparse_pair(root)
        return
    found = False
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if _levir_parts(child) is not None or all(
            (child / name).is_file() for name in _SPARSE_LABELS
        ):
            found = True
            yield from discover_pairs(child)
    if not found:
        raise UnsupportedInputError(
            f"{root}: no labelled pairs found; expected A/ B/ label/ folders or change.bmp + unchanged.bmp"
        )


# --- harness ----------------------------------------------------------------------------------


def evaluate_change(pairs: Sequence[LabelledPair], detectors: Sequence[ChangeDetector]) -> list[MethodScore]:
    """Run each detector on each pair and pool its confusion counts."""
    scores = []
    for detector in detectors:
        pooled = Confusion()
        per_pair = []
        rules = set()
        outside = []
        started = time.perf_counter()
        for pair in pairs:
            if pair.before.shape[0] < detector.min_bands:
                raise UnsupportedInputError(
                    f"{detector.name} needs {detector.min_bands} bands; pair {pair.name} has "
                    f"{pair.before.shape[0]}; leave it out with --method"
                )
            low, high = detector.gsd_range
            if pair.gsd is not None and not low <= pair.gsd <= high:
                outside.append(pair.name)
            result = detector(pair.before, pair.after)
            counts = Confusion.of(result.mask, pair)
            pooled += counts
            per_pair.append((pair.name, counts))
            rules.add(result.rule)
        scores.append(MethodScore(detector.name, "; ".join(sorted(rules)), pooled, tuple(per_pair),
                                  time.perf_counter() - started, tuple(outside)))
    return scores
