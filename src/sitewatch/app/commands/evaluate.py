"""CLI verbs: ``sitewatch eval change|detect|...`` (each kind in its own module)."""

from __future__ import annotations

import typer

from sitewatch.app.commands import eval_alerts, eval_change, eval_detect

eval_app = typer.Typer(
    name="eval",
    help="Score detectors and alerts against labelled data.",
    no_args_is_help=True,
)
eval_change.register(eval_app)
eval_detect.register(eval_app)
eval_alerts.register(eval_app)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` verb group to ``app``."""
    app.add_typer(eval_app, name="eval")
