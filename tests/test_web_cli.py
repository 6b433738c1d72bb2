"""The `users` and `serve` verbs, through a Typer app they register on (as app/cli.py does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sitewatch.app.commands import serve, users
from sitewatch.store.users import UserStore, workspace_engine
from sitewatch.store.workspace import Workspace


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    users.register(app)
    serve.register(app)
    return app


def test_users_add_list_token(cli: typer.Typer, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    Workspace.init(root, sites=[]).close()
    runner = CliRunner()
    added = runner.invoke(
        cli, ["users", "add", "ana", "--role", "analyst", "--password", "long-enough", "-w", str(root)]
    )
    assert added.exit_code == 0, added.output
    assert "added user ana (analyst)" in added.output
    listed = runner.invoke(cli, ["users", "list", "--json", "-w", str(root)])
    assert [(u["name"], u["role"]) for u in json.loads(listed.output)] == [("ana", "analyst")]
    issued = runner.invoke(cli, ["users", "token", "ana", "--json", "-w", str(root)])
    token = json.loads(issued.output)["token"]
    with Workspace.open(root) as ws:
        assert UserStore(workspace_engine(ws)).user_for_token(token).name == "ana"
    prompted = runner.invoke(
        cli, ["users", "add", "vic", "-w", str(root)], input="pass-word-1\npass-word-1\n"
    )
    assert prompted.exit_code == 0 and "added user vic (viewer)" in prompted.output


def test_bad_role_is_a_usage_error(cli: typer.Typer, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    Workspace.init(root, sites=[]).close()
    result = CliRunner().invoke(
        cli, ["users", "add", "x", "--role", "boss", "--password", "long-enough", "-w", str(root)]
    )
    assert result.exit_code == 2 and "boss" in result.output


def test_serve_help_names_its_options(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--workspace", "--host", "--port", "--workers"):
        assert option in result.output
