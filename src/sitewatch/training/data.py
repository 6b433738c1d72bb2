"""Training samples for the vehicle detector: labelled frames, random crops, targets.

Frames come from YOLO-format folders (KIT AIS) read with the evaluation readers, so the
labels the model learns from are parsed by the same code that scores it. Each sample is a
crop resampled to the model's ground sample distance with a random scale, optional
degradation to a coarser GSD (sites are watched at 0.5 m), flips, 90-degree turns and
radiometric jitter, encoded as CenterNet targets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sitewatch.evaluation.detect import LabelledImage

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


def frames_from_labelled(images: Sequence[LabelledImage], class_map: dict[str, str],
                         classes: Sequence[str], gsd: float) -> list[TrainingFrame]:
    """Turn evaluation-reader images into training frames, keeping only mapped classes."""
    frames = []
    for labelled in images:
        boxes, indices = [], []
        for obj in labelled.objects:
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
        ))
    return frames


def with_weights(frames: Sequence[TrainingFrame], share: float) -> list[TrainingFrame]:
    """Frames weighted by ground area so that together they get ``share`` of the crops."""
    areas = np.array([f.image.width * f.image.height * f.gsd**2 for f in frames], dtype=np.float64)
    total = float(areas.sum()) or 1.0
    return [
        TrainingFrame(f.name, f.image, f.gsd, f.boxes, f.classes, share * float(a) / total)
        for f, a in zip(frames, areas, strict=True)
    ]


def gaussian_radius(width: float, height: float) -> float:
    """Heatmap spread for a box of this size in output cells: small boxes get sharp peaks."""
    return max(0.7, 0.16 * math.sqrt(width * height))


def encode_targets(boxes: np.ndarray, classes: np.ndarray, num_classes: int, size: int,
                   stride: int, max_objects: int) -> dict[str, np.ndarray]:
    """CenterNet targets for boxes given in crop pixels (x0, y0, x1, y1)."""
    cells = size // stride
    heat = np.zeros((num_classes, cells, cells), np.float32)
    index = np.zeros(max_objects, np.int64)
    regression = np.zeros((max_objects, 4), np.float32)
    mask = np.zeros(max_objects, np.float32)
    ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float32)
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
        if count < max_objects:
            index[count] = iy * cells + ix
            regression[count] = (math.log(width), math.log(height), cx - ix, cy - iy)
            mask[count] = 1.0
            count += 1
    return {"heat": heat, "index": index, "regression": regression, "mask": mask}


def rotate_boxes(boxes: np.ndarray, angle: float, centre: float) -> np.ndarray:
    """Axis-aligned boxes around the corners of ``boxes`` turned as PIL's ``rotate(angle)`` turns pixels.

    Exact for the KIT AIS street scene, whose cars lie along the image axes, so the box is the car.
    """
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    xs = boxes[:, [0, 2, 2, 0]] - centre
    ys = boxes[:, [1, 1, 3, 3]] - centre
    turned_x = centre + xs * cos + ys * sin
    turned_y = centre - xs * sin + ys * cos
    return np.stack([turned_x.min(1), turned_y.min(1), turned_x.max(1), turned_y.max(1)], axis=1)


class CropSampler:
    """Draws random augmented crops from frames at the model's GSD."""

    def __init__(self, frames: Sequence[TrainingFrame], *, model_gsd: float, crop: int,
                 augmentation: Augmentation, seed: int) -> None:
        if not frames:
            raise ValueError("no training frames: check the dataset paths and hold-out list in the config")
        self.frames = list(frames)
        self.model_gsd = model_gsd
        self.crop = crop
        self.augmentation = augmentation
        self.rng = np.random.default_rng(seed)
        weights = np.array([f.weight for f in self.frames], dtype=np.float64)
        self.weights = weights / weights.sum()
        labels = np.concatenate([f.classes for f in self.frames]) if self.frames else np.zeros(0, np.int64)
        frequency = np.bincount(labels, minlength=int(labels.max(initial=-1)) + 1).astype(np.float64)
        self.object_weights = [
            (1.0 / frequency[f.classes]) / (1.0 / frequency[f.classes]).sum() if len(f.classes) else None
            for f in self.frames
        ]

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One crop: image (3, S, S) float 0..1, boxes (N, 4) in crop pixels, classes (N,)."""
        rng, aug = self.rng, self.augmentation
        index = int(rng.choice(len(self.frames), p=self.weights))
        frame = self.frames[index]
        gsd = self.model_gsd * rng.uniform(1 - aug.scale_jitter, 1 + aug.scale_jitter)
        factor = gsd / frame.gsd  # frame pixels per crop pixel
        angle = rng.uniform(0.0, 90.0) if rng.random() < aug.rotate_probability else 0.0
        # Rotated crops are cut from a larger square so that no corner is left empty.
        big = math.ceil(self.crop * 1.45) if angle else self.crop
        span = big * factor
        object_weights = self.object_weights[index]
        chance = aug.object_probability
        if object_weights is not None and chance > 0 and rng.random() < chance:
            chosen = frame.boxes[int(rng.choice(len(object_weights), p=object_weights))]
            # Centred on the object within a third of the crop, so it is not always in the middle.
            reach = self.crop * factor / 3
            x0 = (chosen[0] + chosen[2]) / 2 + rng.uniform(-reach, reach) - span / 2
            y0 = (chosen[1] + chosen[3]) / 2 + rng.uniform(-reach, reach) - span / 2
        else:
            x0 = rng.uniform(-0.25 * span, max(frame.image.width - 0.75 * span, 0.0))
            y0 = rng.uniform(-0.25 * span, max(frame.image.height - 0.75 * span, 0.0))
        # PIL crops may leave the frame (filled black); resize boxes may not, so crop first.
        left, top = math.floor(x0), math.floor(y0)
        source = frame.image.crop((left, top, math.ceil(x0 + span) + 1, math.ceil(y0 + span) + 1))
        box = (x0 - left, y0 - top, x0 - left + span, y0 - top + span)
        if rng.random() < aug.degrade_probability:
            coarse = rng.uniform(gsd, max(gsd, aug.degrade_max_gsd))
            small = max(8, round(big * gsd / coarse))
            patch = source.resize((small, small), Resampling.BOX, box=box)
            patch = patch.resize((big, big), Resampling.BILINEAR)
        else:
            patch = source.resize((big, big), Resampling.BILINEAR, box=box)
        boxes = (frame.boxes - np.array([x0, y0, x0, y0], np.float32)) / factor
        if angle:
            patch = patch.rotate(angle, resample=Resampling.BILINEAR, center=(big / 2, big / 2))
            boxes = rotate_boxes(boxes, angle, big / 2)
            margin = (big - self.crop) // 2
            patch = patch.crop((margin, margin, margin + self.crop, margin + self.crop))
            boxes = boxes - margin
        pixels = np.asarray(patch, dtype=np.float32) / 255.0
        keep = self._visible(boxes)
        boxes, classes = boxes[keep], frame.classes[keep]
        pixels, boxes = self._turn(pixels, boxes)
        pixels = self._radiometry(pixels)
        return pixels.transpose(2, 0, 1).copy(), boxes, classes

    def _visible(self, boxes: np.ndarray) -> np.ndarray:
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2
        return (cx >= 0) & (cy >= 0) & (cx < self.crop) & (cy < self.crop)

    def _turn(self, pixels: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        size = self.crop
        if self.rng.random() < 0.5:
            pixels = pixels[:, ::-1]
            boxes = np.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], axis=1)
        for _ in range(int(self.rng.integers(4))):
            # rotate 90 degrees counter-clockwise: (x, y) -> (y, size - x)
            pixels = np.rot90(pixels)
            boxes = np.stack([boxes[:, 1], size - boxes[:, 2], boxes[:, 3], size - boxes[:, 0]], axis=1)
        return np.ascontiguousarray(pixels), boxes.reshape(-1, 4)

    def _radiometry(self, pixels: np.ndarray) -> np.ndarray:
        rng, jitter = self.rng, self.augmentation.colour_jitter
        gain = rng.uniform(1 - jitter, 1 + jitter) * rng.uniform(0.92, 1.08, size=3)
        offset = rng.uniform(-jitter, jitter) * 0.3
        gamma = rng.uniform(0.8, 1.25)
        pixels = np.clip(pixels, 0, 1) ** gamma * gain + offset
        if rng.random() < 0.2:
            pixels = pixels.mean(axis=2, keepdims=True).repeat(3, axis=2)
        pixels = pixels + rng.normal(0, self.augmentation.noise_std, pixels.shape)
        return np.clip(pixels, 0, 1).astype(np.float32)
