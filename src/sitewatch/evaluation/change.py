"""Evaluate change detectors on labelled image pairs.

Two layouts are read:

* LEVIR style: ``DIR/A/<name>``, ``DIR/B/<name>``, ``DIR/label/<name>`` (0 = unchanged,
  non-zero = changed); every pixel is labelled. Common variants of the folder names
  (``T1``/``T2``, ``time1``/``time2``, ``im1``/``im2``; ``labels``, ``OUT``, ``gt``, ``mask``, ``cm``)
  and of the image suffix (label ``x.png`` for image ``x.tif``) are accepted.
* Sparse masks (the Landsat Taizhou / Nanjing pairs): a folder holding two rasters of the
  same grid (sorted by name = sorted by date) with ``change.bmp`` and ``unchanged.bmp``,
  where non-zero marks a labelled pixel; pixels in neither mask are not scored.

Each pair keeps its band names (band descriptions, else the colour interpretation: PNG and
JPEG pairs are red, green, blue) and its GSD: the files' own where they are georeferenced,
else ``--gsd`` or the folder's ``gsd.txt`` / ``data.yaml`` (``gsd: 0.5``), else unknown.
A method that reads named bands (``learned``: red, green, blue) gets them by name.

Besides the registered methods, ``default`` is scored: for each pair, the method the pipeline
would run on it (:func:`~sitewatch.analytics.change.choose_change_method` of the pair's GSD and
band names), on the bands it chooses. It is named by what it chose.

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
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning

from sitewatch.analytics.change import (
    ChangeDetector,
    change_detectors,
    choose_change_method,
    get_change_detector,
    input_bands,
    take_bands,
)
from sitewatch.core.errors import ImageryError, UnsupportedInputError
from sitewatch.evaluation.folders import folder_gsd
from sitewatch.imagery.bands import describe_bands, rgb_bands
from sitewatch.imagery.readers import band_names, ground_sample_distance

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
    """Ground sample distance in metres, where known (see ``gsd_source``)."""
    bands: tuple[str, ...] = ()
    """Band names of both dates, one per band (``b1 .. bn`` when the files name none)."""
    gsd_source: str = "unknown"
    """Where ``gsd`` came from: ``file`` (georeferenced raster), ``option``, ``metadata``, ``unknown``."""

    def __post_init__(self) -> None:
        names = self.bands or tuple(f"b{i}" for i in range(1, self.before.shape[0] + 1))
        if len(names) != self.before.shape[0]:
            raise ValueError(
                f"LabelledPair {self.name}: {len(names)} band names for {self.before.shape[0]} bands")
        object.__setattr__(self, "bands", names)


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
    chosen: tuple[tuple[str, str], ...] = ()
    """For ``default``: the method chosen for each pair (pair name, method)."""

    @property
    def chosen_methods(self) -> tuple[str, ...]:
        """The distinct methods ``default`` chose, in pair order."""
        return tuple(dict.fromkeys(method for _, method in self.chosen))

    @property
    def label(self) -> str:
        """``default (segments)`` for the default, else the method's name."""
        return f"{self.method} ({', '.join(self.chosen_methods)})" if self.chosen else self.method

    def as_dict(self) -> dict[str, object]:
        entry: dict[str, object] = {"method": self.method}
        if self.chosen:
            methods = self.chosen_methods
            entry["chosen"] = methods[0] if len(methods) == 1 else list(methods)
            entry["chosen_per_pair"] = dict(self.chosen)
        entry.update({
            "operating_point": self.rule,
            "pooled": self.pooled.as_dict(),
            "seconds": round(self.seconds, 3),
            "outside_gsd_range": list(self.outside_gsd_range),
            "pairs": {name: counts.as_dict() for name, counts in self.pairs},
        })
        return entry


# --- readers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Raster:
    pixels: NDArray[np.float32]
    bands: tuple[str, ...]
    gsd: float | None


