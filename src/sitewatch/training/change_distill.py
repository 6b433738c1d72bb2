"""Teach the learned change model to give in one pass what its mirror images give averaged.

Why: the shipped detector averaged each tile's logits over the tile and its three mirror images
(``flips`` in the card): four runs of the network per pixel, most of its time. Run once, the same
network scored lower (LEVIR-CD F1 0.468 against 0.496; synthetic validation 0.835 against 0.851):
the four views disagree, and their mean is the better answer. A student of the same architecture,
started from the teacher's weights, is trained to give that mean from a single view: on each
training crop the target is the teacher's four-view mean, so nothing but the teacher's own
behaviour is learnt (no label is read, and no scored pair is seen).

Data: synthetic pairs of the training generator (:func:`sitewatch.training.change.draw_pairs`)
drawn with the config's seed + 11 (neither training's, validation's nor calibration's), each also
turned a quarter (the flips of the teacher's mean are exact: mirroring the input mirrors it); the
teacher runs from its float ONNX file. BatchNorm statistics stay the teacher's; the loss is the
mean squared difference of the logits, both outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from numpy.typing import NDArray

from sitewatch.analytics.change.learned import normalise_date
from sitewatch.training.change_model import SiameseUNet
from sitewatch.training.finetune import freeze_norms
from sitewatch.training.schedule import deterministic, optimisation_step, smoothed, warmup_cosine

DISTIL_SEED = 20261205
DISTIL_PAIRS = 2400
"""Synthetic pairs drawn for distillation (the config's seed + 11)."""
DISTIL_STEPS = 1500
DISTIL_BATCH = 16
DISTIL_RATE = 3e-4
_FLIPS: tuple[tuple[int, ...], ...] = ((), (2,), (3,), (2, 3))


def _flip(array: NDArray[np.float32], axes: tuple[int, ...]) -> NDArray[np.float32]:
    return np.flip(array, axes) if axes else array


def teacher_mean(session: ort.InferenceSession, before: NDArray[np.float32],
                 after: NDArray[np.float32]) -> NDArray[np.float32]:
    """The teacher's logits averaged over the batch and its three mirror images, as the detector
    with ``flips`` computes them."""
    total: NDArray[np.float32] | float = 0.0
    for axes in _FLIPS:
        logits = session.run(None, {"before": np.ascontiguousarray(_flip(before, axes)),
                                    "after": np.ascontiguousarray(_flip(after, axes))})[0]
        total = total + _flip(logits, axes)
    return np.asarray(np.asarray(total, np.float32) / 4, np.float32)


def distil_single_view(teacher_onnx: Path, student: SiameseUNet, before: NDArray[np.uint8],
                       after: NDArray[np.uint8], *, steps: int = DISTIL_STEPS, threads: int = 2,
                       weight_decay: float = 1e-4, progress: Callable[[str], None] | None = None
                       ) -> SiameseUNet:
    """Train ``student`` (loaded with the teacher's float weights) to give the four-view mean of
    the float model ``teacher_onnx`` in one view, on the synthetic pairs ``before``, ``after``
    (uint8 ``(N, 3, size, size)``, :data:`DISTIL_PAIRS` of them drawn with the config's seed + 11
    for the shipped model); returns it in eval mode."""
    deterministic(DISTIL_SEED, threads)
    say = progress or (lambda message: None)
    first = np.stack([normalise_date(image) for image in before])
    second = np.stack([normalise_date(image) for image in after])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    teacher = ort.InferenceSession(str(teacher_onnx), options, providers=["CPUExecutionProvider"])
    first = np.concatenate([first, np.rot90(first, 1, (2, 3))])
    second = np.concatenate([second, np.rot90(second, 1, (2, 3))])
    targets = np.concatenate([teacher_mean(teacher, first[i:i + 64], second[i:i + 64])
                              for i in range(0, len(first), 64)]).astype(np.float32)
    first, second = np.ascontiguousarray(first), np.ascontiguousarray(second)
    say(f"teacher's four-view logits on {len(first)} crops")

    optimiser = torch.optim.AdamW(student.parameters(), lr=DISTIL_RATE, weight_decay=weight_decay)
    schedule = warmup_cosine(optimiser, steps, steps // 10)
    rng = np.random.default_rng([DISTIL_SEED, 1])
    student.train()
    freeze_norms(student)
    running = 0.0
    for step in range(steps):
        index = rng.integers(0, len(first), DISTIL_BATCH)
        axes = _FLIPS[int(rng.integers(len(_FLIPS)))]
        a, b, target = (torch.from_numpy(np.ascontiguousarray(_flip(x[index], axes)))
                        for x in (first, second, targets))
        loss = torch.nn.functional.mse_loss(student(a, b), target)
        running = smoothed(running, optimisation_step(student, optimiser, schedule, loss), step)
        if step % 100 == 0 or step == steps - 1:
            say(f"step {step + 1}/{steps} loss {running:.4f}")
    return student.eval()
