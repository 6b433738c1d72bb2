"""Fine-tune the shipped learned change model on the user's own labelled pairs, on the CPU.

The same recipe as the vehicle detector (:mod:`sitewatch.training.finetune`): the shipped float
weights (``buildings.weights.npz``, checked against its card), a lower rate than training's,
BatchNorm statistics frozen, pairs split by name into training and held-out pairs (a fifth, at
least one; ``validation`` folders replace the split), and the pooled pixel scores of the held-out
pairs before and after in the card written with the model into a workspace's ``models/``.

Training crops are cut from each date normalised whole, as the detector normalises what it is
given (:func:`~sitewatch.analytics.change.learned.normalise_date`), half of them centred near a
changed pixel (change is a few per cent of the pixels of a labelled pair), with the mirror images
and quarter turns the shipped model trained with. The operating point stays the shipped one
(probability 0.5): the held-out pairs only measure.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from sitewatch.analytics.change.learned import (
    SHIPPED_MODEL,
    ChangeModelCard,
    LearnedBuildings,
    normalise_date,
    shipped_model_dir,
)
from sitewatch.analytics.objects.onnx import file_sha256
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.evaluation.change import LabelledPair, MethodScore, discover_pairs, evaluate_change
from sitewatch.training.change import _loss, export_change_onnx
from sitewatch.training.change_model import INPUT_MULTIPLE, SiameseUNet
from sitewatch.training.finetune import (
    FINE_TUNED_SUFFIX,
    freeze_norms,
    replace_files,
    split_frames,
    user_folders,
)
from sitewatch.training.schedule import deterministic, optimisation_step, smoothed, warmup_cosine
from sitewatch.training.weights import load_into, load_weights, save_weights, state_arrays, weights_path


@dataclass(frozen=True, slots=True)
class ChangeFineTuneSettings:
    """How a change fine-tuning run trains (docs/change.md has the measurements)."""

    steps: int = 600
    batch: int = 8
    crop: int = 128
    learning_rate: float = 1e-3
    """A third of the rate the shipped model was trained with (a tenth learnt half as much on the
    LEVIR samples in 600 steps; the full rate no more)."""
    weight_decay: float = 1e-4
    seed: int = 20190301
    threads: int = 1
    """One by default, for the reason given in :class:`sitewatch.training.finetune.FineTuneSettings`."""
    changed_share: float = 0.5
    """Share of crops centred near a changed pixel (where the pair has any)."""


@dataclass(frozen=True, slots=True)
class ChangeFineTuneResult:
    onnx_path: Path
    card_path: Path
    sha256: str
    seconds: float
    train_pairs: tuple[str, ...]
    validation_pairs: tuple[str, ...]
    before: dict[str, Any]
    """Pooled scores of the base model on the held-out pairs."""
    after: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One training pair normalised as the detector normalises it."""

    before: NDArray[np.float32]
    after: NDArray[np.float32]
    changed: NDArray[np.bool_]
    changed_at: NDArray[np.int64]
    """(N, 2) rows and columns of changed pixels."""


def _prepare(pair: LabelledPair, crop: int) -> _Prepared:
    if pair.before.shape[0] < 3:
        raise UnsupportedInputError(
            f"pair {pair.name} has {pair.before.shape[0]} bands; the learned change model needs RGB (3 bands)"
        )
    if not pair.labelled.all():
        raise UnsupportedInputError(
            f"pair {pair.name} labels only some pixels (change.bmp/unchanged.bmp); fine-tuning needs every "
            "pixel labelled, as in LEVIR-style A/ B/ label/ folders"
        )
    before, after, changed = normalise_date(pair.before[:3]), normalise_date(pair.after[:3]), pair.changed
    rows, cols = changed.shape
    if rows < crop or cols < crop:  # pad small pairs to one crop
        pad = ((0, 0), (0, max(0, crop - rows)), (0, max(0, crop - cols)))
        before, after = np.pad(before, pad, mode="reflect"), np.pad(after, pad, mode="reflect")
        changed = np.pad(changed, pad[1:], mode="reflect")
    return _Prepared(before, after, changed, np.argwhere(changed))