def _read_raster(path: Path) -> _Raster:
    """Pixels (a PNG's alpha dropped), band names and, for a georeferenced raster, its GSD in metres."""
    try:
        with warnings.catch_warnings():
            # PNG/JPEG pairs carry no georeferencing; only the pixels are needed here.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            source = rasterio.open(path)
        with source:
            # PNG alpha carries no reflectance. A GeoTIFF's is kept: GDAL marks the 4th band of any
            # 4-band byte GeoTIFF written without PHOTOMETRIC as alpha, often a near-infrared band.
            png = path.suffix.lower() == ".png"
            kept = [i for i, kind in enumerate(source.colorinterp, start=1)
                    if not (png and kind == ColorInterp.alpha)]
            pixels = source.read(kept).astype(np.float32)
            names = band_names(source)
            gsd = ground_sample_distance(source, path) if source.crs is not None else None
    except rasterio.errors.RasterioIOError as error:
        raise ImageryError(f"{path}: cannot be read as an image ({error})") from error
    return _Raster(pixels, tuple(names[i - 1] for i in kept), gsd)


def _read_label(path: Path) -> NDArray[np.bool_]:
    return np.asarray(_read_raster(path).pixels.max(axis=0) > 0)


def _pair_gsd(first: _Raster, gsd: float | None, folder: Path, root: Path) -> tuple[float | None, str]:
    """The pair's GSD and its source: the file's own, else the option, else the folder's (or the
    root folder's) metadata."""
    if first.gsd is not None:
        return first.gsd, "file"
    if gsd is not None:
        return gsd, "option"
    for place in dict.fromkeys((folder, root)):
        if (found := folder_gsd(place)) is not None:
            return found, "metadata"
    return None, "unknown"


def _check_dates(before: _Raster, after: _Raster, where: str) -> None:
    if rgb_bands(before.bands) != rgb_bands(after.bands):
        log.warning("%s: red, green and blue are not the same bands on both dates (%s / %s); the pair "
                    "is read with the first date's names", where, describe_bands(before.bands),
                    describe_bands(after.bands))


def read_levir_pairs(root: Path, *, gsd: float | None = None,
                     top: Path | None = None) -> Iterator[LabelledPair]:
    """Pairs of a LEVIR-style folder (``A/``, ``B/``, ``label/``); pairs without a label are skipped.
    ``gsd`` (or ``gsd.txt`` / ``data.yaml`` in ``root`` or ``top``) is for pairs whose files carry none."""
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
        before, after = _read_raster(before_path), _read_raster(after_path)
        changed = _read_label(label_path)
        if before.pixels.shape != after.pixels.shape or before.pixels.shape[1:] != changed.shape:
            log.warning("%s: A %s, B %s and label %s differ in size, skipped", label_path.name,
                        before.pixels.shape, after.pixels.shape, changed.shape)
            continue
        _check_dates(before, after, label_path.stem)
        pair_gsd, source = _pair_gsd(before, gsd, root, top or root)
        yield LabelledPair(label_path.stem, before.pixels, after.pixels, changed, np.ones_like(changed),
                           pair_gsd, before.bands, source)


def _same_stem(folder: Path, label_path: Path) -> Path | None:
    """The image in ``folder`` named like the label (same name, else same stem, any image suffix)."""
    if (folder / label_path.name).is_file():
        return folder / label_path.name
    candidates = sorted(folder.glob(f"{label_path.stem}.*"))
    return next((p for p in candidates if p.suffix.lower() in _IMAGE_SUFFIXES), None)


