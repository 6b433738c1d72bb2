"""The project's vehicle detector, run with onnxruntime: tiled, GSD-aware, de-duplicated.

Why tiles: a 4096x4096 chip at 0.5 m becomes ~6800x6800 pixels at the model's 0.3 m, too
big to run in one piece with bounded memory. Each tile is resampled straight from the
source image (PIL's resize with a source box, so there is no full-size resampled copy),
tiles overlap by more than the largest object, and each detection is kept only by the tile
whose *core* (the tile minus half the overlap on inner sides) holds its centre. The cores
partition the image, so every object is reported once without a global NMS; a class-wise
NMS over seam neighbourhoods removes the rare pair whose centre estimates straddle a seam.
"""

from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from sitewatch.analytics.objects.base import DetectorInfo, ObjectBox
from sitewatch.core.errors import UnsupportedInputError

SHIPPED_MODEL = "vehicles"
SHIPPED_REMEDY = "reinstall sitewatch or regenerate both with `sitewatch train detector CONFIG`"
"""What to do about a shipped model file that is missing or damaged."""
_MODELS = "sitewatch.analytics.objects.models"


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What the shipped ONNX file is, read from its JSON card beside it."""

    name: str
    version: str
    onnx_file: str
    sha256: str
    """SHA-256 of the ONNX file; checked when the model loads."""
    classes: tuple[str, ...]
    bands: tuple[str, ...]
    model_gsd: float
    gsd_range: tuple[float, float]
    stride: int
    input_multiple: int
    score_threshold: float
    tile: int = 512
    overlap: int = 96
    validated_on_real: tuple[str, ...] = ()
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_credit: tuple[str, ...] = ()
    class_thresholds: tuple[tuple[str, float], ...] = ()
    """Operating threshold per class where one was chosen for it; ``score_threshold`` otherwise."""
    merge_classes: tuple[str, ...] = ()
    """Classes whose overlapping boxes are merged into one (a crane's jib gives several peaks)."""
    architecture: dict[str, Any] = field(default_factory=dict)
    """The torch model the file was exported from and its hyper-parameters (``{"model":
    "CenterNetLite", "width": 32}``), so that its float weights can be loaded to fine-tune it."""
    weights_file: str | None = None
    """The float weights (``<name>.weights.npz``) beside the ONNX file; None when not shipped."""
    weights_sha256: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> ModelCard:
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                onnx_file=str(data["onnx_file"]),
                sha256=str(data["sha256"]),
                classes=tuple(data["classes"]),
                bands=tuple(data["bands"]),
                model_gsd=float(data["model_gsd"]),
                gsd_range=(float(data["gsd_range"][0]), float(data["gsd_range"][1])),
                stride=int(data["stride"]),
                input_multiple=int(data["input_multiple"]),
                score_threshold=float(data["score_threshold"]),
                tile=int(data.get("tile", 512)),
                overlap=int(data.get("overlap", 96)),
                validated_on_real=tuple(data.get("validated_on_real", ())),
                training=dict(data.get("training", {})),
                metrics=dict(data.get("metrics", {})),
                data_credit=tuple(data.get("data_credit", ())),
                class_thresholds=tuple((str(k), float(v))
                                       for k, v in dict(data.get("class_thresholds", {})).items()),
                merge_classes=tuple(str(c) for c in data.get("merge_classes", ())),
                architecture=dict(data.get("architecture", {})),
                weights_file=str(data["weights_file"]) if data.get("weights_file") else None,
                weights_sha256=str(data["weights_sha256"]) if data.get("weights_sha256") else None,
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise UnsupportedInputError(
                f"model card {source} is malformed ({error!r}); regenerate it with `sitewatch train detector`"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "onnx_file": self.onnx_file,
            "sha256": self.sha256,
            "classes": list(self.classes),
            "bands": list(self.bands),
            "model_gsd": self.model_gsd,
            "gsd_range": list(self.gsd_range),
            "stride": self.stride,
            "input_multiple": self.input_multiple,
            "score_threshold": self.score_threshold,
            "tile": self.tile,
            "overlap": self.overlap,
            "validated_on_real": list(self.validated_on_real),
            "training": self.training,
            "metrics": self.metrics,
            "data_credit": list(self.data_credit),
            "class_thresholds": dict(self.class_thresholds),
            "merge_classes": list(self.merge_classes),
            "architecture": self.architecture,
            "weights_file": self.weights_file,
            "weights_sha256": self.weights_sha256,
        }


@dataclass(frozen=True, slots=True)
class Tile:
    """A window of the model-GSD grid and the part of it (the core) whose detections it owns."""

    x: int
    y: int
    width: int
    height: int
    core: tuple[float, float, float, float]
    """x0, y0, x1, y1 in model pixels; infinite on the image's outer sides."""


def plan_tiles(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Overlapping tiles covering a width x height grid; their cores partition the plane."""
    if tile <= overlap:
        raise ValueError(f"tile size {tile} must exceed the overlap {overlap}")

    def spans(length: int) -> tuple[list[int], int]:
        # Fewest tiles that keep at least `overlap`, then shrink them evenly so little is run twice.
        if length <= tile:
            return [0], length
        count = math.ceil((length - overlap) / (tile - overlap))
        size = min(tile, -(-(length + (count - 1) * overlap) // count // 16) * 16 + 16)
        size = min(tile, max(size, overlap + 16))
        step = (length - size) / (count - 1)
        return [round(i * step) for i in range(count)], size

    (xs, tile_w), (ys, tile_h) = spans(width), spans(height)
    tiles = []
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            w, h = min(tile_w, width - x), min(tile_h, height - y)
            # Core edges: midway through the overlap with the neighbour, open to infinity outside.
            cx0 = -math.inf if i == 0 else (x + xs[i - 1] + tile_w) / 2
            cx1 = math.inf if i == len(xs) - 1 else (xs[i + 1] + x + tile_w) / 2
            cy0 = -math.inf if j == 0 else (y + ys[j - 1] + tile_h) / 2
            cy1 = math.inf if j == len(ys) - 1 else (ys[j + 1] + y + tile_h) / 2
            tiles.append(Tile(x, y, w, h, (cx0, cy0, cx1, cy1)))
    return tiles


def _core_observed(tile: Tile, nodata_mask: np.ndarray, scale: float) -> bool:
    """Whether the core of ``tile`` (model pixels) holds an observed pixel of the input, whose grid is
    ``scale`` times coarser; the core's edges are rounded outwards, so a tile is only left out when
    none of its core can be seen."""
    rows, cols = nodata_mask.shape
    cx0, cy0, cx1, cy1 = tile.core
    x0 = max(0, math.floor(max(cx0, tile.x) / scale) - 1)
    y0 = max(0, math.floor(max(cy0, tile.y) / scale) - 1)
    x1 = min(cols, math.ceil(min(cx1, tile.x + tile.width) / scale) + 1)
    y1 = min(rows, math.ceil(min(cy1, tile.y + tile.height) / scale) + 1)
    return bool((~nodata_mask[y0:y1, x0:x1]).any())


def to_display_bytes(image: np.ndarray, nodata_mask: np.ndarray | None = None) -> np.ndarray:
    """(bands, rows, cols) pixels as (rows, cols, bands) uint8, the range the model was trained on.

    uint8 is taken as is; other types are stretched between the 0.5th and 99.5th percentile
    of valid pixels over all bands jointly, so colours keep their balance.
    """
    if image.dtype == np.uint8:
        out = np.ascontiguousarray(image.transpose(1, 2, 0))
        if nodata_mask is not None and np.shares_memory(out, image):
            out = out.copy()  # zeroing nodata must not write into the caller's pixels
    else:
        values = image.astype(np.float32)
        valid = np.isfinite(values).all(axis=0)
        if nodata_mask is not None:
            valid &= ~nodata_mask
        if not valid.any():
            raise UnsupportedInputError("image has no valid pixels to detect objects in")
        sample = values[:, valid]
        if sample.shape[1] > 1_000_000:
            sample = sample[:, :: sample.shape[1] // 1_000_000]
        low, high = np.percentile(sample, [0.5, 99.5])
        scale = 255.0 / max(float(high - low), 1e-6)
        out = np.clip((np.nan_to_num(values) - low) * scale, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        out = np.ascontiguousarray(out)
    if nodata_mask is not None:
        out[nodata_mask] = 0
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (boxes x0, y0, x1, y1), best score first.

    The same result as comparing every kept box with every other, but each kept box is only
    compared with the boxes whose left edge lies within reach of it (the widest box's width to
    its left, its own right edge to the right), found by binary search on sorted left edges:
    a chip's 15,000 detections take milliseconds instead of seconds.
    """
    count = len(boxes)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    by_left = np.argsort(boxes[:, 0], kind="stable")
    lefts = boxes[by_left, 0]
    widest = float((boxes[:, 2] - boxes[:, 0]).max())
    suppressed = np.zeros(count, dtype=bool)
    keep = []
    for best in order:
        if suppressed[best]:
            continue
        keep.append(best)
        # Boxes scored above ``best`` are already kept (and overlap it at most the threshold) or
        # suppressed, so only lower-scored ones are suppressed here, as in the plain greedy loop.
        low = np.searchsorted(lefts, boxes[best, 0] - widest, side="left")
        high = np.searchsorted(lefts, boxes[best, 2], side="right")
        near = by_left[low:high]
        near = near[~suppressed[near] & (near != best)]
        if near.size == 0:
            continue
        ix = np.minimum(boxes[best, 2], boxes[near, 2]) - np.maximum(boxes[best, 0], boxes[near, 0])
        iy = np.minimum(boxes[best, 3], boxes[near, 3]) - np.maximum(boxes[best, 1], boxes[near, 1])
        inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
        iou = inter / np.maximum(areas[best] + areas[near] - inter, 1e-9)
        suppressed[near[iou > iou_threshold]] = True
    return np.asarray(keep, dtype=np.int64)


TYPICAL_AREA_M2 = {"car": 8.0, "large_vehicle": 30.0, "tanker_truck": 25.0, "rail_car": 45.0}
"""Area of a typical whole object's box, in square metres (a car 4.5 x 1.8 m, a truck 12 x 2.5 m, ...)."""
EDGE_SHARE = 0.5
"""An object cut by the image's edge is reported only when its box holds at least this share of a
typical whole one: a sliver of a car at the border cannot be told from a sliver of anything else,
and the neighbouring image sees it whole (labelled sets leave such slivers out too)."""


def _whole_enough(rows: np.ndarray, width: int, height: int, gsd: float,
                  classes: tuple[str, ...]) -> np.ndarray:
    """Rows (class, score, x0, y0, x1, y1 in model pixels) without slivers cut by the image's edge."""
    if len(rows) == 0:
        return rows
    touching = (rows[:, 2] <= 1) | (rows[:, 3] <= 1) | (rows[:, 4] >= width - 1) | (rows[:, 5] >= height - 1)
    x0, y0 = np.clip(rows[:, 2], 0, width), np.clip(rows[:, 3], 0, height)
    x1, y1 = np.clip(rows[:, 4], 0, width), np.clip(rows[:, 5], 0, height)
    area = (x1 - x0) * (y1 - y0) * gsd**2
    typical = np.array([TYPICAL_AREA_M2.get(classes[int(c)], 0.0) for c in rows[:, 0]])
    return rows[~touching | (area >= EDGE_SHARE * typical)]


MERGE_OVERLAP = 0.1
"""Boxes of a merge class whose intersection is at least this share of the smaller one are one object."""


def merge_overlapping(rows: np.ndarray) -> np.ndarray:
    """Rows (class, score, x0, y0, x1, y1) of one class with boxes of the same object made one.

    A crane's jib is long and thin: the detector finds a peak on its mast and more along the jib,
    each with a box of its part. Boxes overlapping a better-scored one by at least
    :data:`MERGE_OVERLAP` of the smaller box are parts of it and are dropped, so each crane keeps
    one box, its best. (The union of the parts was tried first: on simulated renders the union
    box is larger than the crane and missed it at IoU 0.5 where the best part matched.)
    """
    if len(rows) < 2:
        return rows
    order = np.argsort(-rows[:, 1], kind="stable")
    boxes = rows[:, 2:6]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    dropped = np.zeros(len(rows), dtype=bool)
    kept = []
    for best in order:
        if dropped[best]:
            continue
        kept.append(best)
        ix = np.minimum(boxes[best, 2], boxes[:, 2]) - np.maximum(boxes[best, 0], boxes[:, 0])
        iy = np.minimum(boxes[best, 3], boxes[:, 3]) - np.maximum(boxes[best, 1], boxes[:, 1])
        inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
        smaller = np.maximum(np.minimum(areas[best], areas), 1e-9)
        dropped |= inter / smaller >= MERGE_OVERLAP
    return rows[np.asarray(kept, dtype=np.int64)]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_files_version(card_path: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of a model card's files (``<stem>.*`` beside it): what a
    loaded model is cached by, so that a file replaced or damaged since is read and checked again."""
    stats = ((p.name, p.stat()) for p in card_path.parent.glob(f"{card_path.stem}.*"))
    return tuple(sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats))


def takes_bytes(session: ort.InferenceSession) -> bool:
    """Whether the detector model of ``session`` takes the image's bytes (the shipped model since issue
    18's 7th pass: ``sitewatch.training.quantize.take_bytes``) rather than floats 0..1."""
    return bool(session.get_inputs()[0].type == "tensor(uint8)")


BATCH_PIXELS = 4 * 640 * 640
"""Model pixels per onnxruntime call: four 640-px tiles, or one 1280-px tile (the same pixels per
second either way; a batch of four 1280-px tiles would only hold four times the memory)."""


class OnnxDetector:
    """Runs a CenterNet-style ONNX model (outputs: peaks, log size, offset) over any image size."""

    def __init__(self, model_path: Path, card: ModelCard, *, threads: int | None = None,
                 batch_pixels: int = BATCH_PIXELS, verify: bool = True, remedy: str = SHIPPED_REMEDY) -> None:
        if not model_path.is_file():
            raise UnsupportedInputError(f"model file {model_path} not found; {remedy}")
        if verify and file_sha256(model_path) != card.sha256:
            raise UnsupportedInputError(
                f"{model_path} does not match the checksum in its model card: the file is damaged or "
                f"was replaced; {remedy}"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        # Idle pool threads sleep instead of spinning: on a busy 2-core machine (monitor workers, other
        # jobs) spinning threads burn the cores the others need; on a 1,035 x 1,233 chip the
        # detection then took 0.66 s and 0.46 CPU-s instead of 1.1 s and 0.66 CPU-s, same boxes.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.takes_bytes = takes_bytes(self.session)
        self.card = card
        self.batch_pixels = batch_pixels
        self._info = DetectorInfo(
            name=card.name,
            classes=card.classes,
            bands=card.bands,
            gsd_range=card.gsd_range,
            model_gsd=card.model_gsd,
            score_threshold=card.score_threshold,
            validated_on_real=card.validated_on_real,
            class_thresholds=card.class_thresholds,
        )

    @property
    def info(self) -> DetectorInfo:
        return self._info

    def detect(self, image: np.ndarray, gsd: float, *, score_threshold: float | None = None,
               nodata_mask: np.ndarray | None = None, tile: int | None = None,
               overlap: int | None = None) -> list[ObjectBox]:
        """Objects in ``image`` (bands, rows, cols) of ground sample distance ``gsd`` metres.

        ``score_threshold`` None keeps each class's operating threshold; a number keeps every box
        scored at least that (evaluation asks for all candidates to rank them).
        """
        self.info.check(image, gsd)
        per_class = np.array([self.info.threshold(c) for c in self.card.classes], np.float32)
        threshold = float(per_class.min()) if score_threshold is None else score_threshold
        pixels = Image.fromarray(to_display_bytes(image, nodata_mask))
        scale = gsd / self.card.model_gsd  # model pixels per input pixel
        model_w = max(1, round(image.shape[2] * scale))
        model_h = max(1, round(image.shape[1] * scale))
        tiles = plan_tiles(model_w, model_h, tile or self.card.tile, overlap or self.card.overlap)
        if nodata_mask is not None:
            # A tile whose core holds no observed pixel could only own boxes centred on unobserved
            # ones (a site at a scene's edge leaves whole tiles of nodata): it is not run.
            tiles = [t for t in tiles if _core_observed(t, nodata_mask, scale)]
            if not tiles:
                return []
        per_run = max(1, self.batch_pixels // (tiles[0].width * tiles[0].height))
        groups = [tiles[first:first + per_run] for first in range(0, len(tiles), per_run)]
        found: list[np.ndarray] = []
        # The next batch is resampled in a thread of its own while onnxruntime runs this one (PIL's
        # resize and onnxruntime both release the GIL): at 0.5 m the resampling and the conversion
        # to floats are a quarter of the time, which then no longer adds to the model's.
        with ThreadPoolExecutor(1, thread_name_prefix="sitewatch-resample") as resampler:
            upcoming = resampler.submit(self._resample, pixels, groups[0], scale)
            for index, group in enumerate(groups):
                batch = upcoming.result()
                if index + 1 < len(groups):
                    upcoming = resampler.submit(self._resample, pixels, groups[index + 1], scale)
                found.extend(self._infer(batch, group, threshold))
        rows = np.concatenate(found) if found else np.zeros((0, 6))
        if score_threshold is None and len(rows):
            rows = rows[rows[:, 1] >= per_class[rows[:, 0].astype(np.int64)]]
        rows = self._deduplicate(rows)
        rows = _whole_enough(rows, model_w, model_h, self.card.model_gsd, self.card.classes)
        boxes = []
        for cls, score, x0, y0, x1, y1 in rows:
            boxes.append(ObjectBox(self.card.classes[int(cls)], float(min(score, 1.0)),
                                   x0 / scale, y0 / scale, x1 / scale, y1 / scale))
        return boxes

    def _resample(self, pixels: Image.Image, tiles: list[Tile], scale: float) -> np.ndarray:
        """The model's input for ``tiles``: each resampled from the source to the model's GSD,
        as the model takes them (:meth:`model_input`) and zero-padded to the batch's common size."""
        multiple = self.card.input_multiple
        height = max(t.height for t in tiles)
        width = max(t.width for t in tiles)
        height, width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
        batch = np.zeros((len(tiles), 3, height, width), np.uint8 if self.takes_bytes else np.float32)
        for k, t in enumerate(tiles):
            source_box = (t.x / scale, t.y / scale, min((t.x + t.width) / scale, pixels.width),
                          min((t.y + t.height) / scale, pixels.height))
            patch = pixels.resize((t.width, t.height), Image.Resampling.BILINEAR, box=source_box)
            self.model_input(np.asarray(patch).transpose(2, 0, 1), out=batch[k, :, : t.height, : t.width])
        return batch

    def model_input(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """What the model takes for image bytes ``pixels`` (uint8, ..., 3, rows, cols): the bytes as
        they are, or floats 0..1 for a model with float input (a workspace's model fine-tuned before
        byte input), written into ``out`` when given."""
        if self.takes_bytes:
            if out is None:
                return np.array(pixels, np.uint8)
            out[...] = pixels
            return out
        # float32(byte) * float32(1 / 255), as converting first and scaling after would give
        return np.multiply(pixels, np.float32(1.0 / 255.0), out=out, dtype=np.float32)

    def _infer(self, batch: np.ndarray, tiles: list[Tile], threshold: float) -> list[np.ndarray]:
        """Rows (class, score, x0, y0, x1, y1 in model pixels) that the tiles own, scored at least
        ``threshold``."""
        peaks, size, offset = self.session.run(None, {"image": batch})
        stride = self.card.stride
        out = []
        for k, t in enumerate(tiles):
            cls, iy, ix = np.nonzero(peaks[k] >= threshold)
            if cls.size == 0:
                continue
            scores = peaks[k][cls, iy, ix]
            cx = (ix + offset[k, 0, iy, ix]) * stride + t.x
            cy = (iy + offset[k, 1, iy, ix]) * stride + t.y
            w = np.exp(np.clip(size[k, 0, iy, ix], -2, 8))
            h = np.exp(np.clip(size[k, 1, iy, ix], -2, 8))
            inside = (ix * stride < t.width) & (iy * stride < t.height)
            x0c, y0c, x1c, y1c = t.core
            owned = inside & (cx >= x0c) & (cx < x1c) & (cy >= y0c) & (cy < y1c)
            out.append(np.stack([cls, scores, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)[owned])
        return out

    def _deduplicate(self, rows: np.ndarray) -> np.ndarray:
        """Class-wise NMS at IoU 0.6: joins the few objects seen on both sides of a seam; boxes of
        the card's merge classes that overlap become one box (see :func:`merge_overlapping`)."""
        if len(rows) < 2:
            return rows
        kept = []
        for cls in np.unique(rows[:, 0]):
            subset = rows[rows[:, 0] == cls]
            subset = subset[nms(subset[:, 2:6], subset[:, 1], 0.6)]
            if self.card.classes[int(cls)] in self.card.merge_classes:
                subset = merge_overlapping(subset)
            kept.append(subset)
        merged = np.concatenate(kept)
        return merged[np.argsort(-merged[:, 1], kind="stable")]


def shipped_model_dir() -> Path:
    return Path(str(resources.files(_MODELS)))


def load_card(path: Path, *, remedy: str = SHIPPED_REMEDY) -> ModelCard:
    if not path.is_file():
        raise UnsupportedInputError(f"model card {path} not found; {remedy}")
    return ModelCard.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))


def load_detector(card_path: Path, *, threads: int | None = None,
                  remedy: str = SHIPPED_REMEDY) -> OnnxDetector:
    """The model of the card at ``card_path``; ``remedy``: what to do when its file is missing or damaged."""
    card = load_card(card_path, remedy=remedy)
    return OnnxDetector(card_path.parent / card.onnx_file, card, threads=threads, remedy=remedy)


def load_shipped_detector() -> OnnxDetector:
    """The vehicle detector carried inside the package (no download)."""
    return load_detector(shipped_model_dir() / f"{SHIPPED_MODEL}.json")
