"""Train the vehicle detector, export it to ONNX and write its model card.

One call (``sitewatch train detector CONFIG``) regenerates the shipped files from the
config and its seed: same data, same seed, same thread count give the same weights.
The operating score threshold is chosen on validation frames (never trained on; the
best car count), or without them on the training frames; never on the held-out frames,
which are only measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import queue
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from sitewatch.analytics.objects.onnx import ModelCard, OnnxDetector, file_sha256
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.detect import (
    LabelledImage,
    LabelledObject,
    PredictedObject,
    estimate_gsd,
    read_folder,
    score_detections,
)
from sitewatch.training.composite import Compositor
from sitewatch.training.config import DatasetSpec, DetectorTrainingConfig
from sitewatch.training.data import (
    IGNORE_CLASS,
    CropSampler,
    TrainingFrame,
    encode_targets,
    frames_from_labelled,
    with_weights,
)
from sitewatch.training.model import STRIDE, CenterNetLite, parameter_count
from sitewatch.training.mosaic import read_tile_mosaics
from sitewatch.training.quantize import calibration_crops, quantize_detector
from sitewatch.training.schedule import deterministic, optimisation_step, smoothed, warmup_cosine
from sitewatch.training.simulated import SIMULATED_PREFIX, simulated_frames
from sitewatch.training.sprites import REAL_SPRITE_SIZES, drawn_sprites, real_car_sprites
from sitewatch.training.weights import save_weights, state_arrays, weights_path

log = logging.getLogger(__name__)

CREDIT = (
    "KIT AIS Data Set, Institute of Photogrammetry and Remote Sensing, Karlsruhe Institute of Technology, "
    "CC-BY 3.0 (boxes by Yauhen Kharuzhy, github.com/jekhor/aerial-cars-dataset; boxes missing from them "
    "added by the sitewatch project)",
)
MOSAIC_CREDIT = (
    "Drone imagery of Kampala: OpenAerialMap contributors (Open Imagery Network), CC-BY 4.0, via "
    "github.com/hotosm/fAIr-utilities; vehicle boxes drawn by the sitewatch project",
)


@dataclass(frozen=True, slots=True)
class TrainingResult:
    onnx_path: Path
    card_path: Path
    sha256: str
    parameters: int
    seconds: float
    holdout: dict[str, object]


@dataclass(frozen=True, slots=True)
class _Split:
    """Labelled frames of the config's folders: training frames per folder, validation, held out."""

    training: tuple[tuple[DatasetSpec, list[LabelledImage]], ...]
    validation: list[LabelledImage]
    holdout: list[LabelledImage]

    @property
    def training_images(self) -> list[LabelledImage]:
        return [image for _, images in self.training for image in images]


def _split(config: DetectorTrainingConfig) -> _Split:
    """Training, validation and held-out frames. Where a folder's GSD is estimated from its car
    boxes, each group gets its own estimate, as ``sitewatch eval detect`` on that group would
    (from the published labels: boxes added by ``extra_labels`` go to training frames only)."""
    training, validation, holdout = [], [], []
    for spec in config.datasets:
        _, images = read_folder(spec.path, gsd=spec.gsd, fmt=spec.format)
        split: tuple[list[LabelledImage], ...] = ([], [], [])
        for image in images:
            group = 1 if image.name in spec.validation else 2 if image.name in spec.holdout else 0
            split[group].append(image)
        estimated = []
        for found in split:
            if found and all(i.gsd_source == "estimated" for i in found):
                own = estimate_gsd(found)
                found = [dataclasses.replace(i, gsd=own) for i in found] if own is not None else found
            estimated.append(found)
        training.append((spec, _with_extra_labels(estimated[0], spec)))
        validation.extend(estimated[1])
        holdout.extend(estimated[2])
    return _Split(tuple(training), validation, holdout)