def read_sparse_pair(folder: Path, *, gsd: float | None = None, top: Path | None = None) -> LabelledPair:
    """A folder with two same-grid rasters plus ``change.bmp`` / ``unchanged.bmp`` sparse masks.
    ``gsd`` (or ``gsd.txt`` / ``data.yaml`` in ``folder`` or ``top``) is for rasters that carry none."""
    images = sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.name.lower() not in _NOT_IMAGES and _is_raster(p)
    )
    if len(images) != 2:
        raise UnsupportedInputError(
            f"{folder}: expected exactly two rasters beside change.bmp/unchanged.bmp, found "
            f"{[p.name for p in images]}; remove quick-looks or extra files"
        )
    before, after = _read_raster(images[0]), _read_raster(images[1])
    changed = _read_label(folder / "change.bmp")
    unchanged = _read_label(folder / "unchanged.bmp")
    shapes = (before.pixels.shape, after.pixels.shape)
    if shapes[0] != shapes[1] or shapes[0][1:] != changed.shape or changed.shape != unchanged.shape:
        raise UnsupportedInputError(
            f"{folder}: images {shapes[0]}/{shapes[1]} and masks {changed.shape}/{unchanged.shape} "
            "are not on one grid"
        )
    if (changed & unchanged).any():
        raise UnsupportedInputError(f"{folder}: {int((changed & unchanged).sum())} pixels are in both masks")
    _check_dates(before, after, folder.name)
    pair_gsd, source = _pair_gsd(before, gsd, folder, top or folder)
    return LabelledPair(folder.name, before.pixels, after.pixels, changed, changed | unchanged, pair_gsd,
                        before.bands, source)


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


def discover_pairs(root: Path, *, gsd: float | None = None,
                   _top: Path | None = None) -> Iterator[LabelledPair]:
    """Every labelled pair under ``root``: a LEVIR folder, a sparse-mask folder, or folders of them.

    A pair's GSD is its files' own where they are georeferenced, else ``gsd``, else that of a
    ``gsd.txt`` / ``data.yaml`` in its folder or in ``root``, else unknown.
    """
    if gsd is not None and not (np.isfinite(gsd) and gsd > 0):
        raise UnsupportedInputError(f"--gsd {gsd} must be positive metres per pixel")
    if not root.is_dir():
        raise UnsupportedInputError(f"{root}: not a folder; give a LEVIR-style A/B/label folder or a folder "
                                    "of sparse-mask pairs")
    top = _top or root
    if _levir_parts(root) is not None:
        yield from read_levir_pairs(root, gsd=gsd, top=top)
        return
    if all((root / name).is_file() for name in _SPARSE_LABELS):
        yield read_sparse_pair(root, gsd=gsd, top=top)
        return
    found = False
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if _levir_parts(child) is not None or all(
            (child / name).is_file() for name in _SPARSE_LABELS
        ):
            found = True
            yield from discover_pairs(child, gsd=gsd, _top=top)
    if not found:
        raise UnsupportedInputError(
            f"{root}: no labelled pairs found; expected A/ B/ label/ folders or change.bmp + unchanged.bmp"
        )


# --- harness ----------------------------------------------------------------------------------


DEFAULT_METHOD = "default"
"""The name under which the pipeline's own choice is scored (see :func:`evaluate_default`)."""


def unusable_on(detector: ChangeDetector, pairs: Sequence[LabelledPair]) -> str | None:
    """Why ``detector`` cannot run on one of ``pairs`` (bands it reads missing by name, too few
    bands), or None when it runs on all of them."""
    for pair in pairs:
        try:
            bands = input_bands(detector, pair.bands)
        except UnsupportedInputError:
            return (f"reads the {', '.join(detector.bands)} bands by name; pair {pair.name} has bands "
                    f"{describe_bands(pair.bands)}")
        if len(bands) < detector.min_bands:
            return f"needs {detector.min_bands} bands; pair {pair.name} has {len(bands)}"
    return None


@dataclass(frozen=True, slots=True)
class _Run:
    counts: Confusion
    rule: str
    seconds: float


