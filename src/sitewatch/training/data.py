"""Training samples for the vehicle detector: labelled frames, random crops, targets.

Frames come from YOLO-format folders (KIT AIS) read with the evaluation readers, so the
labels the model learns from are parsed by the same code that scores it, from tile mosaics
labelled by the project (:mod:`sitewatch.training.mosaic`) and from simulator renders. Each
sample is a crop resampled to the model's ground sample distance with a random scale and
heading, composed with pasted vehicles and look-alikes (:mod:`sitewatch.training.composite`),
optionally degraded to a coarser GSD (sites are watched at 0.5 m), flipped and turned by
quarter turns, then given the looks of another sensor (colour, haze, blur, JPEG, noise), and
encoded as CenterNet targets. Regions marked *ignore* (an object nobody could name) are
neither positive nor negative.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from scipy import ndimage

from sitewatch.evaluation.detect import LabelledImage

if TYPE_CHECKING:
    from sitewatch.training.composite import Compositor

Resampling = Image.Resampling


@dataclass(frozen=True, slots=True)
class TrainingFrame:
    """One labelled frame in memory: RGB uint8 pixels and boxes in its pixels."""

    name: str
    image: Image.Image
    gsd: float
    boxes: np.ndarray
    """(N, 4) float x0, y0, x1, y1 in frame pixels."""
    classes: np.ndarray
    """(N,) int class index into the model's classes."""
    weight: float = 1.0
    """Relative chance of drawing a crop from this frame."""
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    """(M, 4) boxes of things nobody could name (a vehicle half hidden, too blurred to tell): the
    model is neither rewarded nor penalised there."""
    corners: np.ndarray | None = None
    """(N, 4, 2) corners (x, y) of each object's oriented outline where known (renders); a turned
    crop then gets exact boxes instead of boxes around turned boxes."""
    rotatable: bool = True
    """Whether crops may be turned by any angle; False for frames whose boxes are axis-aligned
    boxes around objects at other headings (turning them would inflate the boxes)."""


@dataclass(frozen=True, slots=True)
class Crop:
    """One training sample."""

    pixels: np.ndarray
    """(3, S, S) float32 RGB in 0..1."""
    boxes: np.ndarray
    """(N, 4) x0, y0, x1, y1 in crop pixels."""
    classes: np.ndarray
    """(N,) class indices."""
    ignore: np.ndarray
    """(M, 4) ignore boxes in crop pixels."""


@dataclass(frozen=True, slots=True)
class Augmentation:
    """Random changes applied to each crop; ranges are inclusive."""

    scale_jitter: float = 0.2
    """Model GSD is multiplied by a factor in [1 - j, 1 + j] for each crop."""
    degrade_probability: float = 0.5
    """Chance to blur the crop as if imaged at a coarser GSD."""
    degrade_max_gsd: float = 0.6
    """Coarsest GSD simulated by degradation, in metres."""
    rotate_probability: float = 0.6
    """Chance to turn the crop by a random angle (0-90 degrees; flips and quarter turns do the rest)."""
    colour_jitter: float = 0.25
    noise_std: float = 0.02
    object_probability: float = 0.0
    """Chance to centre the crop (give or take a third of its width) on one of the frame's
    objects instead of a uniformly random place; the object is drawn with weights inverse to
    its class's frequency over all frames, so rail cars and cranes, a few per render, are seen
    about as often as the hundreds of cars."""
    negative_probability: float = 0.0
    """Chance to centre the crop on a mined hard negative (a place the model took for a vehicle
    where there is none), once some are mined."""
    saturation_jitter: float = 0.0
    """Colour saturation is multiplied by a factor in [1 - j, 1 + j] (sensors and processing differ)."""
    haze_probability: float = 0.0
    """Chance of a veil of haze (a blend towards a bluish grey of 5-35 %)."""
    blur_probability: float = 0.0
    """Chance of a Gaussian blur of 0.3-1.2 pixels (focus, motion, atmosphere)."""
    jpeg_probability: float = 0.0
    """Chance of JPEG compression at quality 25-85, as web map imagery is served."""


IGNORE_CLASS = "ignore"
"""Label class name that marks an ignore region rather than an object."""


