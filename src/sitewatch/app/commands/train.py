"""CLI verbs: ``sitewatch train detector|change CONFIG`` (need the ``train`` extra, i.e. torch)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sitewatch.app.options import JsonOption
from sitewatch.core.errors import UnsupportedInputError

train_app = typer.Typer(
    name="train",
    help="Train the project's own models (needs torch: pip install 'sitewatch[train]').",
    no_args_is_help=True,
)


@train_app.command("detector")
def detector(
    config: Annotated[Path, typer.Argument(help="Training config YAML, e.g. configs/detector.yaml.")],
    json_output: JsonOption = False,
) -> None:
    """Train the vehicle detector, export ONNX + model card, print the checksum and held-out scores."""
    try:
        # torch is an optional extra: import the training package only when asked to train.
        from sitewatch.training.config import load_config
        from sitewatch.training.detector import train_detector
    except ImportError as error:
        raise _needs_torch(error) from None
    settings = load_config(config)
    err = Console(stderr=True)
    started = time.monotonic()

    def progress(step: int, loss: float) -> None:
        err.print(f"step {step + 1}/{settings.steps} loss {loss:.3f} ({time.monotonic() - started:.0f} s)",
                  highlight=False)

    result = train_detector(settings, progress=progress)
    summary = {
        "onnx": str(result.onnx_path),
        "card": str(result.card_path),
        "sha256": result.sha256,
        "parameters": result.parameters,
        "seconds": round(result.seconds, 1),
        "holdout": result.holdout,
    }
    if json_output:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"wrote {result.onnx_path} ({result.parameters} parameters) and {result.card_path}")
    typer.echo(f"sha256 {result.sha256}")
    for source, measured in result.holdout.items():
        if not isinstance(measured, dict):
            continue
        for class_name, scores in measured.items():
            if isinstance(scores, dict):
                typer.echo(f"held-out {source} {class_name}: AP50 {_fmt(scores.get('ap50'))}, "
                           f"mean relative count error {_fmt(scores.get('mean_rel_count_error'))}")


@train_app.command("change")
def change(
    config: Annotated[Path, typer.Argument(help="Training config YAML, e.g. configs/change.yaml.")],
    json_output: JsonOption = False,
) -> None:
    """Train the building-change model on synthetic pairs, export ONNX + model card, print the checksum."""
    try:
        from sitewatch.training.change import load_change_config, train_change
    except ImportError as error:
        raise _needs_torch(error) from None
    settings = load_change_config(config)
    err = Console(stderr=True)
    result = train_change(settings, progress=lambda message: err.print(message, highlight=False))
    summary = {
        "onnx": str(result.onnx_path),
        "card": str(result.card_path),
        "sha256": result.sha256,
        "parameters": result.parameters,
        "seconds": round(result.seconds, 1),
        "synthetic_validation": result.validation,
    }
    if json_output:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"wrote {result.onnx_path} ({result.parameters} parameters) and {result.card_path}")
    typer.echo(f"sha256 {result.sha256}")
    scores = result.validation
    typer.echo(f"synthetic validation pairs: precision {_fmt(scores['precision'])}, "
               f"recall {_fmt(scores['recall'])}, F1 {_fmt(scores['f1'])}")


def _needs_torch(error: ImportError) -> UnsupportedInputError:
    return UnsupportedInputError(
        f"training needs torch ({error}); install it with: pip install 'sitewatch[train]'"
    )


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def register(app: typer.Typer) -> None:
    """Add the ``train`` verb group to ``app``."""
    app.add_typer(train_app, name="train")
