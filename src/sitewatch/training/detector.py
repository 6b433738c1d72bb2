"""Train the vehicle detector, export it to ONNX and write its model card.

One call (``sitewatch train detector CONFIG``) regenerates the shipped files from the
config and its seed: same data, same seed, same thread count give the same weights.
The operating score threshold is chosen on validation frames (never trained on; the
best car count), or without them on the training frames; never on the held-out frames,
which are only measured.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from sitewatch.analytics.objects.onnx import ModelCard, OnnxDetector, file_sha256
from sitewatch.evaluation.detect import (
    LabelledImage,
    LabelledObject,
    PredictedObject,
    estimate_gsd,
    read_folder,
    score_detections,
)
from sitewatch.training.config import DetectorTrainingConfig
from sitewatch.training.data import (
    CropSampler,
    TrainingFrame,
    encode_targets,
    frames_from_labelled,
    with_weights,
)
from sitewatch.training.model import STRIDE, CenterNetLite, parameter_count
from sitewatch.training.quantize import calibration_crops, quantize_detector
from sitewatch.training.schedule import warmup_cosine
from sitewatch.training.simulated import simulated_frames
from sitewatch.training.weights import save_weights, state_arrays, weights_path

log = logging.getLogger(__name__)

CREDIT = (
    "KIT AIS Data Set, Institute of Photogrammetry and Remote Sensing, Karlsruhe Institute of Technology, "
    "CC-BY 3.0 (boxes by Yauhen Kharuzhy, github.com/jekhor/aerial-cars-dataset)",
)


@dataclass(frozen=True, slots=True)
class TrainingResult:
    onnx_path: Path
    card_path: Path
    sha256: str
    parameters: int
    seconds: float
    holdout: dict[str, object]


def _split(config: DetectorTrainingConfig) -> tuple[list[LabelledImage], list[LabelledImage],
                                                    list[LabelledImage]]:
    """Training, validation and held-out frames. Where a folder's GSD is estimated from its car
    boxes, each group gets its own estimate, as ``sitewatch eval detect`` on that group would."""
    groups: tuple[list[LabelledImage], list[LabelledImage], list[LabelledImage]] = ([], [], [])
    for spec in config.datasets:
        _, images = read_folder(spec.path, gsd=spec.gsd, fmt=spec.format)
        split: tuple[list[LabelledImage], ...] = ([], [], [])
        for image in images:
            group = 1 if image.name in spec.validation else 2 if image.name in spec.holdout else 0
            split[group].append(image)
        for images_of_group, found in zip(groups, split, strict=True):
            if found and all(i.gsd_source == "estimated" for i in found):
                own = estimate_gsd(found)
                found = [dataclasses.replace(i, gsd=own) for i in found] if own is not None else found
            images_of_group.extend(found)
    return groups


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of objects."""
    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    negative = 1 - positive
    pos_loss = torch.log(prob) * (1 - prob) ** 2 * positive
    neg_loss = torch.log(1 - prob) * prob**2 * (1 - target) ** 4 * negative
    count = positive.sum().clamp(min=1)
    return -(pos_loss.sum() + neg_loss.sum()) / count


def _batch(sampler: CropSampler, config: DetectorTrainingConfig) -> dict[str, torch.Tensor]:
    images, targets = [], []
    for _ in range(config.batch):
        pixels, boxes, classes = sampler.sample()
        images.append(pixels)
        targets.append(encode_targets(boxes, classes, len(config.classes), config.crop, STRIDE,
                                      config.max_objects))
    batch = {key: torch.from_numpy(np.stack([t[key] for t in targets])) for key in targets[0]}
    batch["image"] = torch.from_numpy(np.stack(images))
    return batch


def _loss(model: CenterNetLite, batch: dict[str, torch.Tensor],
          heat_classes: Sequence[int] | None = None) -> torch.Tensor:
    """Heatmap focal loss (of ``heat_classes`` only, when given: fine-tuning leaves the heatmaps of
    classes the user did not label alone) plus the box loss of every labelled object."""
    logits, box = model.raw(batch["image"])
    if heat_classes is not None:
        heat_loss = focal_loss(logits[:, list(heat_classes)], batch["heat"][:, list(heat_classes)])
    else:
        heat_loss = focal_loss(logits, batch["heat"])
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


