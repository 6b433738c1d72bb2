"""CLI verbs: ``sitewatch train detector|change CONFIG`` train the shipped models; ``sitewatch train
detector --data DIR`` / ``train change --pairs DIR`` fine-tune them on the user's own labels into a
workspace. All need the ``train`` extra (torch)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sitewatch.app.commands.eval_detect import print_comparison
from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.store.settings import SETTINGS_FILE
from sitewatch.store.workspace import models_dir

train_app = typer.Typer(
    name="train",
    help="Train the project's own models (needs torch: pip install 'sitewatch[train]').",
    no_args_is_help=True,
)


@train_app.command("detector")
def detector(
    config: Annotated[
        Path | None,
        typer.Argument(help="Training config YAML to train from scratch, e.g. configs/detector.yaml "
                            "(or give --data to fine-tune on your own frames).", show_default=False),
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Folder of your labelled frames, YOLO or DOTA as `sitewatch eval "
                                    "detect` reads them (repeatable): fine-tunes the shipped model into the "
                                    "workspace.",
                     show_default=False),
    ] = None,
    validation: Annotated[
        list[Path] | None,
        typer.Option("--validation", help="Folder of held-out labelled frames (repeatable; default: a fifth "
                                          "of the --data frames, chosen by name).", show_default=False),
    ] = None,
    workspace: WorkspaceOption = None,
    gsd: Annotated[float | None, typer.Option(help="Metres per pixel of your frames (default: as "
                                                   "`sitewatch eval detect` reads it).")] = None,
    label_format: Annotated[str, typer.Option("--format", help="auto, yolo or dota.")] = "auto",
    steps: Annotated[int | None, typer.Option(help="Fine-tuning steps (default 600).", min=0)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the fine-tuning run.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default 1).", min=1)] = None,
    json_output: JsonOption = False,
) -> None:
    """Train the vehicle detector from a CONFIG, or fine-tune it on your own labelled frames (--data).

    With --data the shipped model is fine-tuned on the CPU and written with its card to the workspace's
    models/ folder; the workspace's detection step and `sitewatch eval detect` use it from then on. The
    held-out frames choose its score threshold and show its scores before and after.
    """
    if config is not None and data:
        raise typer.BadParameter("give either a training CONFIG (trains the shipped model from scratch) or "
                                 "--data DIR (fine-tunes it on your frames), not both",
                                 param_hint="'CONFIG' / '--data'")
    if config is None:
        if not data:
            raise typer.BadParameter("give a training CONFIG (e.g. configs/detector.yaml) or --data DIR with "
                                     "your labelled frames", param_hint="'CONFIG' / '--data'")
        _fine_tune_detector(data, validation or [], resolve_workspace(workspace), gsd=gsd, fmt=label_format,
                            steps=steps, seed=seed, threads=threads, json_output=json_output)
        return
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


def _models_folder(root: Path) -> Path:
    """The workspace's models/ folder; a folder that is not a workspace yet gets one with a note."""
    if root.exists() and not root.is_dir():
        raise UnsupportedInputError(f"workspace {root} is a file; give a workspace folder with -w")
    if not (root / SETTINGS_FILE).is_file():
        Console(stderr=True).print(
            f"note: {root} is not a workspace yet; the model goes to {models_dir(root)} and `sitewatch init "
            f"{root}` keeps it", highlight=False)
    return models_dir(root)


def _fine_tune_detector(data: list[Path], validation: list[Path], root: Path, *, gsd: float | None, fmt: str,
                        steps: int | None, seed: int | None, threads: int | None, json_output: bool) -> None:
    try:
        from sitewatch.training.finetune import FineTuneSettings, fine_tune_detector
    except ImportError as error:
        raise _needs_torch(error) from None
    default = FineTuneSettings()
    settings = FineTuneSettings(gsd=gsd, label_format=fmt, steps=default.steps if steps is None else steps,
                                seed=default.seed if seed is None else seed,
                                threads=default.threads if threads is None else threads)
    err = Console(stderr=True)
    result = fine_tune_detector(data, _models_folder(root), validation=validation, settings=settings,
                                progress=lambda message: err.print(message, highlight=False))
    before_threshold, after_threshold = result.thresholds
    if json_output:
        typer.echo(json.dumps({
            "onnx": str(result.onnx_path), "card": str(result.card_path), "sha256": result.sha256,
            "seconds": round(result.seconds, 1),
            "frames": {"training": list(result.train_frames), "held_out": list(result.validation_frames)},
            "thresholds": {"before": before_threshold, "after": after_threshold},
            "before": result.before, "after": result.after,
        }, indent=2))
        return
    typer.echo(f"fine-tuned on {len(result.train_frames)} frames in {result.seconds:.0f} s; wrote "
               f"{result.onnx_path} and {result.card_path.name} (sha256 {result.sha256[:12]}...)")
    classes = {k: v for k, v in result.after.items() if isinstance(v, dict)}
    learnt = [c for c in classes if c in after_threshold]
    print_comparison(
        f"{len(result.validation_frames)} held-out frames ({', '.join(result.validation_frames)}): before = "
        f"shipped model (thresholds {_thresholds(before_threshold, learnt)}), after = fine-tuned "
        f"(thresholds {_thresholds(after_threshold, learnt)})",
        {k: v for k, v in result.before.items() if isinstance(v, dict)}, classes,
    )
    typer.echo(f"the workspace {root} now detects with it; `sitewatch eval detect DIR -w {root}` compares "
               "both models")