def _draw(pairs: Sequence[_Prepared], rng: np.random.Generator, settings: ChangeFineTuneSettings
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of crops: before, after and the change target."""
    size = settings.crop
    parts: list[list[NDArray[Any]]] = [[], [], []]
    for _ in range(settings.batch):
        pair = pairs[int(rng.integers(len(pairs)))]
        rows, cols = pair.changed.shape
        if len(pair.changed_at) and rng.random() < settings.changed_share:
            row, col = pair.changed_at[int(rng.integers(len(pair.changed_at)))]
            top = int(np.clip(row - rng.integers(size), 0, rows - size))
            left = int(np.clip(col - rng.integers(size), 0, cols - size))
        else:
            top, left = int(rng.integers(rows - size + 1)), int(rng.integers(cols - size + 1))
        window = (slice(top, top + size), slice(left, left + size))
        crop = [pair.before[(slice(None), *window)], pair.after[(slice(None), *window)],
                pair.changed[window][None].astype(np.float32)]
        turns, mirror = int(rng.integers(4)), rng.random() < 0.5
        for part, array in zip(parts, crop, strict=True):
            turned = np.rot90(array, turns, (1, 2))
            part.append(turned[..., ::-1] if mirror else turned)
    first, second, target = (torch.from_numpy(np.ascontiguousarray(np.stack(part))) for part in parts)
    return first, second, target


def _read(folders: Sequence[Path]) -> dict[Path, list[LabelledPair]]:
    return {folder: list(discover_pairs(folder)) for folder in folders}


def _scores(score: MethodScore) -> dict[str, Any]:
    return {"pairs": [name for name, _ in score.pairs], **score.pooled.as_dict()}


def fine_tune_change(
    pairs: Sequence[Path],
    output: Path,
    *,
    validation: Sequence[Path] = (),
    settings: ChangeFineTuneSettings | None = None,
    base_card: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ChangeFineTuneResult:
    """Fine-tune the base change model (default: the shipped one) on the labelled pair folders
    ``pairs`` (LEVIR style, as ``sitewatch eval change`` reads them) and write ``buildings.onnx``,
    ``buildings.weights.npz`` and ``buildings.json`` into ``output``."""
    started = time.monotonic()
    settings = settings or ChangeFineTuneSettings()
    say = progress or (lambda message: None)
    if settings.crop % INPUT_MULTIPLE:
        raise UnsupportedInputError(f"the crop size {settings.crop} must be a multiple of {INPUT_MULTIPLE}")
    pairs, validation = user_folders(pairs, validation, option="--pairs", kind="labelled pairs")
    deterministic(settings.seed, settings.threads)
    base_path = base_card or shipped_model_dir() / f"{SHIPPED_MODEL}.json"
    base = ChangeModelCard.from_dict(json.loads(base_path.read_text(encoding="utf-8")), str(base_path))
    width = int(base.architecture.get("width", base.training.get("config", {}).get("width", 16)))
    outputs = int(base.architecture.get("outputs", len(base.outputs)))
    model = SiameseUNet(width, outputs)
    weights = base_path.parent / (base.weights_file or "")
    load_into(model, load_weights(weights, base.weights_sha256, card=base_path), source=weights)

    read = _read(pairs)
    total = sum(len(found) for found in read.values())
    if not validation and total < 2:
        raise UnsupportedInputError(
            f"fine-tuning needs at least two labelled pairs (one to train on, one to measure); "
            f"{', '.join(str(p) for p in pairs)} hold {total}. Label more pairs, or give held-out pairs with "
            "--validation DIR"
        )
    if validation:
        given = _read(validation)
        held = {folder: tuple(p.name for p in found) for folder, found in given.items()}
        read.update(given)
    else:
        held = split_frames([(folder, [p.name for p in found]) for folder, found in read.items()])
    training = [p for folder, found in read.items() for p in found if p.name not in held.get(folder, ())]
    held_out = [p for folder, found in read.items() for p in found if p.name in held.get(folder, ())]
    if not training:
        raise UnsupportedInputError(f"no pair of {', '.join(str(p) for p in pairs)} is left to train on")
    say(f"{len(training)} training pairs, {len(held_out)} held-out pairs")
    shipped = LearnedBuildings(model=base_card)
    before = _scores(evaluate_change(held_out, [shipped])[0])

    prepared = [_prepare(pair, settings.crop) for pair in training]
    positive_weight = float(base.training.get("config", {}).get("training", {}).get("positive_weight", 2.0))
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = warmup_cosine(optimiser, settings.steps, settings.steps // 20)
    rng = np.random.default_rng([settings.seed, 1])
    model.train()
    freeze_norms(model)
    running = 0.0
    for step in range(settings.steps):
        first, second, target = _draw(prepared, rng, settings)
        # The user's labels are change of the kind the first output marks (LEVIR style: buildings);
        # the other outputs keep what they learnt (their negatives are not known here).
        loss = _loss(model(first, second)[:, :1], target, positive_weight)
        running = smoothed(running, optimisation_step(model, optimiser, schedule, loss, clip_norm=10.0), step)
        if step % 50 == 0 or step == settings.steps - 1:
            say(f"step {step + 1}/{settings.steps} loss {running:.3f}")

    with tempfile.TemporaryDirectory(prefix="sitewatch-finetune-") as scratch:
        stage = Path(scratch)
        onnx_path = stage / base.onnx_file
        export_change_onnx(model, onnx_path)
        weights = weights_path(onnx_path)
        card = dataclasses.replace(
            base, name=f"{base.name}{FINE_TUNED_SUFFIX}", sha256=file_sha256(onnx_path),
            weights_file=weights.name, weights_sha256=save_weights(weights, state_arrays(model)),
            architecture={"model": "SiameseUNet", "width": width, "outputs": outputs},
        )
        card_path = stage / f"{Path(base.onnx_file).stem}.json"
        card_path.write_text(json.dumps(card.to_dict(), indent=2) + "\n", encoding="utf-8")
        after = _scores(evaluate_change(held_out, [LearnedBuildings(model=card_path)])[0])
        card = dataclasses.replace(
            card,
            data_credit=(*base.data_credit, "Fine-tuned on the user's own labelled pairs (see training)."),
            training={
                "fine_tuned_from": {"name": base.name, "version": base.version, "sha256": base.sha256},
                "folders": [str(p) for p in pairs], "validation_folders": [str(p) for p in validation],
                "pairs": {str(folder): [p.name for p in found if p.name not in held.get(folder, ())]
                          for folder, found in read.items() if folder in pairs},
                "validation_pairs": {str(folder): list(names) for folder, names in held.items()},
                "validation_use": "the before/after figures only (the operating point stays the base's)",
                "batchnorm": "statistics frozen (the base model's)",
                "steps": settings.steps, "batch": settings.batch, "crop": settings.crop,
                "learning_rate": settings.learning_rate, "weight_decay": settings.weight_decay,
                "positive_weight": positive_weight, "changed_share": settings.changed_share,
                "seed": settings.seed, "threads": settings.threads, "torch": torch.__version__,
                "seconds": round(time.monotonic() - started, 1),
            },
            metrics={"validation": {"before": before, "after": after}},
        )
        card_path.write_text(json.dumps(card.to_dict(), indent=2) + "\n", encoding="utf-8")
        replace_files([onnx_path, weights, card_path], output)
    return ChangeFineTuneResult(
        onnx_path=output / onnx_path.name, card_path=output / card_path.name, sha256=card.sha256,
        seconds=time.monotonic() - started, train_pairs=tuple(p.name for p in training),
        validation_pairs=tuple(p.name for p in held_out), before=before, after=after,
    )

