"""Scoring object detectors on labelled image folders (YOLO, DOTA or iSAID format).

Metrics (DESIGN.md §7): average precision at IoU 0.5 per class (all-point interpolated,
greedy matching by descending score, "difficult" ground truth neither rewarded nor
penalised) and the per-image count error of the detector at its operating threshold,
absolute and relative to the true count. Boxes are compared axis-aligned: DOTA's
oriented boxes are reduced to their bounding boxes, as the detector predicts
axis-aligned boxes.

Label classes are mapped to the detector's names (``car``, ``large_vehicle``, ...):
YOLO ``car``/``minibus``/``van`` and DOTA/iSAID ``small-vehicle`` are cars, ``truck``/``bus``
and DOTA/iSAID ``large-vehicle`` are large vehicles; other label classes are not scored.
iSAID instance masks are read as the axis-aligned box around each instance's pixels.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import NDArray
from scipy import ndimage

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.folders import folder_gsd

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

CLASS_ALIASES: dict[str, str] = {
    "car": "car",
    "small-vehicle": "car",
    "small_vehicle": "car",
    "minibus": "car",
    "van": "car",
    "vehicle": "car",
    "truck": "large_vehicle",
    "bus": "large_vehicle",
    "large-vehicle": "large_vehicle",
    "large_vehicle": "large_vehicle",
    "rail_car": "rail_car",
    "crane": "crane",
}
"""Label class name (lower case) -> detector class name."""

DEFAULT_YOLO_NAMES = ("car", "truck", "bus", "minibus", "cyclist")
"""Class ids of YOLO vehicle folders without a names file (the aerial-cars/KIT AIS order)."""

CAR_LONG_SIDE_M = 4.7
"""Typical long side of an axis-aligned box drawn around a car, in metres: between 4.45 m
(car at 45°) and 4.85 m (its diagonal), for a 4.5 m x 1.8 m car plus a small margin."""


@dataclass(frozen=True, slots=True)
class LabelledObject:
    """One ground-truth object of an image."""

    class_name: str
    """Detector class name after mapping (``car``, ``large_vehicle``), or the label's own name."""
    box: tuple[float, float, float, float]
    """Axis-aligned x0, y0, x1, y1 in image pixels."""
    difficult: bool = False


@dataclass(frozen=True, slots=True)
class LabelledImage:
    """An image file with its objects and, where known, its ground sample distance."""

    name: str
    image_path: Path
    objects: tuple[LabelledObject, ...]
    gsd: float | None = None
    gsd_source: str = "unknown"
    """Where ``gsd`` came from: ``label`` (DOTA header), ``option``, ``metadata``, ``estimated``."""