def _with_extra_labels(images: list[LabelledImage], spec: DatasetSpec) -> list[LabelledImage]:
    """The folder's images with the boxes of ``spec.extra_labels`` added (frame -> class -> boxes)."""
    if spec.extra_labels is None:
        return images
    try:
        extra = yaml.safe_load(spec.extra_labels.read_text(encoding="utf-8")) or {}
        added = {str(frame): {str(c): [tuple(float(v) for v in box) for box in boxes]
                              for c, boxes in dict(by_class).items()}
                 for frame, by_class in dict(extra).items()}
    except (OSError, yaml.YAMLError, TypeError, ValueError) as error:
        raise UnsupportedInputError(
            f"extra labels {spec.extra_labels}: {error}; write 'FRAME: {{CLASS: [[x0, y0, x1, y1], ...]}}'"
        ) from None
    unknown = sorted(set(added) - {i.name for i in images} - set(spec.validation) - set(spec.holdout))
    if unknown:
        raise UnsupportedInputError(f"extra labels {spec.extra_labels}: no frame named {', '.join(unknown)} "
                                    f"in {spec.path}")
    out = []
    for image in images:
        objects = list(image.objects)
        for class_name, boxes in added.get(image.name, {}).items():
            for box in boxes:
                if len(box) != 4:
                    raise UnsupportedInputError(
                        f"extra labels {spec.extra_labels}: {image.name} {class_name} box {list(box)} is not "
                        "[x0, y0, x1, y1]")
                objects.append(LabelledObject(class_name, (box[0], box[1], box[2], box[3]),
                                              difficult=class_name == IGNORE_CLASS))
        out.append(dataclasses.replace(image, objects=tuple(objects)))
    return out


