"""What every training run of the project shares: determinism, the learning-rate schedule and the
optimisation step."""

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


def deterministic(seed: int, threads: int) -> None:
    """Seed torch and make it deterministic on ``threads`` threads: the same data and seed give the
    same weights, byte for byte."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def optimisation_step(model: torch.nn.Module, optimiser: torch.optim.Optimizer,
                      schedule: torch.optim.lr_scheduler.LRScheduler, loss: torch.Tensor, *,
                      clip_norm: float | None = None) -> float:
    """One step on ``loss`` (gradients clipped to ``clip_norm`` when given); returns the loss."""
    optimiser.zero_grad()
    loss.backward()
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimiser.step()
    schedule.step()
    return float(loss.detach())


def smoothed(running: float, value: float, step: int) -> float:
    """The running mean of the loss that progress reports show (the first step starts it)."""
    return 0.98 * running + 0.02 * value if step else value
