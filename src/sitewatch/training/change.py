"""Train the learned building-change detector: synthetic pairs, siamese U-Net, ONNX, model card.

One YAML config (``configs/change.yaml``) and its seed regenerate the shipped weights: the pairs
are drawn in fixed chunks, each from its own seeded stream, so the set does not depend on how
many processes draw them, and torch runs deterministically on the CPU. The operating point is
fixed (probability 0.5) before anything is scored; the card records the F1 on synthetic pairs
drawn with another seed, which measure fit, not the real-world figure (docs/change.md has those).
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from numpy.typing import NDArray
from PIL import Image
from torch.nn import functional

from sitewatch.analytics.change.learned import ChangeModelCard, normalise_date
from sitewatch.analytics.objects.onnx import file_sha256
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.parallel import Scheduler, run_jobs
from sitewatch.training.change_model import INPUT_MULTIPLE, SiameseUNet
from sitewatch.training.change_pairs import make_pair
from sitewatch.training.config import check_precision
from sitewatch.training.quantize import quantize_change_model
from sitewatch.training.roofs import BuiltFrame, Roof, read_built_frames
from sitewatch.training.schedule import deterministic, optimisation_step, smoothed, warmup_cosine
from sitewatch.training.weights import save_weights, state_arrays, weights_path

CHUNK = 250
"""Pairs per seeded chunk."""
CALIBRATION_PAIRS = 200
"""Synthetic pairs (drawn with the config's seed + 2, neither training's nor validation's) whose
activations set an 8-bit model's ranges."""
CREDIT = ("Backgrounds: KIT AIS aerial frames of Munich, Institute of Photogrammetry and Remote Sensing, "
          "KIT, CC-BY 3.0 (via github.com/jekhor/aerial-cars-dataset); the rest procedural.",)
ROOF_CREDIT = ("Real roofs and built-up backgrounds: drone imagery of Kampala, OpenAerialMap contributors "
               "(Open Imagery Network), CC-BY 4.0, cut by building outlines (c) OpenStreetMap contributors, "
               "ODbL; via github.com/hotosm/fAIr-utilities",)
OUTPUTS = ("buildings", "site")
"""What each output channel can be trained to mark: building change, and any site change."""


@dataclass(frozen=True, slots=True)
class RoofSource:
    """Web-map tiles and a GeoJSON of building outlines over them (see training.roofs)."""

    path: Path
    outlines: Path
    zoom: int


@dataclass(frozen=True, slots=True)
class BackgroundSource:
    """A folder of real RGB images (PNG, JPEG or GeoTIFF) at ``gsd`` metres per pixel."""

    path: Path
    gsd: float


@dataclass(frozen=True, slots=True)
class ChangeTrainingConfig:
    name: str
    version: str
    seed: int
    output: Path
    """Where the ONNX file goes; its JSON model card is written beside it."""
    backgrounds: tuple[BackgroundSource, ...] = ()
    gsd: float = 0.5
    gsd_range: tuple[float, float] = (0.3, 1.0)
    size: int = 128
    pairs: int = 6000
    validation_pairs: int = 500
    frame_share: float = 0.35
    street_share: float = 0.0
    """Share of pairs holding a residential street (``change_pairs._street``)."""
    hip_share: float = 0.0
    """Share of roofs with four slopes."""
    width: int = 16
    steps: int = 3000
    batch: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    positive_weight: float = 2.0
    threads: int = 2
    workers: int = 2
    tile: int = 512
    overlap: int = 64
    flips: bool = False
    """Whether the shipped detector averages over mirror images (recorded in the card)."""
    outputs: tuple[str, ...] = ("buildings",)
    """The model's output channels, in order (names from :data:`OUTPUTS`)."""
    roofs: tuple[RoofSource, ...] = ()
    roof_share: float = 0.0
    built_share: float = 0.0
    land_share: float = 0.0
    precision: str = "float32"
    """Weights of the shipped ONNX file: ``float32``, or ``int8`` (calibrated on synthetic pairs,
    :func:`sitewatch.training.quantize.quantize_change_model`)."""
    raw: dict[str, Any] = field(default_factory=dict)


def load_change_config(path: Path) -> ChangeTrainingConfig:
    """Read a change-model training config; relative paths are taken from the config file's folder."""
    if not path.is_file():
        raise UnsupportedInputError(f"training config {path} not found; see configs/change.yaml")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    base = path.resolve().parent
    try:
        train = dict(raw.get("training", {}))
        data = dict(raw.get("data", {}))
        gsd_range = raw.get("gsd_range", [0.3, 1.0])
        config = ChangeTrainingConfig(
            name=str(raw["name"]), version=str(raw["version"]), seed=int(raw["seed"]),
            output=(base / raw["output"]).resolve(),
            backgrounds=tuple(BackgroundSource((base / b["path"]).resolve(), float(b["gsd"]))
                              for b in data.get("backgrounds", ())),
            gsd=float(data.get("gsd", 0.5)), gsd_range=(float(gsd_range[0]), float(gsd_range[1])),
            size=int(data.get("size", 128)), pairs=int(data.get("pairs", 6000)),
            validation_pairs=int(data.get("validation_pairs", 500)),
            frame_share=float(data.get("frame_share", 0.35)),
            street_share=float(data.get("street_share", 0.0)), hip_share=float(data.get("hip_share", 0.0)),
            width=int(raw.get("width", 16)),
            steps=int(train.get("steps", 3000)), batch=int(train.get("batch", 16)),
            learning_rate=float(train.get("learning_rate", 3e-3)),
            weight_decay=float(train.get("weight_decay", 1e-4)),
            positive_weight=float(train.get("positive_weight", 2.0)),
            threads=int(train.get("threads", 2)), workers=int(train.get("workers", 2)),
            tile=int(raw.get("tile", 512)), overlap=int(raw.get("overlap", 64)),
            flips=bool(raw.get("flips", False)),
            outputs=tuple(str(o) for o in raw.get("outputs", ["buildings"])),
            roofs=tuple(RoofSource((base / r["path"]).resolve(), (base / r["outlines"]).resolve(),
                                   int(r.get("zoom", 21))) for r in data.get("roofs", ())),
            roof_share=float(data.get("roof_share", 0.0)), built_share=float(data.get("built_share", 0.0)),
            land_share=float(data.get("land_share", 0.0)),
            precision=check_precision(raw.get("precision", "float32"), path),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UnsupportedInputError(
            f"training config {path}: {error!r} is missing or malformed; compare with configs/change.yaml"
        ) from None
    unknown = [o for o in config.outputs if o not in OUTPUTS]
    if unknown or not config.outputs or config.outputs[0] != "buildings":
        raise UnsupportedInputError(
            f"training config {path}: outputs {list(config.outputs)} must start with 'buildings' and name "
            f"only {', '.join(OUTPUTS)}"
        )
    if config.size % INPUT_MULTIPLE:
        raise UnsupportedInputError(
            f"training config {path}: data.size {config.size} must be a multiple of {INPUT_MULTIPLE}"
        )
    return config


def background_frames(sources: Sequence[BackgroundSource], gsd: float) -> list[NDArray[np.uint8]]:
    """Every image of ``sources`` as RGB ``(3, rows, cols)`` uint8 resampled to ``gsd``."""
    frames = []
    for source in sources:
        files = sorted(p for p in source.path.rglob("*")
                       if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".tif", ".tiff"})
        if not files:
            raise UnsupportedInputError(
                f"background folder {source.path} has no PNG, JPEG or TIFF images; fix data.backgrounds"
            )
        for file in files:
            with Image.open(file) as opened:
                image = opened.convert("RGB")
            factor = source.gsd / gsd
            size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
            frames.append(np.asarray(image.resize(size, Image.Resampling.LANCZOS)).transpose(2, 0, 1).copy())
    return frames


@dataclass(frozen=True, slots=True)
class _Sources:
    """What pairs are drawn from, and how often each kind of thing is drawn."""

    frames: list[NDArray[np.uint8]]
    roofs: list[Roof]
    built: list[BuiltFrame]
    shares: dict[str, float]
    outputs: tuple[str, ...]


def _draw_chunk(seed: int, chunk: int, count: int, size: int, gsd: float, sources: _Sources,
                report: Callable[[object], None]
                ) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    rng = np.random.default_rng([seed, chunk])
    before = np.empty((count, 3, size, size), np.uint8)
    after = np.empty_like(before)
    labels = np.empty((count, len(sources.outputs), size, size), bool)
    for i in range(count):
        pair = make_pair(rng, size, gsd=gsd, frames=sources.frames, roofs=sources.roofs, built=sources.built,
                         **sources.shares)
        before[i] = np.round(pair.before * 255)
        after[i] = np.round(pair.after * 255)
        for k, output in enumerate(sources.outputs):
            labels[i, k] = pair.label if output == "buildings" or pair.site is None else pair.site
    report(count)
    return before, after, labels


def pair_sources(config: ChangeTrainingConfig) -> _Sources:
    """Backgrounds, real roofs and built-up frames at the config's GSD, with its shares."""
    roofs: list[Roof] = []
    built: list[BuiltFrame] = []
    for source in config.roofs:
        found_frames, found_roofs = read_built_frames(source.path, source.outlines, zoom=source.zoom,
                                                      gsd=config.gsd)
        built += found_frames
        roofs += found_roofs
    shares = {"frame_share": config.frame_share, "street_share": config.street_share,
              "hip_share": config.hip_share}
    if config.roofs:
        shares |= {"roof_share": config.roof_share, "built_share": config.built_share}
    if config.land_share:
        shares["land_share"] = config.land_share
    frames = background_frames(config.backgrounds, config.gsd)
    return _Sources(frames, roofs, built, shares, config.outputs)


def draw_pairs(config: ChangeTrainingConfig, seed: int, count: int, sources: _Sources,
               progress: Callable[[str], None] | None = None
               ) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    """``count`` synthetic pairs as uint8 before/after stacks and bool labels ``(count, outputs, size,
    size)``, drawn in seeded chunks."""
    jobs = [(seed, chunk, min(CHUNK, count - start), config.size, config.gsd, sources)
            for chunk, start in enumerate(range(0, count, CHUNK))]
    done = 0

    def drawn(amount: object) -> None:
        nonlocal done
        done += int(amount)  # type: ignore[call-overload]
        if progress is not None:
            progress(f"pairs {done}/{count}")

    scheduler = Scheduler(local_workers=config.workers) if config.workers > 1 and len(jobs) > 1 \
        else Scheduler()
    parts = run_jobs(_draw_chunk, jobs, scheduler, on_message=drawn,
                     names=[f"draw-pairs-{chunk}" for chunk in range(len(jobs))])
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


def _normalised(stack: NDArray[np.uint8]) -> NDArray[np.float32]:
    return np.stack([normalise_date(image) for image in stack])


def _batch(before: NDArray[np.uint8], after: NDArray[np.uint8], labels: NDArray[np.bool_],
           rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    index = rng.integers(0, len(before), size)
    a, b, y = _normalised(before[index]), _normalised(after[index]), labels[index].astype(np.float32)
    turns = int(rng.integers(4))
    a, b, y = np.rot90(a, turns, (2, 3)), np.rot90(b, turns, (2, 3)), np.rot90(y, turns, (2, 3))
    if rng.random() < 0.5:
        a, b, y = a[..., ::-1], b[..., ::-1], y[..., ::-1]

    def tensor(x: NDArray[Any]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x))

    return tensor(a), tensor(b), tensor(y)


def _loss(logits: torch.Tensor, target: torch.Tensor, positive_weight: float) -> torch.Tensor:
    """Weighted cross-entropy plus soft Dice per output: change is about a tenth of the pixels."""
    probability = torch.sigmoid(logits)
    dims = (0, 2, 3)
    dice = 1 - (2 * (probability * target).sum(dims) + 1) / (probability.sum(dims) + target.sum(dims) + 1)
    return functional.binary_cross_entropy_with_logits(
        logits, target, pos_weight=torch.tensor(positive_weight)) + dice.mean()


def export_change_onnx(model: SiameseUNet, path: Path, opset: int = 17) -> None:
    """Export with dynamic batch and size: inputs ``before``, ``after``; output ``logits``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    example = torch.zeros(1, 3, 128, 128)
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The TorchScript exporter on purpose, as for the vehicle detector: no onnxscript needed.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(model, (example, example), str(path), input_names=["before", "after"],
                          output_names=["logits"],
                          dynamic_axes={"before": axes, "after": axes, "logits": axes},
                          opset_version=opset, dynamo=False)


def _logits(model: SiameseUNet, before: torch.Tensor, after: torch.Tensor, flips: bool) -> torch.Tensor:
    """The model's logits, averaged over the image and its mirror images when ``flips`` (as the
    detector runs it)."""
    if not flips:
        return model(before, after)
    total = torch.zeros(before.shape[0], model.head.out_channels, *before.shape[2:])
    for dims in ((), (2,), (3,), (2, 3)):  # flip(()) is the image itself
        total += model(before.flip(dims), after.flip(dims)).flip(dims)
    return total / 4


def _pixel_scores(model: SiameseUNet, before: NDArray[np.uint8], after: NDArray[np.uint8],
                  labels: NDArray[np.bool_], threshold: float = 0.5, flips: bool = False
                  ) -> list[dict[str, float]]:
    """Pixel precision, recall and F1 of each output on labelled pairs (labels ``(N, outputs, H, W)``)."""
    model.eval()
    outputs = labels.shape[1]
    tp, fp, fn = np.zeros(outputs, np.int64), np.zeros(outputs, np.int64), np.zeros(outputs, np.int64)
    with torch.no_grad():
        for start in range(0, len(before), 32):
            a = torch.from_numpy(_normalised(before[start:start + 32]))
            b = torch.from_numpy(_normalised(after[start:start + 32]))
            predicted = (torch.sigmoid(_logits(model, a, b, flips)) >= threshold).numpy()
            truth = labels[start:start + 32]
            tp += (predicted & truth).sum(axis=(0, 2, 3))
            fp += (predicted & ~truth).sum(axis=(0, 2, 3))
            fn += (~predicted & truth).sum(axis=(0, 2, 3))
    scores = []
    for k in range(outputs):
        precision, recall = tp[k] / max(tp[k] + fp[k], 1), tp[k] / max(tp[k] + fn[k], 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        scores.append({"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                       "f1": round(float(f1), 4)})
    return scores


def write_change_onnx(model: SiameseUNet, config: ChangeTrainingConfig, sources: _Sources) -> None:
    """Export ``model`` to ``config.output``, in 8 bits when the config's precision says so."""
    with tempfile.TemporaryDirectory(prefix="sitewatch-export-") as scratch:
        exported = Path(scratch) / "model.onnx"  # written whole, then moved: never a half file
        export_change_onnx(model, exported)
        if config.precision == "int8":
            before, after, _ = draw_pairs(config, config.seed + 2, CALIBRATION_PAIRS, sources, None)
            calibration = [(normalise_date(b), normalise_date(a)) for b, a in zip(before, after, strict=True)]
            quantised = Path(scratch) / "int8.onnx"
            quantize_change_model(exported, quantised, calibration)
            exported = quantised
        config.output.parent.mkdir(parents=True, exist_ok=True)
        config.output.write_bytes(exported.read_bytes())


