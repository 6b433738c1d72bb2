"""Fine-tune the shipped vehicle detector on the user's own labelled frames, on the CPU.

Analysts hold imagery of their own sites that no public set covers. This starts from the
shipped model's float weights (``vehicles.weights.npz``, checked against its card), trains a
few hundred steps at a low learning rate on crops of the user's frames with the shipped
model's augmentation, and writes an 8-bit model with its card into a workspace's ``models/``.

Choices, and why:

* **Held-out frames.** Frames are split by name: ranked by the SHA-1 of ``folder/name``, the
  first fifth (at least one) is kept out, so the split does not depend on the order of files or
  on the machine, and adding a frame rarely moves another. ``validation`` folders replace the
  split. The operating threshold is chosen on the held-out frames by the training rule
  (:func:`~sitewatch.training.detector.count_threshold`) and the before/after figures are
  measured there, so the card says what the fine-tuning bought on frames it never trained on.
* **BatchNorm statistics frozen.** A batch of crops from a score of frames is a poor estimate of
  the statistics the shipped model learnt over thousands of varied crops; the layers keep their
  running statistics (eval mode) while their scale and shift still learn.
* **Only the classes the user labelled learn their heatmap.** A user who labels cars says nothing
  about cranes in the same frames; pushing the crane heatmap to zero there would teach the model
  that every unlabelled crane is background. The box regression learns from every labelled object.
* **Each run starts from the shipped model**, not from an earlier workspace model, so a run is
  reproducible from its folders and seed alone; give every folder each time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sitewatch.analytics.objects.onnx import (
    ModelCard,
    OnnxDetector,
    file_sha256,
    load_card,
    shipped_model_dir,
)
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.detect import LabelledImage, PredictedObject, read_folder
from sitewatch.training.config import DatasetSpec, DetectorTrainingConfig
from sitewatch.training.data import Augmentation, CropSampler, frames_from_labelled, with_weights
from sitewatch.training.detector import (
    _batch,
    _loss,
    _predict_with,
    _split,
    _summarise,
    count_threshold,
    export_onnx,
)
from sitewatch.training.model import CenterNetLite, parameter_count
from sitewatch.training.quantize import calibration_crops, quantize_detector
from sitewatch.training.schedule import deterministic, optimisation_step, smoothed, warmup_cosine
from sitewatch.training.weights import load_into, load_weights, save_weights, state_arrays, weights_path

FINE_TUNED_SUFFIX = "-finetuned"
"""Appended to the base model's name in a fine-tuned model's card (detections and change regions it
finds are stored under that name); the files keep the base's names, as the workspace finds them so."""
VALIDATION_SHARE = 0.2
"""Share of the user's frames kept out of training (at least one) when no validation folder is given."""


@dataclass(frozen=True, slots=True)
class FineTuneSettings:
    """How a fine-tuning run trains. The defaults take about a minute and a half for 20 frames of
    1000x1000 px on one core of a busy machine (docs/detector.md has the measurements); the
    training part does not grow with the number of frames: each step sees ``batch`` crops,
    wherever they come from."""

    steps: int = 600
    batch: int = 8
    crop: int = 144
    learning_rate: float = 5e-4
    """A sixth of the rate the shipped model was trained with: the features stay, the details move."""
    weight_decay: float = 1e-4
    seed: int = 20190222
    threads: int = 1
    """Torch and onnxruntime threads. One by default: the model is small enough that a second
    thread buys little, and on a busy machine two OpenMP threads that spin waiting for each
    other made each step 10-20 times slower (docs/detector.md)."""
    max_objects: int = 128
    gsd: float | None = None
    """Metres per pixel of the user's frames; None reads it as `sitewatch eval detect` does."""
    label_format: str = "auto"
    augmentation: Augmentation | None = None
    """None: the augmentation the base model was trained with (from its card)."""


