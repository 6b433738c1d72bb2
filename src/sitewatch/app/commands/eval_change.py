"""CLI verb: ``sitewatch eval change DIR`` — pooled pixel scores of every change detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sitewatch.analytics.change import change_detectors, get_change_detector
from sitewatch.app.options import JsonOption
from sitewatch.evaluation.change import discover_pairs, evaluate_change


def change(
    folder: Annotated[
        Path, typer.Argument(help="LEVIR-style folder (A/ B/ label/), a sparse-mask pair folder "
                                  "(two rasters + change.bmp + unchanged.bmp), or a folder of them.")
    ],
    methods: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help="Detector to score (repeatable; default: all registered)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Precision, recall, F1, IoU, overall accuracy and kappa of the changed class, pooled over all pairs.

    Every operating point is a fixed rule (Otsu, k-means boundary, chi-square test) applied to each
    pair on its own: no method sees the labels.
    """
    names = methods or change_detectors()
    detectors = [get_change_detector(name) for name in names]
    pairs = list(discover_pairs(folder))
    scores = evaluate_change(pairs, detectors)
    labelled = sum(int(p.labelled.sum()) for p in pairs)
    if json_output:
        typer.echo(json.dumps({
            "folder": str(folder),
            "pairs": [p.name for p in pairs],
            "labelled_pixels": labelled,
            "metric": "changed class, confusion counts pooled over all pairs",
            "methods": [score.as_dict() for score in scores],
        }, indent=2))
        return
    table = Table(title=f"{folder}: {len(pairs)} pairs, {labelled:,} labelled pixels (pooled)")
    for column in ("method", "precision", "recall", "F1", "IoU", "OA", "kappa", "seconds"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for score in scores:
        pooled = score.pooled
        flag = " *" if score.outside_gsd_range else ""
        table.add_row(score.method + flag, f"{pooled.precision:.3f}", f"{pooled.recall:.3f}",
                      f"{pooled.f1:.3f}", f"{pooled.iou:.3f}", f"{pooled.overall_accuracy:.3f}",
                      f"{pooled.kappa:.3f}", f"{score.seconds:.1f}")
    Console().print(table)
    typer.echo("operating points (fixed rules, no labels):")
    for score in scores:
        typer.echo(f"  {score.method}: {score.rule}")
    if any(score.outside_gsd_range for score in scores):
        typer.echo("* scored on pairs outside the GSD range the method declares")


def register(app: typer.Typer) -> None:
    """Add ``change`` to the ``eval`` verb group passed in."""
    app.command("change")(change)
