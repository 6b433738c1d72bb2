"""`sitewatch init` and `sitewatch sites ...` through the CLI runner: output, --json and exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitewatch.app.cli import app, main
from sitewatch.app.errors import exit_code_for
from sitewatch.catalog import builtin_sites, catalog_to_geojson, parse_catalog, site_to_feature
from sitewatch.core.errors import CatalogError, NotFoundError, StoreError, WorkspaceNotFoundError
from sitewatch.store import Workspace

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    result = runner.invoke(app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    assert "3 site(s)" in result.output
    return root


def write_catalog(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def new_site_document() -> dict[str, object]:
    feature = site_to_feature(builtin_sites()[0])
    feature["id"] = feature["properties"]["id"] = "sohae-east"  # type: ignore[index]
    feature["properties"]["aliases"] = []  # type: ignore[index]
    return {"type": "FeatureCollection", "features": [feature]}


def test_init_defaults_to_the_environment_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_WORKSPACE", str(tmp_path / "from-env"))
    result = runner.invoke(app, ["init", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"workspace": str(tmp_path / "from-env"),
                                         "sites": ["sanumdong", "sohae", "yongbyon"],
                                         "store": str((tmp_path / "from-env" / "sitewatch.db").resolve())}
    again = runner.invoke(app, ["init"])  # re-running is safe
    assert again.exit_code == 0 and "3 site(s)" in again.output


def test_init_with_own_catalog(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "mine.geojson", new_site_document())
    result = runner.invoke(app, ["init", "-w", str(tmp_path / "w"), "--catalog", str(catalog), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sites"] == ["sohae-east"]


def test_list_table_and_json(workspace: Path) -> None:
    result = runner.invoke(app, ["sites", "list", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    for site_id in ("sohae", "sanumdong", "yongbyon"):
        assert site_id in result.output
    as_json = runner.invoke(app, ["sites", "list", "--workspace", str(workspace), "--json"])
    assert as_json.exit_code == 0
    listed = parse_catalog(json.loads(as_json.output), source="sites list --json")
    assert sorted(listed, key=lambda s: s.id) == sorted(builtin_sites(), key=lambda s: s.id)


def test_show_by_alias_and_json_feature(workspace: Path) -> None:
    result = runner.invoke(app, ["sites", "show", "Tongchang-ri", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    assert "Sohae Satellite Launching Station (sohae)" in result.output
    assert "EPSG:32651" in result.output and "launch_pad" in result.output
    as_json = runner.invoke(app, ["sites", "show", "san'um-dong", "-w", str(workspace), "--json"])
    feature = json.loads(as_json.output)
    assert feature["type"] == "Feature" and feature["properties"]["id"] == "sanumdong"
    with Workspace.open(workspace) as ws:
        assert parse_catalog(feature, source="show --json")[0] == ws.site("sanumdong")


def test_show_unknown_site_exits_3_naming_known_ids(workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    result = runner.invoke(app, ["sites", "show", "atlantis", "-w", str(workspace)])
    assert isinstance(result.exception, NotFoundError)
    assert exit_code_for(result.exception) == 3
    # through the console entry point, as a user runs it
    monkeypatch.setattr(sys, "argv", ["sitewatch", "sites", "show", "atlantis", "-w", str(workspace)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 3
    message = capsys.readouterr().err
    assert "no site 'atlantis'" in message and "sanumdong, sohae, yongbyon" in message


def test_verbs_without_a_workspace_say_run_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["sites", "list"])
    assert isinstance(result.exception, WorkspaceNotFoundError)
    monkeypatch.setattr(sys, "argv", ["sitewatch", "sites", "list"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 3
    assert "sitewatch init" in capsys.readouterr().err


def test_usage_errors_are_a_message_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["sitewatch", "nosuchverb"], ["sitewatch", "-v", "1", "monitor"],
                 ["sitewatch", "sites", "list", "--nosuchoption"]):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 2, argv
        message = capsys.readouterr().err
        assert message.startswith("usage: ") and len(message.strip().splitlines()) == 1, argv
        assert "`sitewatch" in message and "Traceback" not in message, argv


def test_add_then_add_again_needs_replace(workspace: Path, tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "new.geojson", new_site_document())
    result = runner.invoke(app, ["sites", "add", str(catalog), "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    assert "added 1 site(s)" in result.output and "sohae-east" in result.output
    again = runner.invoke(app, ["sites", "add", str(catalog), "-w", str(workspace)])
    assert isinstance(again.exception, StoreError) and exit_code_for(again.exception) == 6
    assert "--replace" in str(again.exception)
    replaced = runner.invoke(app, ["sites", "add", str(catalog), "--replace", "-w", str(workspace), "--json"])
    assert replaced.exit_code == 0 and json.loads(replaced.output)["added"] == ["sohae-east"]
    with Workspace.open(workspace) as ws:
        assert len(ws.sites()) == 4


def test_add_invalid_file_changes_nothing(workspace: Path, tmp_path: Path) -> None:
    document = new_site_document()
    document["features"][0]["properties"]["zones"][0]["kind"] = "pad"  # type: ignore[index]
    catalog = write_catalog(tmp_path / "bad.geojson", document)
    result = runner.invoke(app, ["sites", "add", str(catalog), "-w", str(workspace)])
    assert isinstance(result.exception, CatalogError) and exit_code_for(result.exception) == 4
    with Workspace.open(workspace) as ws:
        assert len(ws.sites()) == 3


def test_validate_good_file_needs_no_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    catalog = write_catalog(tmp_path / "ok.geojson", catalog_to_geojson(builtin_sites()))
    result = runner.invoke(app, ["sites", "validate", str(catalog)])
    assert result.exit_code == 0, result.output
    assert "valid, 3 site(s): sohae, sanumdong, yongbyon" in result.output
    as_json = json.loads(runner.invoke(app, ["sites", "validate", str(catalog), "--json"]).output)
    assert as_json == {"file": str(catalog), "valid": True, "sites": ["sohae", "sanumdong", "yongbyon"],
                       "problems": []}
    assert not (tmp_path / "sitewatch-workspace").exists()


def test_validate_reports_every_problem_and_exits_4(tmp_path: Path) -> None:
    document = catalog_to_geojson(builtin_sites())
    document["features"][0]["properties"]["gsd"] = -1
    document["features"][2]["properties"]["zones"][1]["kind"] = "pad"
    catalog = write_catalog(tmp_path / "bad.geojson", document)
    result = runner.invoke(app, ["sites", "validate", str(catalog)])
    assert result.exit_code == 4
    assert "2 problem(s)" in result.output
    assert "features[0].properties.gsd: -1 must be 0.05 to 100 metres per pixel" in result.output
    assert "features[2].properties.zones[1].kind: 'pad' is not one of: launch_pad" in result.output
    as_json = runner.invoke(app, ["sites", "validate", str(catalog), "--json"])
    assert as_json.exit_code == 4
    report = json.loads(as_json.output)
    assert report["valid"] is False and report["sites"] == [] and len(report["problems"]) == 2


@pytest.mark.parametrize(("content", "message"), [
    (None, "file not found"),
    (b"{not json", "is not valid JSON"),
    (b"", "is not valid JSON"),
])
def test_validate_unreadable_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "catalog.geojson"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["sites", "validate", str(path)])
    assert result.exit_code == 4
    assert message in result.output


def test_init_dir_and_workspace_must_agree(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "a"), "-w", str(tmp_path / "b")])
    assert result.exit_code == 2
    assert "give one" in result.output


@pytest.mark.parametrize("verb", [["init"], ["sites"], ["sites", "list"], ["sites", "show"], ["sites", "add"],
                                  ["sites", "validate"]], ids=" ".join)
def test_every_verb_answers_help(verb: list[str]) -> None:
    result = runner.invoke(app, [*verb, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and ("--workspace" in result.output or verb == ["sites"])