def focal_loss(logits: torch.Tensor, target: torch.Tensor,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of objects.

    ``weight`` (N, h, w) scales the negative term per cell: 0 in ignore regions.
    """
    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    negative = 1 - positive
    if weight is not None:
        negative = negative * weight.unsqueeze(1)
    pos_loss = torch.log(prob) * (1 - prob) ** 2 * positive
    neg_loss = torch.log(1 - prob) * prob**2 * (1 - target) ** 4 * negative
    count = positive.sum().clamp(min=1)
    return -(pos_loss.sum() + neg_loss.sum()) / count


def _batch(sampler: CropSampler, config: DetectorTrainingConfig) -> dict[str, torch.Tensor]:
    images, targets = [], []
    for _ in range(config.batch):
        crop = sampler.sample()
        images.append(crop.pixels)
        targets.append(encode_targets(crop.boxes, crop.classes, len(config.classes), config.crop, STRIDE,
                                      config.max_objects, crop.ignore))
    batch = {key: torch.from_numpy(np.stack([t[key] for t in targets])) for key in targets[0]}
    batch["image"] = torch.from_numpy(np.stack(images))
    return batch


class _Batches:
    """Training batches made in a thread while the model trains on the previous one.

    Composing crops is single-threaded numpy and PIL work, about as long as a training step on one
    core: doing both at once nearly halves the time on two cores. The thread draws the batches in
    step order from the one sampler, and waits before the batch of each step in ``pause_at`` until
    the main thread has mined hard negatives and called :meth:`release`, so the same config and
    seed give the same batches whatever the timing.
    """

    def __init__(self, sampler: CropSampler, config: DetectorTrainingConfig, pause_at: set[int]) -> None:
        self._sampler, self._config = sampler, config
        self._queue: queue.Queue[dict[str, torch.Tensor] | BaseException] = queue.Queue(maxsize=2)
        self._resume = {step: threading.Event() for step in pause_at}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sitewatch-batches", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for step in range(self._config.steps):
                if step in self._resume:
                    self._resume[step].wait()
                if self._stop.is_set():
                    return
                self._queue.put(_batch(self._sampler, self._config))
        except BaseException as error:  # handed to the main thread, which raises it
            self._queue.put(error)

    def next(self) -> dict[str, torch.Tensor]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def release(self, step: int) -> None:
        self._resume[step].set()

    def close(self) -> None:
        self._stop.set()
        for event in self._resume.values():
            event.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a thread waiting to put a batch
                self._queue.get(timeout=0.1)


def _loss(model: CenterNetLite, batch: dict[str, torch.Tensor],
          heat_classes: Sequence[int] | None = None) -> torch.Tensor:
    """Heatmap focal loss (of ``heat_classes`` only, when given: fine-tuning leaves the heatmaps of
    classes the user did not label alone) plus the box loss of every labelled object."""
    logits, box = model.raw(batch["image"])
    if heat_classes is not None:
        chosen = list(heat_classes)
        heat_loss = focal_loss(logits[:, chosen], batch["heat"][:, chosen], batch.get("weight"))
    else:
        heat_loss = focal_loss(logits, batch["heat"], batch.get("weight"))
    n, channels = box.shape[:2]
    flat = box.view(n, channels, -1).permute(0, 2, 1)  # (N, cells, 4)
    picked = torch.gather(flat, 1, batch["index"].unsqueeze(-1).expand(-1, -1, channels))
    mask = batch["mask"].unsqueeze(-1)
    target = batch["regression"]
    predicted = torch.cat([picked[..., :2], torch.sigmoid(picked[..., 2:])], dim=-1)
    weights = torch.tensor([1.0, 1.0, 1.0, 1.0])
    box_loss = (torch.abs(predicted - target) * mask * weights).sum() / mask.sum().clamp(min=1)
    return heat_loss + box_loss


def export_onnx(model: CenterNetLite, path: Path, opset: int = 17) -> None:
    """Export with dynamic batch and size; outputs peaks, size, offset (see CenterNetLite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    example = torch.zeros(1, 3, 256, 256)
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose: it needs no onnxscript and gives a plain,
        # deterministic graph for this small convolutional model; torch warns that it is legacy.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            model, (example,), str(path),
            input_names=["image"], output_names=["peaks", "size", "offset"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
            opset_version=opset, dynamo=False,
        )


def _predict_with(detector: OnnxDetector) -> Callable[[LabelledImage], list[PredictedObject]]:
    def predict(image: LabelledImage) -> list[PredictedObject]:
        with Image.open(image.image_path) as opened:
            return _predict_pixels(detector, opened.convert("RGB"), image.gsd)

    return predict


def _predict_pixels(detector: OnnxDetector, image: Image.Image, gsd: float | None) -> list[PredictedObject]:
    pixels = np.asarray(image).transpose(2, 0, 1)
    boxes = detector.detect(pixels, gsd if gsd is not None else detector.info.model_gsd, score_threshold=0.05)
    return [PredictedObject(b.class_name, b.score, (b.x0, b.y0, b.x1, b.y1)) for b in boxes]


def _simulated_labelled(detector: OnnxDetector, frames: list[TrainingFrame], classes: tuple[str, ...]
                        ) -> tuple[list[LabelledImage], list[list[PredictedObject]]]:
    """Simulator renders as labelled images, with the detector's candidates on each."""
    images = [
        LabelledImage(frame.name, Path(frame.name), tuple(
            LabelledObject(classes[int(c)], (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
            for b, c in zip(frame.boxes, frame.classes, strict=True)
        ), frame.gsd, "simulator")
        for frame in frames
    ]
    return images, [_predict_pixels(detector, frame.image, frame.gsd) for frame in frames]


@dataclass(frozen=True, slots=True)
class _CarScore:
    threshold: float
    precision: float
    f1: float
    count_error: float
    """Mean relative count error per image; inf where there is none to compute."""


def _car_scores(images: list[LabelledImage], predictions: list[list[PredictedObject]],
                classes: tuple[str, ...]) -> list[_CarScore]:
    """Car precision, F1 and count error at each candidate threshold 0.10, 0.12, ... 0.78."""
    found = []
    for threshold in np.arange(0.1, 0.8, 0.02):
        scores, _ = score_detections(images, predictions, classes[:1], float(threshold))
        precision, recall = scores[0].precision or 0.0, scores[0].recall or 0.0
        error = scores[0].mean_rel_count_error
        found.append(_CarScore(round(float(threshold), 2), precision,
                               2 * precision * recall / max(precision + recall, 1e-9),
                               math.inf if error is None else round(error, 6)))
    return found


def count_threshold(images: list[LabelledImage], predictions: list[list[PredictedObject]],
                    classes: tuple[str, ...]) -> float:
    """Operating threshold from validation frames (never trained on): the smallest mean relative
    car count error, ties going to the better F1. Counts are what the indicators use."""
    scores = _car_scores(images, predictions, classes)
    return min(scores, key=lambda s: (s.count_error, -s.f1)).threshold if scores else 0.3


TRAINING_PRECISION_FLOOR = 0.9
"""Without validation frames, the operating threshold is the lowest score at which car precision
on the training frames is still at least this (see :func:`choose_threshold`)."""


def choose_threshold(images: list[LabelledImage], predictions: list[list[PredictedObject]],
                     classes: tuple[str, ...], *, precision_floor: float = TRAINING_PRECISION_FLOOR) -> float:
    """Operating score threshold from the (training) images: the lowest with car precision >= the floor.

    Used only when the config names no validation frames (see :func:`count_threshold`). On
    frames it was trained on the detector is surer of itself than on a new scene, so the
    threshold with the best F1 there is too high elsewhere; the lowest threshold that keeps
    training precision at the floor leaves some margin. Falls back to the best-F1 threshold
    when no threshold reaches the floor.
    """
    scores = _car_scores(images, predictions, classes)
    precise = [s.threshold for s in scores if s.precision >= precision_floor]
    return precise[0] if precise else max(scores, key=lambda s: s.f1).threshold


def _summarise(images: list[LabelledImage], predictions: list[list[PredictedObject]],
               classes: tuple[str, ...], threshold: float | dict[str, float]) -> dict[str, object]:
    present = [c for c in classes if any(o.class_name == c for i in images for o in i.objects)]
    scores, _ = score_detections(images, predictions, present, threshold)
    return {
        "frames": [i.name for i in images],
        **{
            s.class_name: {
                "ap50": s.ap50, "precision": s.precision, "recall": s.recall,
                "mean_abs_count_error": s.mean_abs_count_error,
                "mean_rel_count_error": s.mean_rel_count_error, "ground_truth": s.ground_truth,
            }
            for s in scores
        },
    }


def class_thresholds(images: list[LabelledImage], predictions: list[list[PredictedObject]],
                     classes: tuple[str, ...], *, real_classes: tuple[str, ...] = ("car",),
                     simulated: tuple[list[LabelledImage], list[list[PredictedObject]]] | None = None,
                     fallback: float) -> dict[str, float]:
    """Operating threshold per class, each chosen on validation frames never trained on.

    The rule (fixed before any test figure was seen): a class's threshold is the one with the
    smallest mean relative count error of that class (ties: better F1), on the real validation
    frames for ``real_classes`` and on the real validation frames holding the class plus the
    simulated validation renders for the others; a class found in none of them gets the car's
    threshold, or ``fallback`` when there is none. (Renders overstate how sure the model is of
    real trucks: docs/detector.md says what that does to their counts on real imagery.)
    """
    chosen: dict[str, float] = {}
    for class_name in classes:
        pool_images, pool_predictions = [], []
        for image, found in zip(images, predictions, strict=True):
            if any(o.class_name == class_name for o in image.objects):
                pool_images.append(image)
                pool_predictions.append(found)
        if class_name not in real_classes and simulated is not None:
            for image, found in zip(*simulated, strict=True):
                if any(o.class_name == class_name for o in image.objects):
                    pool_images.append(image)
                    pool_predictions.append(found)
        if pool_images:
            chosen[class_name] = count_threshold(pool_images, pool_predictions, (class_name,))
    base = chosen.get("car", fallback)
    return {c: chosen.get(c, base) for c in classes}


def mine_negatives(model: CenterNetLite, frames: list[TrainingFrame], *, model_gsd: float, threshold: float,
                   margin: float = 1.5, tile: int = 768) -> list[tuple[int, float, float]]:
    """Places where the model finds a vehicle that no label or ignore region explains.

    Each frame is resampled to the model's GSD and run in tiles; peaks at or above ``threshold``
    whose centre lies farther than ``margin`` metres outside every labelled and ignore box are
    returned as (frame index, x, y) in frame pixels: the roofs, markings and bushes the model
    takes for vehicles, to be shown to it again.
    """
    anchors: list[tuple[int, float, float]] = []
    model.eval()
    try:
        with torch.no_grad():
            for index, frame in enumerate(frames):
                scale = frame.gsd / model_gsd  # model pixels per frame pixel
                width = max(16, round(frame.image.width * scale))
                height = max(16, round(frame.image.height * scale))
                resampled = frame.image.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(resampled, np.float32).transpose(2, 0, 1) / 255.0
                known = np.concatenate([frame.boxes, frame.ignore]).reshape(-1, 4)
                pad = margin / frame.gsd
                for top in range(0, height, tile):
                    for left in range(0, width, tile):
                        part = pixels[:, top:top + tile, left:left + tile]
                        rows, cols = -(-part.shape[1] // 16) * 16, -(-part.shape[2] // 16) * 16
                        padded = np.zeros((1, 3, rows, cols), np.float32)
                        padded[0, :, :part.shape[1], :part.shape[2]] = part
                        peaks, _, offset = model(torch.from_numpy(padded))
                        peak = peaks[0].max(dim=0).values.numpy()
                        iy, ix = np.nonzero(peak >= threshold)
                        for y, x in zip(iy, ix, strict=True):
                            cx = ((x + float(offset[0, 0, y, x])) * STRIDE + left) / scale
                            cy = ((y + float(offset[0, 1, y, x])) * STRIDE + top) / scale
                            if cx >= frame.image.width or cy >= frame.image.height:
                                continue
                            inside = ((known[:, 0] - pad <= cx) & (cx <= known[:, 2] + pad)
                                      & (known[:, 1] - pad <= cy) & (cy <= known[:, 3] + pad))
                            if not inside.any():
                                anchors.append((index, float(cx), float(cy)))
    finally:
        model.train()
    return anchors


def _training_frames(config: DetectorTrainingConfig, split: _Split) -> list[TrainingFrame]:
    """Every training frame weighted by its source's share of the crops."""
    class_map = {c: c for c in config.classes}
    sources: list[tuple[list[TrainingFrame], float | None]] = []
    for spec, images in split.training:
        if images:
            found = frames_from_labelled(images, class_map, config.classes, gsd=config.model_gsd)
            sources.append((found, spec.share))
    for mosaic in config.mosaics:
        sources.append((read_tile_mosaics(mosaic.path, zoom=mosaic.zoom, labels=mosaic.labels,
                                          classes=config.classes), mosaic.share))
    if config.simulated is not None:
        sources.append((simulated_frames(config.simulated, config.classes), config.simulated_share))
    fixed = sum(share for _, share in sources if share is not None)
    open_sources = [frames for frames, share in sources if share is None]
    left = max(0.0, 1.0 - fixed)
    frames: list[TrainingFrame] = []
    for found, share in sources:
        frames += with_weights(found, share if share is not None else left / max(len(open_sources), 1))
    return frames


def _compositor(config: DetectorTrainingConfig, frames: list[TrainingFrame]) -> Compositor | None:
    settings = config.composite
    if max(settings.vehicle_probability, settings.marking_probability, settings.clutter_probability,
           settings.building_shadow_probability) <= 0:
        return None
    real = [f for f in frames if not f.name.startswith(SIMULATED_PREFIX)]
    cut = {name: real_car_sprites(real, config.classes.index(name), length_range=lengths, class_name=name,
                                  height=height)
           for name, (lengths, height) in REAL_SPRITE_SIZES.items() if name in config.classes}
    drawn = drawn_sprites(np.random.default_rng(config.seed + 11), config.sprites.drawn_cars,
                          config.sprites.drawn_large)
    log.info("sprites: %s real, %d drawn", {k: len(v) for k, v in cut.items()}, len(drawn))
    return Compositor(settings, config.classes, real_cars=cut.get("car", []),
                      drawn_cars=[s for s in drawn if s.class_name == "car"],
                      large=cut.get("large_vehicle", []) + [s for s in drawn if s.class_name != "car"],
                      finest_gsd=config.model_gsd * (1 - config.augmentation.scale_jitter))


def train_detector(config: DetectorTrainingConfig,
                   progress: Callable[[int, float], None] | None = None) -> TrainingResult:
    """Train, export, pick the thresholds on validation frames, measure held-out frames, write the card."""
    started = time.monotonic()
    # One core composes the next batch (see _Batches), the others train.
    deterministic(config.seed, max(1, config.threads - 1))
    split = _split(config)
    frames = _training_frames(config, split)
    sampler = CropSampler(frames, model_gsd=config.model_gsd, crop=config.crop,
                          augmentation=config.augmentation, seed=config.seed,
                          compositor=_compositor(config, frames))
    model = CenterNetLite(len(config.classes), width=config.width, light=config.light)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = warmup_cosine(optimiser, config.steps, config.steps // 20)
    mining_steps = {round(fraction * config.steps) for fraction in config.mining.at}
    mined: dict[str, int] = {}
    model.train()
    running = 0.0
    batches = _Batches(sampler, config, mining_steps)
    try:
        for step in range(config.steps):
            if step in mining_steps:
                # Real frames only: their roofs, markings, furniture and plants are what fools the model.
                real = [i for i, f in enumerate(frames) if not f.name.startswith(SIMULATED_PREFIX)]
                anchors = [(real[i], x, y) for i, x, y in mine_negatives(
                    model, [frames[i] for i in real], model_gsd=config.model_gsd,
                    threshold=config.mining.threshold)]
                sampler.set_negatives(anchors)
                mined[str(step)] = len(anchors)
                log.info("step %d: %d hard negatives mined", step, len(anchors))
                batches.release(step)
            loss = _loss(model, batches.next())
            value = optimisation_step(model, optimiser, schedule, loss, clip_norm=10.0)
            running = smoothed(running, value, step)
            if progress is not None and (step % 50 == 0 or step == config.steps - 1):
                progress(step, running)
    finally:
        batches.close()

    onnx_path = config.output
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    if config.precision == "int8":
        with tempfile.TemporaryDirectory(prefix="sitewatch-export-") as scratch:
            float_path = Path(scratch) / "float32.onnx"  # never left beside the shipped model
            export_onnx(model, float_path)
            crops = calibration_crops(frames, model_gsd=config.model_gsd, seed=config.seed)
            quantize_detector(float_path, onnx_path, crops)
    else:
        export_onnx(model, onnx_path)
    sha256 = file_sha256(onnx_path)
    weights = weights_path(onnx_path)  # float weights to fine-tune from (the ONNX file folds BatchNorm)
    card = ModelCard(
        name=config.name, version=config.version, onnx_file=onnx_path.name, sha256=sha256,
        classes=config.classes, bands=("red", "green", "blue"), model_gsd=config.model_gsd,
        gsd_range=config.gsd_range, stride=STRIDE, input_multiple=16, score_threshold=0.3,
        tile=config.tile, overlap=config.overlap, merge_classes=config.merge_classes,
        architecture={"model": "CenterNetLite", "width": config.width,
                      **({"light": True} if config.light else {})}, weights_file=weights.name,
        weights_sha256=save_weights(weights, state_arrays(model)),
    )
    card, holdout, holdout_simulated = measured_card(
        config, split, card,
        training={"config": config.raw, "parameters": parameter_count(model),
                  "frames": [f.name for f in frames], "torch": torch.__version__,
                  "hard_negatives_mined": mined, "seconds": round(time.monotonic() - started, 1)})
    card_path = onnx_path.with_suffix(".json")
    card_path.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return TrainingResult(onnx_path, card_path, sha256, parameter_count(model),
                          time.monotonic() - started, {"real": holdout, "simulated": holdout_simulated})


def measured_card(config: DetectorTrainingConfig, split: _Split, card: ModelCard, *,
                  training: dict[str, object]) -> tuple[ModelCard, dict[str, object], dict[str, object]]:
    """The card of the exported model ``card`` describes, with its operating thresholds chosen on the
    validation frames and renders (:func:`class_thresholds`) and its scores on every frame group;
    returns it with the real and simulated held-out scores. Depends only on the model file, the
    config and the frames, so it can be re-measured without training again."""
    onnx_path = config.output.parent / card.onnx_file
    train_images, validation_images, held_images = split.training_images, split.validation, split.holdout
    detector = OnnxDetector(onnx_path, card, threads=config.threads)
    predict = _predict_with(detector)
    train_predictions = [predict(i) for i in train_images]
    validation_predictions = [predict(i) for i in validation_images]
    simulated_validation = None
    if config.simulated_validation is not None:
        simulated_validation = _simulated_labelled(detector, simulated_frames(config.simulated_validation,
                                                                              config.classes), config.classes)
    if validation_images or simulated_validation is not None:
        fallback = choose_threshold(train_images, train_predictions, config.classes) if train_images else 0.3
        thresholds = class_thresholds(validation_images, validation_predictions, config.classes,
                                      simulated=simulated_validation, fallback=fallback)
    else:
        single = choose_threshold(train_images, train_predictions, config.classes)
        thresholds = {c: single for c in config.classes}
    threshold = thresholds.get("car", min(thresholds.values()))
    validation = (_summarise(validation_images, validation_predictions, config.classes, thresholds)
                  if validation_images else {})
    held_predictions = [predict(i) for i in held_images]
    holdout = _summarise(held_images, held_predictions, config.classes, thresholds) if held_images else {}
    holdout_simulated: dict[str, object] = {}
    if config.simulated_holdout is not None:
        held_frames = simulated_frames(config.simulated_holdout, config.classes)
        images, predictions = _simulated_labelled(detector, held_frames, config.classes)
        holdout_simulated = _summarise(images, predictions, config.classes, thresholds)
    real_classes = tuple(c for c in config.classes
                         if any(o.class_name == c for i in held_images for o in i.objects))
    card = dataclasses.replace(
        card, score_threshold=threshold,
        class_thresholds=tuple((c, round(float(t), 2)) for c, t in thresholds.items() if c in config.classes),
        validated_on_real=real_classes,
        data_credit=CREDIT + (MOSAIC_CREDIT if config.mosaics else ()),
        training=training,
        metrics={"holdout": holdout, "validation": validation, "holdout_simulated": holdout_simulated,
                 "train": _summarise(train_images, train_predictions, config.classes, thresholds)},
    )
    return card, holdout, holdout_simulated