@dataclass(frozen=True, slots=True)
class FineTuneResult:
    onnx_path: Path
    card_path: Path
    sha256: str
    seconds: float
    train_frames: tuple[str, ...]
    validation_frames: tuple[str, ...]
    before: dict[str, Any]
    """Scores of the base model on the validation frames at its own threshold."""
    after: dict[str, Any]
    """Scores of the fine-tuned model on the same frames at its new threshold."""
    thresholds: tuple[dict[str, float], dict[str, float]]
    """(before, after) operating thresholds per class."""


def _rank(folder: Path, name: str) -> str:
    return hashlib.sha1(f"{folder.name}/{name}".encode()).hexdigest()


def split_frames(folders: Sequence[tuple[Path, Sequence[str]]],
                 share: float = VALIDATION_SHARE) -> dict[Path, tuple[str, ...]]:
    """Validation frame names per folder: ranked by the SHA-1 of ``folder/name``, the first
    ``share`` of all frames (at least one, at most all but one) are kept out."""
    ranked = sorted((_rank(folder, name), folder, name) for folder, names in folders for name in names)
    count = min(max(1, round(share * len(ranked))), len(ranked) - 1)
    kept: dict[Path, list[str]] = {folder: [] for folder, _ in folders}
    for _, folder, name in ranked[:count]:
        kept[folder].append(name)
    return {folder: tuple(sorted(names)) for folder, names in kept.items()}


def _datasets(data: Sequence[Path], validation: Sequence[Path],
              settings: FineTuneSettings) -> tuple[tuple[DatasetSpec, ...], dict[Path, list[str]]]:
    """The user's folders as training datasets, each naming its validation frames, and the names of
    every frame per folder."""
    found = []
    for folder in [*data, *validation]:
        chosen, images = read_folder(folder, gsd=settings.gsd, fmt=settings.label_format)
        found.append((folder, chosen, [i.name for i in images]))
    total = sum(len(names) for folder, _, names in found if folder in data)
    if not validation and total < 2:
        raise UnsupportedInputError(
            f"fine-tuning needs at least two labelled frames (one to train on, one to measure and choose "
            f"the threshold on); {', '.join(str(f) for f in data)} hold {total}. Label more frames, or give "
            "held-out frames with --validation DIR"
        )
    held = (
        {folder: tuple(names) for folder, _, names in found if folder in validation} if validation
        else split_frames([(folder, names) for folder, _, names in found])
    )
    specs = tuple(DatasetSpec(path=folder, format=chosen, validation=held.get(folder, ()), gsd=settings.gsd)
                  for folder, chosen, _ in found)
    return specs, {folder: names for folder, _, names in found}


def _base_augmentation(card: ModelCard) -> Augmentation:
    recorded = card.training.get("augmentation") or card.training.get("config", {}).get("augmentation", {})
    names = {f.name for f in dataclasses.fields(Augmentation)}
    return Augmentation(**{k: v for k, v in dict(recorded).items() if k in names})


def _width(card: ModelCard) -> int:
    """The model's width from its card (older cards have it in the training config only)."""
    return int(card.architecture.get("width", card.training.get("config", {}).get("width", 32)))


def load_base(card_path: Path) -> tuple[ModelCard, CenterNetLite]:
    """The model of ``card_path`` in torch with its float weights (checksum checked)."""
    card = load_card(card_path)
    if card.architecture.get("model", "CenterNetLite") != "CenterNetLite":
        raise UnsupportedInputError(
            f"{card_path}: model {card.architecture['model']!r} cannot be fine-tuned by this version of "
            "sitewatch; update sitewatch"
        )
    model = CenterNetLite(len(card.classes), width=_width(card),
                          light=bool(card.architecture.get("light", False)))
    weights = card_path.parent / (card.weights_file or "")
    load_into(model, load_weights(weights, card.weights_sha256, card=card_path), source=weights)
    return card, model


def user_folders(folders: Sequence[Path | str], validation: Sequence[Path | str], *, option: str,
                 kind: str) -> tuple[list[Path], list[Path]]:
    """The user's training and held-out folders, each once in the order given; refuses none to train
    on, and a folder given as both (``option`` names the training flag, ``kind`` what they hold)."""
    training = list(dict.fromkeys(Path(p).resolve() for p in folders))
    held_out = list(dict.fromkeys(Path(p).resolve() for p in validation))
    if not training:
        raise UnsupportedInputError(f"give at least one folder of {kind} to fine-tune on: {option} DIR")
    if set(training) & set(held_out):
        raise UnsupportedInputError(f"a folder is given both to train on ({option}) and to hold out "
                                    "(--validation); give each folder once")
    return training, held_out


