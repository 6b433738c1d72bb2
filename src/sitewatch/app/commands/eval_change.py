"""CLI verb: ``sitewatch eval change DIR`` — pooled pixel scores of every change detector and of
the pipeline's default choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sitewatch.analytics.change.learned import ChangeModelCard, LearnedBuildings
from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace
from sitewatch.evaluation.change import DEFAULT_METHOD, discover_pairs, evaluate_methods
from sitewatch.evaluation.folders import not_trained_on
from sitewatch.pipeline.models import workspace_change_card

WORKSPACE_METHOD = "learned (workspace)"


def change(
    folder: Annotated[
        Path, typer.Argument(help="LEVIR-style folder (A/ B/ label/), a sparse-mask pair folder "
                                  "(two rasters + change.bmp + unchanged.bmp), or a folder of them.")
    ],
    methods: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help=f"Detector to score, or '{DEFAULT_METHOD}' for the method the "
                                            "pipeline picks per pair (repeatable; default: every registered "
                                            f"method that runs on the pairs, and {DEFAULT_METHOD})."),
    ] = None,
    gsd: Annotated[
        float | None,
        typer.Option(help="Metres per pixel of pairs whose files do not say (PNG/JPEG pairs); default: "
                          "gsd.txt or data.yaml (gsd: 0.5) in the folder, else unknown. Georeferenced "
                          "rasters keep their own."),
    ] = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Precision, recall, F1, IoU, overall accuracy and kappa of the changed class, pooled over all pairs.

    Every operating point is a fixed rule (Otsu, k-means boundary, chi-square test) applied to each
    pair on its own: no method sees the labels. 'default' is the method the pipeline would choose
    for each pair from its GSD and band names (with the shipped models), and is named by what it
    chose. Where the workspace has a change model fine-tuned on its users' pairs (`sitewatch train
    change --pairs`), it is scored too, as `learned (workspace)` beside the shipped `learned`; on a
    folder it was fine-tuned on, only the pairs it did not train on count.
    """
    pairs = list(discover_pairs(folder, gsd=gsd))
    card = workspace_change_card(resolve_workspace(workspace))
    left_out: list[str] = []
    extra: list[tuple[str, LearnedBuildings]] = []
    if card.is_file() and (not methods or "learned" in methods):
        extra.append(("learned", LearnedBuildings(name=WORKSPACE_METHOD, model=card)))
        training = ChangeModelCard.from_dict(json.loads(card.read_text(encoding="utf-8")), str(card)).training
        pairs, left_out = not_trained_on(folder, pairs, training, kind="pairs")
    evaluation = evaluate_methods(pairs, methods, extra=extra)
    scores = evaluation.scores
    scored_workspace = any(score.method == WORKSPACE_METHOD for score in scores)
    labelled = sum(int(p.labelled.sum()) for p in pairs)
    if json_output:
        typer.echo(json.dumps({
            "folder": str(folder),
            "pairs": [p.name for p in pairs],
            "inputs": {p.name: {"gsd": p.gsd, "gsd_source": p.gsd_source, "bands": list(p.bands)}
                       for p in pairs},
            "labelled_pixels": labelled,
            "metric": "changed class, confusion counts pooled over all pairs",
            "methods": [score.as_dict() for score in scores],
            "not_scored": [{"method": name, "reason": why} for name, why in evaluation.not_scored],
            **({"workspace_model": str(card), "pairs_trained_on_left_out": left_out}
               if scored_workspace else {}),
        }, indent=2))
        return
    table = Table(title=f"{folder}: {len(pairs)} pairs, {labelled:,} labelled pixels (pooled)")
    for column in ("method", "precision", "recall", "F1", "IoU", "OA", "kappa", "seconds"):
        table.add_column(column, justify="left" if column == "method" else "right",
                         no_wrap=column == "method")
    for score in scores:
        pooled = score.pooled
        flag = " *" if score.outside_gsd_range else ""
        table.add_row(score.label + flag, f"{pooled.precision:.3f}", f"{pooled.recall:.3f}",
                      f"{pooled.f1:.3f}", f"{pooled.iou:.3f}", f"{pooled.overall_accuracy:.3f}",
                      f"{pooled.kappa:.3f}", f"{score.seconds:.1f}")
    Console().print(table)
    typer.echo("operating points (fixed rules, no labels):")
    for score in scores:
        typer.echo(f"  {score.method}: {score.rule}")
    gsds = sorted({f"{p.gsd:g} m ({p.gsd_source})" if p.gsd is not None else "unknown" for p in pairs})
    typer.echo(f"GSD of the pairs: {', '.join(gsds)}")
    for name, why in evaluation.not_scored:
        typer.echo(f"not scored: {name} ({why})")
    if any(score.outside_gsd_range for score in scores):
        typer.echo("* scored on pairs outside the GSD range the method declares")
    if scored_workspace:
        typer.echo(f"{WORKSPACE_METHOD}: {card}, fine-tuned from the shipped learned model")
    if left_out:
        typer.echo(f"left out {len(left_out)} pairs the workspace model was trained on: "
                   f"{', '.join(left_out)}")


def register(app: typer.Typer) -> None:
    """Add ``change`` to the ``eval`` verb group passed in."""
    app.command("change")(change)