@dataclass(frozen=True, slots=True)
class ChangeTrainingResult:
    onnx_path: Path
    card_path: Path
    sha256: str
    parameters: int
    seconds: float
    validation: dict[str, float]
    """Synthetic validation scores of the building output."""
    validation_by_output: dict[str, dict[str, float]] = field(default_factory=dict)


def train_change(config: ChangeTrainingConfig,
                 progress: Callable[[str], None] | None = None) -> ChangeTrainingResult:
    """Draw the pairs, train, export ONNX, measure synthetic validation pairs, write the card."""
    started = time.monotonic()
    deterministic(config.seed, config.threads)
    sources = pair_sources(config)
    before, after, labels = draw_pairs(config, config.seed, config.pairs, sources, progress)
    model = SiameseUNet(config.width, len(config.outputs))
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = warmup_cosine(optimiser, config.steps, config.steps // 10)
    rng = np.random.default_rng([config.seed, 1])
    model.train()
    running = 0.0
    for step in range(config.steps):
        a, b, y = _batch(before, after, labels, rng, config.batch)
        loss = _loss(model(a, b), y, config.positive_weight)
        running = smoothed(running, optimisation_step(model, optimiser, schedule, loss), step)
        if progress is not None and (step % 50 == 0 or step == config.steps - 1):
            progress(f"step {step + 1}/{config.steps} loss {running:.3f}")
    held = draw_pairs(config, config.seed + 1, config.validation_pairs, sources, None)
    by_output = dict(zip(config.outputs, _pixel_scores(model, *held, flips=config.flips), strict=True))
    validation = by_output["buildings"]
    write_change_onnx(model, config, sources)
    sha256 = file_sha256(config.output)
    parameters = sum(p.numel() for p in model.parameters())
    weights = weights_path(config.output)  # float weights to fine-tune from (the ONNX file folds BatchNorm)
    card = ChangeModelCard(
        name=config.name, version=config.version, onnx_file=config.output.name, sha256=sha256,
        gsd_range=config.gsd_range, input_multiple=INPUT_MULTIPLE, threshold=0.5, tile=config.tile,
        overlap=config.overlap, flips=config.flips, outputs=config.outputs,
        data_credit=CREDIT + (ROOF_CREDIT if config.roofs else ()),
        architecture={"model": "SiameseUNet", "width": config.width, "outputs": len(config.outputs)},
        weights_file=weights.name, weights_sha256=save_weights(weights, state_arrays(model)),
        training={"config": config.raw, "parameters": parameters, "torch": torch.__version__,
                  "pairs": config.pairs, "seconds": round(time.monotonic() - started, 1)},
        metrics={"synthetic_validation": validation,
                 **({"synthetic_validation_by_output": by_output} if len(config.outputs) > 1 else {})},
    )
    card_path = config.output.with_suffix(".json")
    card_path.write_text(json.dumps(card.to_dict(), indent=2) + "\n", encoding="utf-8")
    return ChangeTrainingResult(config.output, card_path, sha256, parameters,
                                time.monotonic() - started, validation, by_output)