def _measure_simulated(detector: OnnxDetector, frames: list[TrainingFrame], classes: tuple[str, ...],
                       threshold: float) -> dict[str, object]:
    """Scores on simulator renders of another seed (never trained on)."""
    images = [
        LabelledImage(frame.name, Path(frame.name), tuple(
            LabelledObject(classes[int(c)], (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
            for b, c in zip(frame.boxes, frame.classes, strict=True)
        ), frame.gsd, "simulator")
        for frame in frames
    ]
    predictions = [_predict_pixels(detector, frame.image, frame.gsd) for frame in frames]
    return _summarise(images, predictions, classes, threshold)


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
               classes: tuple[str, ...], threshold: float) -> dict[str, object]:
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


def train_detector(config: DetectorTrainingConfig,
                   progress: Callable[[int, float], None] | None = None) -> TrainingResult:
    """Train, export, pick the threshold on training frames, measure held-out frames, write the card."""
    started = time.monotonic()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    train_images, validation_images, held_images = _split(config)
    class_map = {c: c for c in config.classes}
    frames: list[TrainingFrame] = with_weights(
        frames_from_labelled(train_images, class_map, config.classes, gsd=config.model_gsd),
        1.0 - config.simulated_share,
    )
    if config.simulated is not None:
        frames += with_weights(simulated_frames(config.simulated, config.classes), config.simulated_share)
    sampler = CropSampler(frames, model_gsd=config.model_gsd, crop=config.crop,
                          augmentation=config.augmentation, seed=config.seed)
    model = CenterNetLite(len(config.classes), width=config.width)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = warmup_cosine(optimiser, config.steps, config.steps // 20)
    model.train()
    running = 0.0
    for step in range(config.steps):
        loss = _loss(model, _batch(sampler, config))
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()
        schedule.step()
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if step else value
        if progress is not None and (step % 50 == 0 or step == config.steps - 1):
            progress(step, running)

    onnx_path = config.output
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
        tile=config.tile, overlap=config.overlap,
        architecture={"model": "CenterNetLite", "width": config.width}, weights_file=weights.name,
        weights_sha256=save_weights(weights, state_arrays(model)),
    )
    detector = OnnxDetector(onnx_path, card, threads=config.threads)
    predict = _predict_with(detector)
    train_predictions = [predict(i) for i in train_images]
    validation_predictions = [predict(i) for i in validation_images]
    threshold = (count_threshold(validation_images, validation_predictions, config.classes)
                 if validation_images else choose_threshold(train_images, train_predictions, config.classes))
    validation = (_summarise(validation_images, validation_predictions, config.classes, threshold)
                  if validation_images else {})
    held_predictions = [predict(i) for i in held_images]
    holdout = _summarise(held_images, held_predictions, config.classes, threshold) if held_images else {}
    holdout_simulated: dict[str, object] = {}
    if config.simulated_holdout is not None:
        held_frames = simulated_frames(config.simulated_holdout, config.classes)
        holdout_simulated = _measure_simulated(detector, held_frames, config.classes, threshold)
    real_classes = tuple(c for c in config.classes
                         if any(o.class_name == c for i in held_images for o in i.objects))
    card = ModelCard(
        **{**card.to_dict(), "classes": card.classes, "bands": card.bands, "gsd_range": card.gsd_range,
           "score_threshold": threshold, "validated_on_real": real_classes,
           "data_credit": CREDIT,
           "training": {"config": config.raw, "parameters": parameter_count(model),
                        "frames": [i.name for i in train_images], "torch": torch.__version__,
                        "seconds": round(time.monotonic() - started, 1)},
           "metrics": {"holdout": holdout, "validation": validation, "holdout_simulated": holdout_simulated,
                       "train": _summarise(train_images, train_predictions, config.classes, threshold)}},
    )
    card_path = onnx_path.with_suffix(".json")
    card_path.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return TrainingResult(onnx_path, card_path, sha256, parameter_count(model),
                          time.monotonic() - started, {"real": holdout, "simulated": holdout_simulated})