def frames_from_labelled(images: Sequence[LabelledImage], class_map: dict[str, str],
                         classes: Sequence[str], gsd: float) -> list[TrainingFrame]:
    """Turn evaluation-reader images into training frames, keeping only mapped classes.

    Objects labelled ``difficult`` and boxes of class ``ignore`` become ignore regions.
    """
    frames = []
    for labelled in images:
        boxes, indices, ignore = [], [], []
        for obj in labelled.objects:
            if obj.class_name == IGNORE_CLASS or obj.difficult:
                ignore.append(obj.box)
                continue
            target = class_map.get(obj.class_name)
            if target is None or target not in classes:
                continue
            boxes.append(obj.box)
            indices.append(list(classes).index(target))
        image = Image.open(labelled.image_path).convert("RGB")
        frames.append(TrainingFrame(
            name=labelled.name,
            image=image,
            gsd=labelled.gsd if labelled.gsd is not None else gsd,
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            classes=np.asarray(indices, dtype=np.int64),
            ignore=np.asarray(ignore, dtype=np.float32).reshape(-1, 4),
        ))
    return frames


def with_weights(frames: Sequence[TrainingFrame], share: float) -> list[TrainingFrame]:
    """Frames weighted by ground area so that together they get ``share`` of the crops."""
    areas = np.array([f.image.width * f.image.height * f.gsd**2 for f in frames], dtype=np.float64)
    total = float(areas.sum()) or 1.0
    return [dataclasses.replace(f, weight=share * float(a) / total)
            for f, a in zip(frames, areas, strict=True)]


def gaussian_radius(width: float, height: float) -> float:
    """Heatmap spread for a box of this size in output cells: small boxes get sharp peaks."""
    return max(0.7, 0.16 * math.sqrt(width * height))


def encode_targets(boxes: np.ndarray, classes: np.ndarray, num_classes: int, size: int,
                   stride: int, max_objects: int, ignore: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """CenterNet targets for boxes given in crop pixels (x0, y0, x1, y1).

    ``weight`` (cells, cells) is 0 in cells whose centre lies in an ``ignore`` box and not on an
    object's peak: the loss neither rewards nor penalises the model there.
    """
    cells = size // stride
    heat = np.zeros((num_classes, cells, cells), np.float32)
    index = np.zeros(max_objects, np.int64)
    regression = np.zeros((max_objects, 4), np.float32)
    mask = np.zeros(max_objects, np.float32)
    weight = np.ones((cells, cells), np.float32)
    ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float32)
    if ignore is not None:
        for x0, y0, x1, y1 in ignore:
            centre_x, centre_y = (xs + 0.5) * stride, (ys + 0.5) * stride
            weight[(centre_x >= x0) & (centre_x < x1) & (centre_y >= y0) & (centre_y < y1)] = 0.0
    count = 0
    for (x0, y0, x1, y1), cls in zip(boxes, classes, strict=True):
        width, height = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
        if width < 2 or height < 2 or not (0 <= cx < cells and 0 <= cy < cells):
            continue
        ix, iy = int(cx), int(cy)
        sigma = gaussian_radius(width / stride, height / stride)
        blob = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
        np.maximum(heat[cls], blob, out=heat[cls])
        weight[iy, ix] = 1.0
        if count < max_objects:
            index[count] = iy * cells + ix
            regression[count] = (math.log(width), math.log(height), cx - ix, cy - iy)
            mask[count] = 1.0
            count += 1
    return {"heat": heat, "index": index, "regression": regression, "mask": mask, "weight": weight}


def rotate_boxes(boxes: np.ndarray, angle: float, centre: float) -> np.ndarray:
    """Axis-aligned boxes around the corners of ``boxes`` turned as PIL's ``rotate(angle)`` turns pixels.

    Exact for objects lying along the image axes (the KIT AIS street scene), whose box is the object.
    """
    return _boxes_of(_turn_points(_corners_of(np.asarray(boxes, np.float64)), angle, centre))


def _corners_of(boxes: np.ndarray) -> np.ndarray:
    """(N, 4, 2) corners of axis-aligned boxes."""
    return np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [2, 3]], boxes[:, [0, 3]]], axis=1)


def _boxes_of(corners: np.ndarray) -> np.ndarray:
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).reshape(-1, 4)


def _turn_points(corners: np.ndarray, angle: float, centre: float) -> np.ndarray:
    """Points turned as PIL's ``rotate(angle)`` turns pixels about (centre, centre)."""
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    xs, ys = corners[..., 0] - centre, corners[..., 1] - centre
    return np.stack([centre + xs * cos + ys * sin, centre - xs * sin + ys * cos], axis=-1)


