"""CLI verb: ``sitewatch eval detect DIR`` — AP50 and count error on a YOLO, DOTA or iSAID labelled folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from rich.table import Table

from sitewatch.analytics.objects import DEFAULT_DETECTOR, get_detector
from sitewatch.app.options import JsonOption
from sitewatch.evaluation.detect import LabelledImage, PredictedObject, evaluate_folder, threshold_of


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
        float | None, typer.Option(help="Score threshold for counts (default: the detector's own).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Score the object detector: AP at IoU 0.5 per class and per-image count error."""
    detector = get_detector(detector_name)
    info = detector.info
    operating: float | dict[str, float] = info.thresholds() if threshold is None else threshold
    lowest = min(operating.values()) if isinstance(operating, dict) else operating

    def predict(image: LabelledImage) -> list[PredictedObject]:
        with Image.open(image.image_path) as opened:
            pixels = np.asarray(opened.convert("RGB")).transpose(2, 0, 1)
        image_gsd = image.gsd if image.gsd is not None else info.model_gsd
        boxes = detector.detect(pixels, image_gsd, score_threshold=min(0.05, lowest))
        return [PredictedObject(b.class_name, b.score, (b.x0, b.y0, b.x1, b.y1)) for b in boxes]

    report = evaluate_folder(folder, predict, classes=info.classes, score_threshold=operating,
                             detector_name=info.name, gsd=gsd, fmt=label_format)
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    table = Table(title=f"{report.folder} ({report.format}, {report.images} images, "
                        f"GSD from {', '.join(report.gsd_sources)})")
    columns = ("class", "threshold", "AP50", "true", "found", "precision", "recall", "count err/img",
               "rel. count err")
    for column in columns:
        table.add_column(column, justify="left" if column == "class" else "right")
    for c in report.classes:
        table.add_row(c.class_name, f"{threshold_of(operating, c.class_name):.2f}", _fmt(c.ap50),
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
