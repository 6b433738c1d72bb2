"""CLI verb: ``sitewatch eval detect DIR`` — AP50 and count error on a YOLO, DOTA or iSAID labelled
folder, before and after fine-tuning where the workspace has a fine-tuned detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from rich.table import Table

from sitewatch.analytics.objects import DEFAULT_DETECTOR, DetectorInfo, ObjectDetector, get_detector
from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace
from sitewatch.evaluation.detect import (
    DetectionReport,
    LabelledImage,
    PredictedObject,
    evaluate_folder,
    read_folder,
    threshold_of,
)
from sitewatch.evaluation.folders import not_trained_on
from sitewatch.pipeline.models import workspace_detector, workspace_model_card


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.3f}"


def detect(
    folder: Annotated[Path, typer.Argument(help="Folder of labelled images (YOLO, DOTA or iSAID format).")],
    label_format: Annotated[str, typer.Option("--format", help="auto, yolo, dota or isaid.")] = "auto",
    gsd: Annotated[
        float | None,
        typer.Option(help="Metres per pixel of the images (default: DOTA header, data.yaml/gsd.txt, "
                          "or estimated from the labelled car sizes)."),
    ] = None,
    detector_name: Annotated[
        str, typer.Option("--detector", help="Registered detector name.")
    ] = DEFAULT_DETECTOR,
    threshold: Annotated[
        float | None, typer.Option(help="Score threshold for counts (default: each class's own).")
    ] = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Score the object detector: AP at IoU 0.5 per class and per-image count error.

    Where the workspace has a vehicle detector fine-tuned on its users' labels (`sitewatch train
    detector --data`), both are scored side by side: before (the shipped model) and after (the
    workspace's); on a folder it was fine-tuned on, only the frames it did not train on count.
    """
    shipped = get_detector(detector_name)
    tuned = workspace_detector(resolve_workspace(workspace)) if detector_name == DEFAULT_DETECTOR else None
    if tuned is None:
        report = _evaluate(shipped, folder, label_format, gsd, threshold)
        if json_output:
            typer.echo(json.dumps(report.to_dict(), indent=2))
            return
        _print_report(report, shipped.info)
        return
    _, labelled = read_folder(folder, gsd=gsd, fmt=label_format)
    images, trained = not_trained_on(folder, labelled, tuned.card.training, kind="frames")
    before = _evaluate(shipped, folder, label_format, gsd, threshold, images)
    after = _evaluate(tuned, folder, label_format, gsd, threshold, images)
    card = workspace_model_card(resolve_workspace(workspace))
    if json_output:
        typer.echo(json.dumps({"folder": str(folder), "workspace_model": str(card),
                               "frames_trained_on_left_out": trained,
                               "before": before.to_dict(), "after": after.to_dict()}, indent=2))
        return
    title = (f"{before.folder} ({before.format}, {before.images} images, GSD from "
             f"{', '.join(before.gsd_sources)}): before = shipped model (thresholds "
             f"{_thresholds(before)}), after = {card} (thresholds {_thresholds(after)})")
    print_comparison(title, _classes(before), _classes(after))
    if trained:
        typer.echo(f"left out {len(trained)} frames the workspace model was trained on: {', '.join(trained)}")


def _evaluate(detector: ObjectDetector, folder: Path, label_format: str, gsd: float | None,
              threshold: float | None, images: list[LabelledImage] | None = None) -> DetectionReport:
    info = detector.info
    operating: float | dict[str, float] = info.thresholds() if threshold is None else threshold
    lowest = min(operating.values()) if isinstance(operating, dict) else operating

    def predict(image: LabelledImage) -> list[PredictedObject]:
        with Image.open(image.image_path) as opened:
            pixels = np.asarray(opened.convert("RGB")).transpose(2, 0, 1)
        image_gsd = image.gsd if image.gsd is not None else info.model_gsd
        boxes = detector.detect(pixels, image_gsd, score_threshold=min(0.05, lowest))
        return [PredictedObject(b.class_name, b.score, (b.x0, b.y0, b.x1, b.y1)) for b in boxes]

    return evaluate_folder(folder, predict, classes=info.classes, score_threshold=operating,
                           detector_name=info.name, gsd=gsd, fmt=label_format, images=images)


def _thresholds(report: DetectionReport) -> str:
    """The report's operating thresholds, one or per scored class, for a title."""
    if isinstance(report.score_threshold, float | int):
        return f"{report.score_threshold:.2f}"
    return ", ".join(f"{c.class_name} {threshold_of(report.score_threshold, c.class_name):.2f}"
                     for c in report.classes)


def _classes(report: DetectionReport) -> dict[str, dict[str, Any]]:
    classes = report.to_dict()["classes"]
    return dict(classes) if isinstance(classes, dict) else {}


def print_comparison(title: str, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    """One table of per-class scores before and after fine-tuning (``sitewatch eval detect`` and
    ``sitewatch train detector --data`` print the same)."""
    table = Table(title=title)
    for column in ("class", "model", "true", "AP50", "precision", "recall", "rel. count err"):
        table.add_column(column, justify="left" if column in ("class", "model") else "right")
    for class_name in [c for c in after if c in before]:
        for label, scores in (("before", before[class_name]), ("after", after[class_name])):
            table.add_row(class_name if label == "before" else "", label, str(scores.get("ground_truth", "")),
                          _fmt(scores.get("ap50")), _fmt(scores.get("precision")), _fmt(scores.get("recall")),
                          _fmt(scores.get("mean_rel_count_error"), True))
    Console().print(table)


def _print_report(report: DetectionReport, info: DetectorInfo) -> None:
    table = Table(title=f"{report.folder} ({report.format}, {report.images} images, "
                        f"GSD from {', '.join(report.gsd_sources)})")
    columns = ("class", "threshold", "AP50", "true", "found", "precision", "recall", "count err/img",
               "rel. count err")
    for column in columns:
        table.add_column(column, justify="left" if column == "class" else "right")
    for c in report.classes:
        table.add_row(c.class_name, f"{threshold_of(report.score_threshold, c.class_name):.2f}", _fmt(c.ap50),
                      str(c.ground_truth), str(c.predicted), _fmt(c.precision),
                      _fmt(c.recall), f"{c.mean_abs_count_error:.2f}", _fmt(c.mean_rel_count_error, True))
    Console().print(table)
    for class_name in [c.class_name for c in report.classes]:
        parts = [f"{c.condition.replace('_', ' ')} {_fmt(c.recall)} ({c.found}/{c.ground_truth})"
                 for c in report.conditions if c.class_name == class_name]
        if parts:
            typer.echo(f"{class_name} recall: {', '.join(parts)}")
    unvalidated = [c.class_name for c in report.classes if c.class_name not in info.validated_on_real]
    if unvalidated:
        typer.echo(f"note: {', '.join(unvalidated)} not validated on real imagery for detector {info.name!r}")


def register(app: typer.Typer) -> None:
    """Add ``detect`` to the ``eval`` verb group passed in."""
    app.command("detect")(detect)
