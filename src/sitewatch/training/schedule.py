"""The learning-rate schedule both of the project's models train with."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    optimiser: torch.optim.Optimizer, steps: int, warmup: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps to the optimiser's rate, then a cosine decay to zero at
    ``steps``: a short warm-up keeps the first batches' large gradients from upsetting batch norm."""
    warmup = max(1, warmup)

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