class CropSampler:
    """Draws random augmented crops from frames at the model's GSD."""

    def __init__(self, frames: Sequence[TrainingFrame], *, model_gsd: float, crop: int,
                 augmentation: Augmentation, seed: int, compositor: Compositor | None = None) -> None:
        if not frames:
            raise ValueError("no training frames: check the dataset paths and hold-out list in the config")
        self.frames = list(frames)
        self.model_gsd = model_gsd
        self.crop = crop
        self.augmentation = augmentation
        self.compositor = compositor
        self.rng = np.random.default_rng(seed)
        weights = np.array([f.weight for f in self.frames], dtype=np.float64)
        self.weights = weights / weights.sum()
        labels = np.concatenate([f.classes for f in self.frames]) if self.frames else np.zeros(0, np.int64)
        frequency = np.bincount(labels, minlength=int(labels.max(initial=-1)) + 1).astype(np.float64)
        self.object_weights = [
            (1.0 / frequency[f.classes]) / (1.0 / frequency[f.classes]).sum() if len(f.classes) else None
            for f in self.frames
        ]
        self.negatives: list[tuple[int, float, float]] = []

    def set_negatives(self, anchors: Sequence[tuple[int, float, float]]) -> None:
        """Places (frame index, x, y in frame pixels) the model took for vehicles where there are none."""
        self.negatives = list(anchors)

    def sample(self) -> Crop:
        """One augmented crop with its boxes, classes and ignore boxes in crop pixels."""
        rng, aug = self.rng, self.augmentation
        index = int(rng.choice(len(self.frames), p=self.weights))
        centre: tuple[float, float] | None = None
        if self.negatives and aug.negative_probability > 0 and rng.random() < aug.negative_probability:
            index, nx, ny = self.negatives[int(rng.integers(len(self.negatives)))]
            centre = (nx, ny)
        frame = self.frames[index]
        gsd = self.model_gsd * rng.uniform(1 - aug.scale_jitter, 1 + aug.scale_jitter)
        factor = gsd / frame.gsd  # frame pixels per crop pixel
        turning = frame.rotatable and rng.random() < aug.rotate_probability
        angle = rng.uniform(0.0, 90.0) if turning else 0.0
        # Turned crops are cut from a larger square so that no corner is left empty.
        big = math.ceil(self.crop * 1.45) if angle else self.crop
        span = big * factor
        object_weights = self.object_weights[index]
        reach = self.crop * factor / 3
        if centre is None and object_weights is not None and aug.object_probability > 0 \
                and rng.random() < aug.object_probability:
            chosen = frame.boxes[int(rng.choice(len(object_weights), p=object_weights))]
            centre = ((chosen[0] + chosen[2]) / 2, (chosen[1] + chosen[3]) / 2)
        if centre is not None:
            # Centred within a third of the crop, so the object is not always in the middle.
            x0 = centre[0] + rng.uniform(-reach, reach) - span / 2
            y0 = centre[1] + rng.uniform(-reach, reach) - span / 2
        else:
            x0 = rng.uniform(-0.25 * span, max(frame.image.width - 0.75 * span, 0.0))
            y0 = rng.uniform(-0.25 * span, max(frame.image.height - 0.75 * span, 0.0))
        # PIL crops may leave the frame (filled black); resize boxes may not, so crop first.
        left, top = math.floor(x0), math.floor(y0)
        source = frame.image.crop((left, top, math.ceil(x0 + span) + 1, math.ceil(y0 + span) + 1))
        box = (x0 - left, y0 - top, x0 - left + span, y0 - top + span)
        patch = source.resize((big, big), Resampling.BILINEAR, box=box)
        origin = np.array([x0, y0], np.float32)
        corners = frame.corners if frame.corners is not None else _corners_of(frame.boxes)
        corners = (corners - origin) / factor
        ignore = (_corners_of(frame.ignore) - origin) / factor
        if angle:
            patch = patch.rotate(angle, resample=Resampling.BILINEAR, center=(big / 2, big / 2))
            margin = (big - self.crop) // 2
            corners = _turn_points(corners, angle, big / 2) - margin
            ignore = _turn_points(ignore, angle, big / 2) - margin
            patch = patch.crop((margin, margin, margin + self.crop, margin + self.crop))
        boxes, ignore_boxes = _boxes_of(corners), _boxes_of(ignore)
        pixels = np.asarray(patch, dtype=np.float32) / 255.0
        keep = self._visible(boxes)
        boxes, classes = boxes[keep], frame.classes[keep]
        if self.compositor is not None and self.compositor.active:
            pixels, boxes, classes = self.compositor.apply(np.array(pixels), gsd, boxes, classes,
                                                           ignore_boxes, rng)
        if rng.random() < aug.degrade_probability:
            pixels = self._degrade(pixels, gsd, rng.uniform(gsd, max(gsd, aug.degrade_max_gsd)))
        pixels, boxes, ignore_boxes = self._turn(pixels, boxes, ignore_boxes)
        pixels = self._radiometry(pixels)
        return Crop(pixels.transpose(2, 0, 1).copy(), boxes.astype(np.float32), classes, ignore_boxes)

    def _visible(self, boxes: np.ndarray) -> np.ndarray:
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2
        return (cx >= 0) & (cy >= 0) & (cx < self.crop) & (cy < self.crop)

    @staticmethod
    def _degrade(pixels: np.ndarray, gsd: float, coarse: float) -> np.ndarray:
        """As if imaged at ``coarse`` metres: averaged down, then bilinearly back up."""
        size = pixels.shape[0]
        small = max(8, round(size * gsd / coarse))
        image = Image.fromarray(np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8))
        image = image.resize((small, small), Resampling.BOX).resize((size, size), Resampling.BILINEAR)
        return np.asarray(image, dtype=np.float32) / 255.0

    def _turn(self, pixels: np.ndarray, boxes: np.ndarray, ignore: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = self.crop
        flip = self.rng.random() < 0.5
        turns = int(self.rng.integers(4))

        def move(b: np.ndarray) -> np.ndarray:
            b = b.reshape(-1, 4)
            if flip:
                b = np.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], axis=1)
            for _ in range(turns):
                # rotate 90 degrees counter-clockwise: (x, y) -> (y, size - x)
                b = np.stack([b[:, 1], size - b[:, 2], b[:, 3], size - b[:, 0]], axis=1)
            return b.reshape(-1, 4)

        if flip:
            pixels = pixels[:, ::-1]
        for _ in range(turns):
            pixels = np.rot90(pixels)
        return np.ascontiguousarray(pixels), move(boxes), move(ignore)

    def _radiometry(self, pixels: np.ndarray) -> np.ndarray:
        rng, aug = self.rng, self.augmentation
        jitter = aug.colour_jitter
        gain = (rng.uniform(1 - jitter, 1 + jitter) * rng.uniform(0.92, 1.08, size=3)).astype(np.float32)
        offset = np.float32(rng.uniform(-jitter, jitter) * 0.3)
        gamma = np.float32(rng.uniform(0.8, 1.25))
        pixels = np.clip(pixels, 0, 1, dtype=np.float32) ** gamma * gain + offset
        if aug.saturation_jitter > 0:
            grey = pixels.mean(axis=2, keepdims=True)
            amount = np.float32(rng.uniform(1 - aug.saturation_jitter, 1 + aug.saturation_jitter))
            pixels = grey + (pixels - grey) * amount
        if rng.random() < 0.2:
            pixels = pixels.mean(axis=2, keepdims=True).repeat(3, axis=2)
        if rng.random() < aug.haze_probability:
            veil = np.array([0.72, 0.76, 0.82], np.float32) * np.float32(rng.uniform(0.85, 1.1))
            amount = np.float32(rng.uniform(0.05, 0.35))
            pixels = pixels * (1 - amount) + veil * amount
        if rng.random() < aug.blur_probability:
            pixels = ndimage.gaussian_filter(pixels, (rng.uniform(0.3, 1.2),) * 2 + (0,))
        pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(aug.noise_std)
        pixels = np.clip(pixels, 0, 1)
        if rng.random() < aug.jpeg_probability:
            buffer = io.BytesIO()
            Image.fromarray((pixels * 255 + 0.5).astype(np.uint8)).save(
                buffer, format="JPEG", quality=int(rng.integers(25, 86)))
            buffer.seek(0)
            with Image.open(buffer) as decoded:
                pixels = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0
        return pixels.astype(np.float32, copy=False)