@dataclass(frozen=True, slots=True)
class PredictedObject:
    """A detector output in image pixels, as scored here."""

    class_name: str
    score: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Scores of one class over a folder."""

    class_name: str
    ap50: float | None
    """None when the folder has no ground truth of this class."""
    ground_truth: int
    predicted: int
    """Predictions at or above the operating threshold."""
    precision: float | None
    recall: float | None
    mean_abs_count_error: float
    mean_rel_count_error: float | None
    """Mean over images with at least one true object of |predicted - true| / true."""


@dataclass(frozen=True, slots=True)
class ImageCounts:
    name: str
    true: dict[str, int]
    predicted: dict[str, int]


@dataclass(frozen=True, slots=True)
class ConditionRecall:
    """Recall at the operating threshold of the true objects of one class seen in one condition."""

    class_name: str
    condition: str
    """``in_shadow`` / ``in_sun`` (see :data:`SHADOW_RATIO`) or ``diagonal`` / ``along_axes`` (see
    :data:`DIAGONAL_ASPECT`)."""
    ground_truth: int
    found: int

    @property
    def recall(self) -> float | None:
        return self.found / self.ground_truth if self.ground_truth else None


SHADOW_RATIO = 0.6
"""A true object is *in shadow* when the median brightness of the ground around its box (a ring half
the box's size wide) is below this share of the image's median brightness."""
DIAGONAL_ASPECT = 1.5
"""A true vehicle box whose long side is under this many times its short side holds a vehicle at a
heading between the image axes (a car along an axis is 2.5 times as long as wide)."""


@dataclass(frozen=True, slots=True)
class DetectionReport:
    """What ``sitewatch eval detect`` prints."""

    folder: str
    format: str
    detector: str
    score_threshold: float | Mapping[str, float]
    """The operating threshold the counts use: one for all classes, or one per class."""
    images: int
    classes: tuple[ClassScore, ...]
    counts: tuple[ImageCounts, ...] = field(default=())
    gsd_sources: tuple[str, ...] = field(default=())
    conditions: tuple[ConditionRecall, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "folder": self.folder,
            "format": self.format,
            "detector": self.detector,
            "score_threshold": (self.score_threshold if isinstance(self.score_threshold, float | int)
                                else dict(self.score_threshold)),
            "images": self.images,
            "gsd_sources": list(self.gsd_sources),
            "classes": {
                c.class_name: {
                    "ap50": c.ap50,
                    "ground_truth": c.ground_truth,
                    "predicted": c.predicted,
                    "precision": c.precision,
                    "recall": c.recall,
                    "mean_abs_count_error": c.mean_abs_count_error,
                    "mean_rel_count_error": c.mean_rel_count_error,
                }
                for c in self.classes
            },
            "per_image": [
                {"image": i.name, "true": i.true, "predicted": i.predicted} for i in self.counts
            ],
            "recall_by_condition": {
                f"{c.class_name}/{c.condition}": {"ground_truth": c.ground_truth, "found": c.found,
                                                  "recall": c.recall}
                for c in self.conditions
            },
        }


# --- readers ------------------------------------------------------------------------------


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def detect_format(folder: Path) -> str:
    """``isaid`` when the folder has iSAID class masks (``*_instance_color_RGB.png``), ``dota`` when it
    has DOTA label files (``labelTxt/`` or 8-coordinate lines), else ``yolo``."""
    if any(_isaid_folder(folder).glob(f"*{ISAID_CLASS_SUFFIX}")):
        return "isaid"
    if (folder / "labelTxt").is_dir():
        return "dota"
    for label in sorted(folder.rglob("*.txt"))[:20]:
        for line in label.read_text(encoding="utf-8", errors="replace").splitlines()[:3]:
            if line.startswith(("imagesource:", "gsd:")) or len(line.split()) >= 9:
                return "dota"
    return "yolo"


def _yolo_folders(folder: Path) -> tuple[Path, Path]:
    images = folder / "images" if (folder / "images").is_dir() else folder
    labels = folder / "labels" if (folder / "labels").is_dir() else images
    return images, labels


def _yolo_names(folder: Path) -> tuple[tuple[str, ...], str]:
    for candidate in [*sorted(folder.glob("*.names")), folder / "classes.txt"]:
        if candidate.is_file():
            names = tuple(n.strip() for n in candidate.read_text(encoding="utf-8").splitlines() if n.strip())
            return names, candidate.name
    for candidate in (folder / "data.yaml", folder / "dataset.yaml"):
        if candidate.is_file():
            meta = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
            listed = meta.get("names")
            if isinstance(listed, dict):
                return tuple(str(listed[k]) for k in sorted(listed)), candidate.name
            if isinstance(listed, list):
                return tuple(str(n) for n in listed), candidate.name
    return DEFAULT_YOLO_NAMES, "default"


def estimate_gsd(images: Iterable[LabelledImage]) -> float | None:
    """Ground sample distance from the size of the labelled car boxes.

    The long side of an axis-aligned box around a car barely depends on the car's heading,
    so the median long side in pixels gives the metres per pixel.
    """
    sides = [max(o.box[2] - o.box[0], o.box[3] - o.box[1])
             for image in images for o in image.objects if o.class_name == "car"]
    if len(sides) < 3:
        return None
    return CAR_LONG_SIDE_M / float(np.median(sides))


def read_yolo_folder(folder: Path, *, gsd: float | None = None) -> list[LabelledImage]:
    """Images with YOLO labels (``class cx cy w h`` normalised), class names from a names file."""
    image_dir, label_dir = _yolo_folders(folder)
    names, _ = _yolo_names(folder)
    found = []
    for stem, image_path in _images_in(image_dir).items():
        label_path = label_dir / f"{stem}.txt"
        if not label_path.is_file():
            continue
        width, height = _image_size(image_path)
        objects = []
        for number, line in enumerate(label_path.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                class_id = int(parts[0])
                cx, cy, w, h = (float(v) for v in parts[1:5])
            except (ValueError, IndexError):
                raise UnsupportedInputError(
                    f"{label_path}:{number}: {line!r} is not a YOLO box 'class cx cy w h'"
                ) from None
            raw = names[class_id] if 0 <= class_id < len(names) else str(class_id)
            objects.append(LabelledObject(
                class_name=CLASS_ALIASES.get(raw.lower(), raw.lower()),
                box=((cx - w / 2) * width, (cy - h / 2) * height,
                     (cx + w / 2) * width, (cy + h / 2) * height),
            ))
        found.append(LabelledImage(stem, image_path, tuple(objects)))
    if not found:
        raise UnsupportedInputError(
            f"{folder}: no image with a YOLO label file found; expected images/ and labels/<name>.txt "
            "(or both side by side)"
        )
    return _with_gsd(folder, found, gsd)


def _with_gsd(folder: Path, images: list[LabelledImage], gsd: float | None) -> list[LabelledImage]:
    if gsd is not None:
        value, source = gsd, "option"
    elif (metadata := folder_gsd(folder)) is not None:
        value, source = metadata, "metadata"
    elif (estimated := estimate_gsd(images)) is not None:
        value, source = estimated, "estimated"
    else:
        return images
    return [
        i if i.gsd is not None and gsd is None
        else LabelledImage(i.name, i.image_path, i.objects, value, source)
        for i in images
    ]


_DOTA_GSD = re.compile(r"^gsd:\s*([0-9.]+)")


def read_dota_folder(folder: Path, *, gsd: float | None = None) -> list[LabelledImage]:
    """Images with DOTA labelTxt files (4 corners, class, difficult); labels without image are skipped."""
    image_dir = folder / "images" if (folder / "images").is_dir() else folder
    label_dir = folder / "labelTxt" if (folder / "labelTxt").is_dir() else image_dir
    found = []
    for stem, image_path in _images_in(image_dir).items():
        label_path = label_dir / f"{stem}.txt"
        if not label_path.is_file():
            continue
        image_gsd = None
        objects = []
        for number, line in enumerate(label_path.read_text(encoding="utf-8").splitlines(), 1):
            if match := _DOTA_GSD.match(line):
                try:
                    image_gsd = float(match.group(1))
                except ValueError:
                    image_gsd = None
                continue
            parts = line.split()
            if len(parts) < 9 or line.startswith("imagesource:"):
                continue
            try:
                coords = np.array([float(v) for v in parts[:8]]).reshape(4, 2)
            except ValueError:
                raise UnsupportedInputError(
                    f"{label_path}:{number}: {line!r} is not 'x1 y1 ... x4 y4 class difficult'"
                ) from None
            raw = parts[8].lower()
            objects.append(LabelledObject(
                class_name=CLASS_ALIASES.get(raw, raw),
                box=(coords[:, 0].min(), coords[:, 1].min(), coords[:, 0].max(), coords[:, 1].max()),
                difficult=len(parts) > 9 and parts[9] == "1",
            ))
        found.append(LabelledImage(stem, image_path, tuple(objects), image_gsd,
                                   "label" if image_gsd is not None else "unknown"))
    if not found:
        raise UnsupportedInputError(
            f"{folder}: no image with a DOTA label file found; expected images/ and labelTxt/<name>.txt"
        )
    if gsd is not None or any(i.gsd is None for i in found):
        return _with_gsd(folder, found, gsd)
    return found


# --- iSAID ------------------------------------------------------------------------------------

ISAID_CLASS_SUFFIX = "_instance_color_RGB.png"
ISAID_INSTANCE_SUFFIX = "_instance_id_RGB.png"

ISAID_PALETTE: dict[tuple[int, int, int], str] = {
    (0, 0, 63): "ship",
    (0, 63, 63): "storage_tank",
    (0, 63, 0): "baseball_diamond",
    (0, 63, 127): "tennis_court",
    (0, 63, 191): "basketball_court",
    (0, 63, 255): "ground_track_field",
    (0, 127, 63): "bridge",
    (0, 127, 127): "large_vehicle",
    (0, 0, 127): "small_vehicle",
    (0, 0, 191): "helicopter",
    (0, 0, 255): "swimming_pool",
    (0, 191, 127): "roundabout",
    (0, 127, 191): "soccer_ball_field",
    (0, 127, 255): "plane",
    (0, 100, 155): "harbor",
}
"""The iSAID class mask's colours (R, G, B) and class names (iSAID_Devkit ``helpers/labels.py``,
names in lower case); (0, 0, 0) is unlabelled."""

ISAID_MIN_INSTANCE_ID = 1000
"""Instance ids (R + 256 G + 65536 B of the instance mask) below this are not instances: the
iSAID devkit's conversion to COCO skips them (the Cityscapes convention it inherits)."""