class RunCache:
    """Each (method, pair, bands) run once: ``default`` reuses the runs of the method it chose."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, int, tuple[int, ...]], _Run] = {}

    def run(self, detector: ChangeDetector, index: int, pair: LabelledPair, bands: tuple[int, ...]) -> _Run:
        key = (detector.name, index, bands)
        if key not in self._done:
            started = time.perf_counter()
            result = detector(take_bands(pair.before, bands), take_bands(pair.after, bands))
            seconds = time.perf_counter() - started
            self._done[key] = _Run(Confusion.of(result.mask, pair), result.rule, seconds)
        return self._done[key]


def _outside(detector: ChangeDetector, pair: LabelledPair) -> bool:
    low, high = detector.gsd_range
    return pair.gsd is not None and not low <= pair.gsd <= high


def evaluate_change(pairs: Sequence[LabelledPair], detectors: Sequence[ChangeDetector], *,
                    runs: RunCache | None = None) -> list[MethodScore]:
    """Run each detector on each pair (on the bands it reads, found by name) and pool its counts."""
    runs = runs or RunCache()
    scores = []
    for detector in detectors:
        if (problem := unusable_on(detector, pairs)) is not None:
            raise UnsupportedInputError(f"{detector.name} {problem}; leave it out with --method")
        pooled = Confusion()
        per_pair = []
        rules = set()
        seconds = 0.0
        for index, pair in enumerate(pairs):
            done = runs.run(detector, index, pair, input_bands(detector, pair.bands))
            pooled += done.counts
            per_pair.append((pair.name, done.counts))
            rules.add(done.rule)
            seconds += done.seconds
        outside = tuple(p.name for p in pairs if _outside(detector, p))
        scores.append(MethodScore(detector.name, "; ".join(sorted(rules)), pooled, tuple(per_pair),
                                  seconds, outside))
    return scores


def evaluate_default(pairs: Sequence[LabelledPair], *, runs: RunCache | None = None) -> MethodScore:
    """The pipeline's default scored like a method: for each pair, the method
    :func:`~sitewatch.analytics.change.choose_change_method` picks from the pair's GSD and band
    names, on the bands it picks."""
    runs = runs or RunCache()
    detectors: dict[str, ChangeDetector] = {}
    pooled = Confusion()
    per_pair, chosen, outside = [], [], []
    rules = set()
    seconds = 0.0
    for index, pair in enumerate(pairs):
        choice = choose_change_method(pair.gsd, pair.bands)
        detector = detectors.setdefault(choice.method, get_change_detector(choice.method))
        done = runs.run(detector, index, pair, choice.bands)
        pooled += done.counts
        per_pair.append((pair.name, done.counts))
        chosen.append((pair.name, choice.method))
        rules.add(f"{choice.method}: {done.rule}")
        seconds += done.seconds
        if _outside(detector, pair):
            outside.append(pair.name)
    return MethodScore(DEFAULT_METHOD, "; ".join(sorted(rules)), pooled, tuple(per_pair), seconds,
                       tuple(outside), tuple(chosen))


@dataclass(frozen=True, slots=True)
class ChangeEvaluation:
    """What ``sitewatch eval change`` reports."""

    scores: tuple[MethodScore, ...]
    not_scored: tuple[tuple[str, str], ...] = ()
    """(method, why) for registered methods that cannot run on every pair (only when no method
    was named: a method asked for by name is refused instead)."""


def evaluate_methods(pairs: Sequence[LabelledPair], methods: Sequence[str] | None = None, *,
                     extra: Sequence[tuple[str, ChangeDetector]] = ()) -> ChangeEvaluation:
    """Score the named methods (``default`` among them), or, when none is named, every registered
    method that runs on all pairs and then ``default``. ``extra`` detectors (a workspace's fine-tuned
    model) are scored right after the method each is paired with, when that one is scored."""
    runs = RunCache()
    named = list(methods) if methods else [*change_detectors(), DEFAULT_METHOD]
    detectors, skipped = [], []
    for name in dict.fromkeys(named):
        if name == DEFAULT_METHOD:
            continue
        detector = get_change_detector(name)
        problem = unusable_on(detector, pairs) if not methods else None
        if problem is None:
            detectors.append(detector)
            detectors.extend(other for beside, other in extra if beside == name)
        else:
            skipped.append((name, problem))
    scores = evaluate_change(pairs, detectors, runs=runs)
    if DEFAULT_METHOD in named:
        scores.append(evaluate_default(pairs, runs=runs))
    return ChangeEvaluation(tuple(scores), tuple(skipped))