def freeze_norms(model: nn.Module) -> None:
    """Keep every BatchNorm's running statistics (eval mode) while the rest trains."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()


def _predictions(detector: OnnxDetector, images: Sequence[LabelledImage]) -> list[list[PredictedObject]]:
    predict = _predict_with(detector)
    return [predict(image) for image in images]


def _choose_thresholds(images: list[LabelledImage], predictions: list[list[PredictedObject]],
                       base: dict[str, float], learnt: Sequence[str]) -> dict[str, float]:
    """Per class learnt: the count-error rule on the held-out frames holding that class; the base
    model's threshold for the other classes and for classes the held-out frames do not hold."""
    chosen = dict(base)
    for class_name in learnt:
        holding = [k for k, image in enumerate(images)
                   if any(o.class_name == class_name for o in image.objects)]
        if holding:
            chosen[class_name] = count_threshold([images[k] for k in holding],
                                                 [predictions[k] for k in holding], (class_name,))
    return chosen


def replace_files(staged: Sequence[Path], folder: Path) -> None:
    """Move the staged files into ``folder``, the card last: a reader never finds a card naming
    files that are not there yet."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in staged:
        os.replace(path, folder / path.name)


def fine_tune_detector(
    data: Sequence[Path],
    output: Path,
    *,
    validation: Sequence[Path] = (),
    settings: FineTuneSettings | None = None,
    base_card: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> FineTuneResult:
    """Fine-tune the base model (default: the shipped one) on the labelled folders ``data`` and write
    ``vehicles.onnx``, ``vehicles.weights.npz`` and ``vehicles.json`` into ``output``."""
    started = time.monotonic()
    settings = settings or FineTuneSettings()
    base_card = base_card or shipped_model_dir() / "vehicles.json"
    say = progress or (lambda message: None)
    data, validation = user_folders(data, validation, option="--data", kind="labelled frames")
    deterministic(settings.seed, settings.threads)
    base, model = load_base(base_card)
    augmentation = settings.augmentation or _base_augmentation(base)
    datasets, names = _datasets(data, validation, settings)
    config = DetectorTrainingConfig(
        name=f"{base.name}{FINE_TUNED_SUFFIX}", version=base.version, seed=settings.seed,
        classes=base.classes, datasets=datasets, output=output / base.onnx_file,
        model_gsd=base.model_gsd, gsd_range=base.gsd_range, width=_width(base),
        light=bool(base.architecture.get("light", False)),
        steps=settings.steps, batch=settings.batch, crop=settings.crop, learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay, threads=settings.threads, max_objects=settings.max_objects,
        tile=base.tile, overlap=base.overlap, precision="int8", augmentation=augmentation,
    )
    split = _split(config)
    train_images, validation_images = split.training_images, split.validation
    class_map = {c: c for c in base.classes}
    frames = with_weights(frames_from_labelled(train_images, class_map, base.classes, gsd=base.model_gsd),
                          1.0)
    labelled = sorted({int(c) for f in frames for c in f.classes})
    if not labelled:
        raise UnsupportedInputError(
            f"the training frames of {', '.join(str(p) for p in data)} hold no object of the model's classes "
            f"({', '.join(base.classes)}); label vehicles (YOLO names such as car, truck, bus; DOTA "
            "small-vehicle, large-vehicle) in them"
        )
    say(f"{len(train_images)} training frames, {len(validation_images)} held-out frames; "
        f"learning {', '.join(base.classes[i] for i in labelled)}")

    shipped = OnnxDetector(base_card.parent / base.onnx_file, base, threads=settings.threads)
    before_predictions = _predictions(shipped, validation_images)
    base_thresholds = shipped.info.thresholds()
    before = _summarise(validation_images, before_predictions, base.classes, base_thresholds)

    sampler = CropSampler(frames, model_gsd=base.model_gsd, crop=settings.crop, augmentation=augmentation,
                          seed=settings.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = warmup_cosine(optimiser, settings.steps, settings.steps // 20)
    model.train()
    freeze_norms(model)
    running = 0.0
    for step in range(settings.steps):
        loss = _loss(model, _batch(sampler, config), heat_classes=labelled)
        running = smoothed(running, optimisation_step(model, optimiser, schedule, loss, clip_norm=10.0), step)
        if step % 50 == 0 or step == settings.steps - 1:
            say(f"step {step + 1}/{settings.steps} loss {running:.3f}")
    train_seconds = time.monotonic() - started

    with tempfile.TemporaryDirectory(prefix="sitewatch-finetune-") as scratch:
        stage = Path(scratch)
        onnx_path = stage / base.onnx_file
        float_path = stage / "float32.onnx"
        export_onnx(model, float_path)
        crops = calibration_crops(frames, model_gsd=base.model_gsd, seed=settings.seed)
        quantize_detector(float_path, onnx_path, crops)
        float_path.unlink()
        weights = weights_path(onnx_path)
        card = dataclasses.replace(
            base, name=config.name, sha256=file_sha256(onnx_path), weights_file=weights.name,
            weights_sha256=save_weights(weights, state_arrays(model)),
            architecture={"model": "CenterNetLite", "width": config.width},
        )
        tuned = OnnxDetector(onnx_path, card, threads=settings.threads)
        after_predictions = _predictions(tuned, validation_images)
        thresholds = _choose_thresholds(validation_images, after_predictions, base_thresholds,
                                        [base.classes[i] for i in labelled])
        after = _summarise(validation_images, after_predictions, base.classes, thresholds)
        seconds = round(time.monotonic() - started, 1)
        present = {o.class_name for i in validation_images for o in i.objects}
        card = dataclasses.replace(
            card, score_threshold=thresholds.get("car", base.score_threshold),
            class_thresholds=tuple((c, round(float(t), 2)) for c, t in thresholds.items()),
            validated_on_real=tuple(c for c in base.classes if c in present or c in base.validated_on_real),
            data_credit=(*base.data_credit, "Fine-tuned on the user's own labelled frames (see training)."),
            training={
                "fine_tuned_from": {"name": base.name, "version": base.version, "sha256": base.sha256},
                "folders": [str(p) for p in data],
                "validation_folders": [str(p) for p in validation],
                "frames": {str(spec.path): [n for n in names[spec.path] if n not in spec.validation]
                           for spec in datasets if spec.path in data},
                "validation_frames": {str(spec.path): list(spec.validation) for spec in datasets},
                "validation_use": "operating threshold (count-error rule) and the before/after figures",
                "classes_learnt": [base.classes[i] for i in labelled],
                "batchnorm": "statistics frozen (the base model's)",
                "steps": settings.steps, "batch": settings.batch, "crop": settings.crop,
                "learning_rate": settings.learning_rate, "weight_decay": settings.weight_decay,
                "seed": settings.seed, "threads": settings.threads,
                "augmentation": dataclasses.asdict(augmentation),
                "parameters": parameter_count(model), "torch": torch.__version__,
                "seconds": seconds, "training_seconds": round(train_seconds, 1),
            },
            metrics={"validation": {"before": {**before, "thresholds": base_thresholds},
                                    "after": {**after, "thresholds": thresholds}}},
        )
        card_path = stage / Path(base.onnx_file).with_suffix(".json").name
        card_path.write_text(json.dumps(card.to_dict(), indent=2) + "\n", encoding="utf-8")
        replace_files([onnx_path, weights, card_path], output)
    return FineTuneResult(
        onnx_path=output / onnx_path.name, card_path=output / card_path.name, sha256=card.sha256,
        seconds=time.monotonic() - started, train_frames=tuple(i.name for i in train_images),
        validation_frames=tuple(i.name for i in validation_images), before=before, after=after,
        thresholds=(base_thresholds, thresholds),
    )
