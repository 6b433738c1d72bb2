"""README, docs/web.md and docs/deploy.md stay true: every `sitewatch ...` and `make ...` line exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer

from sitewatch.app.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
WEB_DOCS = (ROOT / "docs" / "web.md").read_text(encoding="utf-8")
DEPLOY = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
CODE_LINES = [
    line.split("#", 1)[0].strip()
    for text in (README, WEB_DOCS, DEPLOY)
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    for line in block.splitlines()
]


def _verb_path(words: list[str]) -> tuple[str, ...]:
    command: click.Command = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        if not hasattr(command, "commands") or word not in command.commands:
            break
        command = command.commands[word]
        path.append(word)
    return tuple(path)


@pytest.mark.parametrize("line", [line for line in CODE_LINES if line.startswith("sitewatch ")])
def test_readme_sitewatch_commands_exist(line: str) -> None:
    words = shlex.split(line)[1:]
    path = _verb_path(words)
    assert path, f"README shows `{line}` but sitewatch has no verb {words[0]!r}"
    command: click.Command = typer.main.get_command(app)
    for word in path:
        assert hasattr(command, "commands")
        command = command.commands[word]
    leftovers = [w for w in words[len(path):] if w.startswith("-")]
    known = {opt for param in command.params
             for opt in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]}
    unknown = [w for w in leftovers if w.split("=", 1)[0] not in known]
    assert not unknown, f"README shows `{line}` with unknown option(s) {unknown}"


@pytest.mark.parametrize("line", [line for line in CODE_LINES if line.startswith("make ")])
def test_readme_make_targets_exist(line: str) -> None:
    target = line.split()[1]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), f"Makefile has no target {target!r}"