@train_app.command("change")
def change(
    config: Annotated[
        Path | None,
        typer.Argument(help="Training config YAML to train from scratch, e.g. configs/change.yaml "
                            "(or give --pairs to fine-tune on your own pairs).", show_default=False),
    ] = None,
    pairs: Annotated[
        list[Path] | None,
        typer.Option("--pairs", help="Folder of your labelled pairs, LEVIR style (A/ B/ label/) as "
                                     "`sitewatch eval change` reads them (repeatable): fine-tunes the "
                                     "shipped learned model into the workspace.", show_default=False),
    ] = None,
    validation: Annotated[
        list[Path] | None,
        typer.Option("--validation", help="Folder of held-out labelled pairs (repeatable; default: a fifth "
                                          "of the --pairs pairs, chosen by name).", show_default=False),
    ] = None,
    workspace: WorkspaceOption = None,
    steps: Annotated[int | None, typer.Option(help="Fine-tuning steps (default 600).", min=0)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the fine-tuning run.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default 1).", min=1)] = None,
    json_output: JsonOption = False,
) -> None:
    """Train the building-change model from a CONFIG, or fine-tune it on your own labelled pairs (--pairs).

    With --pairs the shipped learned model is fine-tuned on the CPU and written with its card to the
    workspace's models/ folder; the workspace's `learned` change method and `sitewatch eval change` use
    it from then on. The held-out pairs show its pooled scores before and after.
    """
    if config is not None and pairs:
        raise typer.BadParameter("give either a training CONFIG (trains the shipped model from scratch) or "
                                 "--pairs DIR (fine-tunes it on your pairs), not both",
                                 param_hint="'CONFIG' / '--pairs'")
    if config is None:
        if not pairs:
            raise typer.BadParameter("give a training CONFIG (e.g. configs/change.yaml) or --pairs DIR with "
                                     "your labelled pairs", param_hint="'CONFIG' / '--pairs'")
        _fine_tune_change(pairs, validation or [], resolve_workspace(workspace), steps=steps, seed=seed,
                          threads=threads, json_output=json_output)
        return
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


def _fine_tune_change(pairs: list[Path], validation: list[Path], root: Path, *, steps: int | None,
                      seed: int | None, threads: int | None, json_output: bool) -> None:
    try:
        from sitewatch.training.change_finetune import ChangeFineTuneSettings, fine_tune_change
    except ImportError as error:
        raise _needs_torch(error) from None
    default = ChangeFineTuneSettings()
    settings = ChangeFineTuneSettings(steps=default.steps if steps is None else steps,
                                      seed=default.seed if seed is None else seed,
                                      threads=default.threads if threads is None else threads)
    err = Console(stderr=True)
    result = fine_tune_change(pairs, _models_folder(root), validation=validation, settings=settings,
                              progress=lambda message: err.print(message, highlight=False))
    if json_output:
        typer.echo(json.dumps({
            "onnx": str(result.onnx_path), "card": str(result.card_path), "sha256": result.sha256,
            "seconds": round(result.seconds, 1),
            "pairs": {"training": list(result.train_pairs), "held_out": list(result.validation_pairs)},
            "before": result.before, "after": result.after,
        }, indent=2))
        return
    typer.echo(f"fine-tuned on {len(result.train_pairs)} pairs in {result.seconds:.0f} s; wrote "
               f"{result.onnx_path} and {result.card_path.name} (sha256 {result.sha256[:12]}...)")
    typer.echo(f"{len(result.validation_pairs)} held-out pairs ({', '.join(result.validation_pairs)}), "
               "pooled:")
    for label, scores in (("before (shipped)", result.before), ("after (fine-tuned)", result.after)):
        typer.echo(f"  {label:<18} precision {_fmt(scores['precision'])}, recall {_fmt(scores['recall'])}, "
                   f"F1 {_fmt(scores['f1'])}, IoU {_fmt(scores['iou'])}")
    typer.echo(f"the workspace {root} now runs it for the `learned` change method; `sitewatch eval change "
               f"DIR -w {root}` compares both models")


def _thresholds(thresholds: dict[str, float], classes: list[str]) -> str:
    return ", ".join(f"{c} {thresholds[c]:.2f}" for c in classes)


def _needs_torch(error: ImportError) -> UnsupportedInputError:
    return UnsupportedInputError(
        f"training needs torch ({error}); install it with: pip install 'sitewatch[train]'"
    )


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def register(app: typer.Typer) -> None:
    """Add the ``train`` verb group to ``app``."""
    app.add_typer(train_app, name="train")
