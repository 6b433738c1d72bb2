"""CLI verbs: ``sitewatch eval change|detect|...`` (each kind in its own module).

The kinds' modules load numpy, onnxruntime and the evaluation harnesses at import (their
options name registry defaults), so the group imports them only when it runs
(:func:`~sitewatch.app.lazy.lazy_group`).
"""

from __future__ import annotations

import typer

from sitewatch.app.lazy import lazy_group


def _commands() -> typer.Typer:
    from sitewatch.app.commands import eval_alerts, eval_change, eval_detect

    commands = typer.Typer()
    eval_change.register(commands)
    eval_detect.register(commands)
    eval_alerts.register(commands)
    return commands


eval_app = typer.Typer(
    name="eval",
    help="Score detectors and alerts against labelled data.",
    no_args_is_help=True,
    cls=lazy_group(_commands),
)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` verb group to ``app``."""
    app.add_typer(eval_app, name="eval")