ISAID_MIN_PIXELS = 10
"""Instances of fewer pixels are marked difficult: no vehicle at the 0.1-0.5 m of iSAID covers
fewer (a car is several hundred pixels), so such a speck is a mask fragment, not an object."""

ISAID_FRAGMENT_SHARE = 0.5
"""An instance touching the image border with less than this share of its class's median area
(over the folder) is a fragment cut by the image edge: marked difficult, neither a miss when
the detector passes it by nor a false positive when it boxes the visible part."""


def _isaid_folder(folder: Path) -> Path:
    return folder / "images" if (folder / "images").is_dir() else folder


def _rgb_codes(path: Path) -> NDArray[np.int64]:
    """R + 256 G + 65536 B of each pixel of an RGB PNG."""
    from PIL import Image

    with Image.open(path) as opened:
        rgb = np.asarray(opened.convert("RGB"), dtype=np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


_ISAID_CODES = {r + 256 * g + 65536 * b: name for (r, g, b), name in ISAID_PALETTE.items()}


@dataclass(frozen=True, slots=True)
class _Instance:
    class_name: str
    pixels: int
    box: tuple[float, float, float, float]
    on_border: bool


def _isaid_instances(class_path: Path, instance_path: Path) -> list[_Instance]:
    """Each instance of an image: its class (the class mask under it), pixel count and box."""
    classes, ids = _rgb_codes(class_path), _rgb_codes(instance_path)
    if classes.shape != ids.shape:
        raise UnsupportedInputError(
            f"{instance_path.name} {ids.shape[::-1]} and {class_path.name} {classes.shape[::-1]} differ in "
            "size; both masks must come from the same image"
        )
    unknown = np.setdiff1d(np.unique(classes), [0, *_ISAID_CODES])
    if unknown.size:
        code = int(unknown[0])
        raise UnsupportedInputError(
            f"{class_path}: colour {(code % 256, code // 256 % 256, code // 65536)} is not an iSAID class "
            f"colour ({len(unknown)} unknown colours); give the devkit's *{ISAID_CLASS_SUFFIX} masks "
            "(lossless PNG), or use --format yolo/dota for other labels"
        )
    instance_ids, labels = np.unique(ids, return_inverse=True)
    labels = labels.reshape(ids.shape)
    kept = instance_ids >= ISAID_MIN_INSTANCE_ID
    if not kept.any():
        return []
    class_codes, class_index = np.unique(classes, return_inverse=True)
    # votes[instance, class]: an instance takes the class under most of its pixels
    votes = np.bincount(labels.ravel() * len(class_codes) + class_index.ravel(),
                        minlength=len(instance_ids) * len(class_codes)).reshape(len(instance_ids), -1)
    height, width = ids.shape
    found = []
    for index, extent in enumerate(ndimage.find_objects(labels + 1)):
        if extent is None or not kept[index]:
            continue
        per_class = votes[index]
        labelled = per_class.copy()
        labelled[class_codes == 0] = 0
        if not labelled.any():
            continue  # an id over unlabelled pixels only: nothing to score
        code = int(class_codes[int(np.argmax(labelled))])
        if np.count_nonzero(labelled) > 1:
            log.warning("%s: instance %d lies over %d classes; taken as %s, the class under most of it",
                        instance_path.name, int(instance_ids[index]), np.count_nonzero(labelled),
                        _ISAID_CODES[code])
        rows, cols = extent
        found.append(_Instance(
            class_name=_ISAID_CODES[code],
            pixels=int(per_class.sum()),
            box=(float(cols.start), float(rows.start), float(cols.stop), float(rows.stop)),
            on_border=rows.start == 0 or cols.start == 0 or rows.stop == height or cols.stop == width,
        ))
    return found


def read_isaid_folder(folder: Path, *, gsd: float | None = None) -> list[LabelledImage]:
    """Images with iSAID masks: ``NAME.png`` beside ``NAME_instance_color_RGB.png`` (class colours)
    and ``NAME_instance_id_RGB.png`` (one colour per instance), in the folder or its ``images/``.

    Each instance becomes the axis-aligned box around its pixels (pixel edges: a one-pixel
    instance at column 3 spans 3..4), of the class under most of its pixels; tiny specks and
    fragments cut by the image border are marked difficult (:data:`ISAID_MIN_PIXELS`,
    :data:`ISAID_FRAGMENT_SHARE`). The masks carry no GSD: it comes from ``gsd``, the folder's
    metadata, or the car boxes, as for YOLO folders.
    """
    image_dir = _isaid_folder(folder)
    masks = {ISAID_CLASS_SUFFIX, ISAID_INSTANCE_SUFFIX}
    images = {stem: path for stem, path in _images_in(image_dir).items()
              if not any(path.name.endswith(suffix) for suffix in masks)}
    per_image: list[tuple[str, Path, list[_Instance]]] = []
    for class_path in sorted(image_dir.glob(f"*{ISAID_CLASS_SUFFIX}")):
        stem = class_path.name[: -len(ISAID_CLASS_SUFFIX)]
        instance_path = image_dir / f"{stem}{ISAID_INSTANCE_SUFFIX}"
        if stem not in images:
            continue
        if not instance_path.is_file():
            raise UnsupportedInputError(
                f"{class_path} has no instance mask {instance_path.name} beside it; iSAID boxes need both"
            )
        per_image.append((stem, images[stem], _isaid_instances(class_path, instance_path)))
    if not per_image:
        raise UnsupportedInputError(
            f"{folder}: no image with iSAID masks found; expected NAME.png beside "
            f"NAME{ISAID_CLASS_SUFFIX} and NAME{ISAID_INSTANCE_SUFFIX}"
        )
    areas: dict[str, list[int]] = {}
    for _, _, instances in per_image:
        for instance in instances:
            areas.setdefault(instance.class_name, []).append(instance.pixels)
    typical = {name: float(np.median(values)) for name, values in areas.items()}
    found = []
    for stem, image_path, instances in per_image:
        objects = tuple(
            LabelledObject(
                class_name=CLASS_ALIASES.get(i.class_name, i.class_name),
                box=i.box,
                difficult=i.pixels < ISAID_MIN_PIXELS
                or (i.on_border and i.pixels < ISAID_FRAGMENT_SHARE * typical[i.class_name]),
            )
            for i in instances
        )
        found.append(LabelledImage(stem, image_path, objects))
    return _with_gsd(folder, found, gsd)


def read_folder(folder: Path, *, gsd: float | None = None,
                fmt: str = "auto") -> tuple[str, list[LabelledImage]]:
    """Read a labelled folder in YOLO, DOTA or iSAID format (``fmt='auto'`` guesses from the files)."""
    if not folder.is_dir():
        raise UnsupportedInputError(f"{folder} is not a folder; give a folder of labelled images")
    chosen = detect_format(folder) if fmt == "auto" else fmt
    if chosen == "yolo":
        return chosen, read_yolo_folder(folder, gsd=gsd)
    if chosen == "dota":
        return chosen, read_dota_folder(folder, gsd=gsd)
    if chosen == "isaid":
        return chosen, read_isaid_folder(folder, gsd=gsd)
    raise UnsupportedInputError(f"format {fmt!r} is not one of: auto, yolo, dota, isaid")


# --- metrics ------------------------------------------------------------------------------


def box_iou(box: Sequence[float], boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0, y0, x1, y1 box with each row of ``boxes``."""
    if len(boxes) == 0:
        return np.zeros(0)
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_class(truth: Sequence[Sequence[LabelledObject]], predictions: Sequence[Sequence[PredictedObject]],
                class_name: str, iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores and true-positive flags of every prediction of a class, and the number of true objects.

    Predictions that best match a difficult object are dropped (neither TP nor FP).
    """
    scores: list[float] = []
    hits: list[bool] = []
    positives = 0
    for objects, predicted in zip(truth, predictions, strict=True):
        gt = [o for o in objects if o.class_name == class_name]
        gt_boxes = np.array([o.box for o in gt], dtype=np.float64).reshape(-1, 4)
        difficult = np.array([o.difficult for o in gt], dtype=bool)
        positives += int((~difficult).sum())
        used = np.zeros(len(gt), dtype=bool)
        for p in sorted((p for p in predicted if p.class_name == class_name), key=lambda p: -p.score):
            ious = box_iou(p.box, gt_boxes)
            best = int(np.argmax(ious)) if len(ious) else -1
            if best >= 0 and ious[best] >= iou_threshold:
                if difficult[best]:
                    continue
                if not used[best]:
                    used[best] = True
                    scores.append(p.score)
                    hits.append(True)
                    continue
            scores.append(p.score)
            hits.append(False)
    return np.asarray(scores), np.asarray(hits, dtype=bool), positives


def average_precision(scores: np.ndarray, hits: np.ndarray, positives: int) -> float | None:
    """All-point interpolated AP (VOC 2010+); None without positives."""
    if positives == 0:
        return None
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / positives
    precision = tp / np.maximum(tp + fp, 1)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def threshold_of(score_threshold: float | Mapping[str, float], class_name: str) -> float:
    """The operating threshold of ``class_name`` (one for every class, or one per class)."""
    if isinstance(score_threshold, Mapping):
        return float(score_threshold[class_name])
    return float(score_threshold)


def score_detections(images: Sequence[LabelledImage], predictions: Sequence[Sequence[PredictedObject]],
                     classes: Sequence[str], score_threshold: float | Mapping[str, float]
                     ) -> tuple[list[ClassScore], list[ImageCounts]]:
    """AP50, precision/recall and count errors per class for predictions aligned with ``images``."""
    truth = [image.objects for image in images]
    thresholds = {c: threshold_of(score_threshold, c) for c in classes}
    results = []
    counts = [
        ImageCounts(
            image.name,
            true={c: sum(1 for o in image.objects if o.class_name == c and not o.difficult) for c in classes},
            predicted={c: sum(1 for p in predicted if p.class_name == c and p.score >= thresholds[c])
                       for c in classes},
        )
        for image, predicted in zip(images, predictions, strict=True)
    ]
    for class_name in classes:
        scores, hits, positives = match_class(truth, predictions, class_name)
        kept = scores >= thresholds[class_name]
        true_positives = int(hits[kept].sum()) if len(hits) else 0
        predicted = int(kept.sum())
        absolute = [abs(c.predicted[class_name] - c.true[class_name]) for c in counts]
        relative = [abs(c.predicted[class_name] - c.true[class_name]) / c.true[class_name]
                    for c in counts if c.true[class_name] > 0]
        results.append(ClassScore(
            class_name=class_name,
            ap50=average_precision(scores, hits, positives),
            ground_truth=positives,
            predicted=predicted,
            precision=true_positives / predicted if predicted else None,
            recall=true_positives / positives if positives else None,
            mean_abs_count_error=float(np.mean(absolute)) if absolute else 0.0,
            mean_rel_count_error=float(np.mean(relative)) if relative else None,
        ))
    return results, counts


def _conditions(pixels: np.ndarray, box: tuple[float, float, float, float],
                median: float) -> tuple[str, str]:
    """(``in_shadow`` or ``in_sun``, ``diagonal`` or ``along_axes``) of a true box on luminance pixels."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    rows, cols = pixels.shape
    ox0, oy0 = max(0, int(x0 - width / 2)), max(0, int(y0 - height / 2))
    ox1, oy1 = min(cols, int(np.ceil(x1 + width / 2))), min(rows, int(np.ceil(y1 + height / 2)))
    ring = np.ones((oy1 - oy0, ox1 - ox0), bool)
    inner_rows = slice(max(0, int(y0) - oy0), max(0, int(np.ceil(y1)) - oy0))
    ring[inner_rows, max(0, int(x0) - ox0):max(0, int(np.ceil(x1)) - ox0)] = False
    around = pixels[oy0:oy1, ox0:ox1][ring]
    light = "in_shadow" if around.size and float(np.median(around)) < SHADOW_RATIO * median else "in_sun"
    long_side, short_side = max(width, height), max(min(width, height), 1e-6)
    heading = "diagonal" if long_side < DIAGONAL_ASPECT * short_side else "along_axes"
    return light, heading


def found_objects(objects: Sequence[LabelledObject], predicted: Sequence[PredictedObject], class_name: str,
                  threshold: float, iou_threshold: float = 0.5) -> list[bool]:
    """For each true object of ``class_name`` (in order), whether a prediction at or above ``threshold``
    matched it (greedy by score, as AP matches)."""
    truth = [o for o in objects if o.class_name == class_name]
    boxes = np.array([o.box for o in truth], dtype=np.float64).reshape(-1, 4)
    used = np.zeros(len(truth), dtype=bool)
    for p in sorted((p for p in predicted if p.class_name == class_name and p.score >= threshold),
                    key=lambda p: -p.score):
        ious = box_iou(p.box, boxes)
        ious[used] = -1
        if len(ious) and ious.max() >= iou_threshold:
            used[int(np.argmax(ious))] = True
    return used.tolist()


def recall_by_condition(images: Sequence[LabelledImage], predictions: Sequence[Sequence[PredictedObject]],
                        class_name: str, threshold: float) -> list[ConditionRecall]:
    """Recall of ``class_name`` in shadow and in sun, at headings along and between the image axes."""
    from PIL import Image

    tally: dict[str, list[int]] = {}
    for image, predicted in zip(images, predictions, strict=True):
        truth = [o for o in image.objects if o.class_name == class_name and not o.difficult]
        if not truth:
            continue
        with Image.open(image.image_path) as opened:
            luminance = np.asarray(opened.convert("L"), dtype=np.float32)
        median = float(np.median(luminance))
        hits = found_objects(truth, predicted, class_name, threshold)
        for obj, hit in zip(truth, hits, strict=True):
            for condition in _conditions(luminance, obj.box, median):
                counts = tally.setdefault(condition, [0, 0])
                counts[0] += 1
                counts[1] += int(hit)
    order = ("in_shadow", "in_sun", "diagonal", "along_axes")
    return [ConditionRecall(class_name, c, tally[c][0], tally[c][1]) for c in order if c in tally]


def evaluate_folder(folder: Path, predict: Callable[[LabelledImage], Sequence[PredictedObject]], *,
                    classes: Sequence[str], score_threshold: float | Mapping[str, float], detector_name: str,
                    gsd: float | None = None, fmt: str = "auto",
                    images: Sequence[LabelledImage] | None = None) -> DetectionReport:
    """Run ``predict`` on every labelled image of ``folder`` and score it.

    ``predict`` gets each image (path, GSD) and returns every candidate (all scores, so AP
    sees the whole ranking); counts use ``score_threshold``.
    """
    chosen, labelled = read_folder(folder, gsd=gsd, fmt=fmt)
    if images is not None:
        labelled = list(images)
    predictions = [list(predict(image)) for image in labelled]
    scored_classes = [c for c in classes if any(o.class_name == c for i in labelled for o in i.objects)]
    class_scores, counts = score_detections(labelled, predictions, scored_classes, score_threshold)
    conditions = [found for class_name in scored_classes
                  for found in recall_by_condition(labelled, predictions, class_name,
                                                   threshold_of(score_threshold, class_name))]
    return DetectionReport(
        folder=str(folder),
        format=chosen,
        detector=detector_name,
        score_threshold=score_threshold,
        images=len(labelled),
        classes=tuple(class_scores),
        counts=tuple(counts),
        gsd_sources=tuple(sorted({i.gsd_source for i in labelled})),
        conditions=tuple(conditions),
    )
