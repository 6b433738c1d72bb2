"""Every CLI verb answers --help, and verbs that list or report things offer --json."""

from __future__ import annotations

import sys

import click
import pytest
import typer
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.core.errors import UnsupportedInputError

# Verbs whose output is a listing or a report: they must offer machine-readable output.
JSON_VERBS = {
    ("sites", "list"),
    ("sites", "show"),
    ("sites", "validate"),
    ("ingest",),
    ("simulate",),
    ("monitor",),
    ("check",),
    ("alerts", "list"),
    ("alerts", "show"),
    ("report",),
    ("eval", "change"),
    ("change", "observation"),
    ("change", "scene"),
    ("eval", "detect"),
    ("eval", "alerts"),
    ("export", "stac"),
}


Path = tuple[str, ...]


def _commands(command: click.Command, path: Path = ()) -> list[tuple[Path, click.Command]]:
    found = [(path, command)]
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            found.extend(_commands(sub, (*path, name)))
    return found


ROOT = typer.main.get_command(app)
ALL = _commands(ROOT)


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=lambda p: " ".join(p) or "sitewatch")
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize("path", sorted(JSON_VERBS), ids=" ".join)
def test_listing_verbs_offer_json(path: tuple[str, ...]) -> None:
    commands = dict(ALL)
    if path not in commands:
        pytest.fail(f"verb 'sitewatch {' '.join(path)}' is missing")
    options = {opt for param in commands[path].params for opt in getattr(param, "opts", [])}
    assert "--json" in options, f"'sitewatch {' '.join(path)}' has no --json option"


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("sitewatch ")


TRAINING_VERBS = (["train", "detector", "--data", "frames"], ["train", "change", "--pairs", "pairs"],
                  ["train", "detector", "configs/detector.yaml"])


@pytest.mark.parametrize("args", TRAINING_VERBS, ids=" ".join)
def test_training_without_torch_says_how_to_install_it(args: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the `train` extra were not installed: importing the training modules fails.
    for module in ("torch", "sitewatch.training.finetune", "sitewatch.training.change_finetune",
                   "sitewatch.training.config", "sitewatch.training.detector"):
        monkeypatch.setitem(sys.modules, module, None)
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, UnsupportedInputError)
    assert "pip install 'sitewatch[train]'" in str(result.exception)
