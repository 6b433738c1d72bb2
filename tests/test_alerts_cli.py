"""``sitewatch monitor`` and ``sitewatch alerts list | show | ack | resolve`` through the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitewatch.app.cli import app, main
from sitewatch.pipeline.ingest import ingest
from sitewatch.store import Workspace
from test_monitor_pipeline import small_site, write_images


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("alerts") / "ws"
    images = write_images(root.parent / "images", 56)
    with Workspace.init(root, sites=[small_site()]) as ws:
        ingest(ws, images)
    result = CliRunner().invoke(app, ["monitor", "-w", str(root), "--false-alarm-rate", "0.05", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["false_alarm_rate"] == 0.05
    assert report["sites"][0]["processed"] == 56
    assert report["sites"][0]["new_alerts"], "the surge should raise an alert"
    return root


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_list_and_show_give_the_evidence(workspace: Path) -> None:
    code, output = _run("alerts", "list", "-w", str(workspace), "--json")
    assert code == 0, output
    alerts = json.loads(output)
    wanted = {"id", "zone_id", "indicator", "value", "baseline", "p_value", "explanation"}
    assert alerts and wanted <= set(alerts[0])
    code, output = _run("alerts", "show", alerts[0]["id"], "-w", str(workspace), "--json")
    assert code == 0, output
    shown = json.loads(output)
    assert shown["history"][0]["state"] == "new"
    assert "track_record" in shown and shown["recent_values"]
    leading = shown["hypotheses"][0]
    assert leading["text"].startswith(leading["likelihood"]) and "LR ≈" in leading["text"]
    code, text = _run("alerts", "show", alerts[0]["id"], "-w", str(workspace))
    assert code == 0 and "p-value" in text and "track record" in text
    assert "hypotheses (most probable first" in text and leading["text"] in text


def test_ack_then_resolve_records_who_and_why(workspace: Path) -> None:
    code, output = _run("alerts", "list", "-w", str(workspace), "--json", "--state", "new")
    alert_id = json.loads(output)[-1]["id"]
    code, output = _run("alerts", "ack", alert_id, "-w", str(workspace), "--who", "ana", "--json")
    assert code == 0 and json.loads(output)["state"] == "acknowledged"
    code, output = _run("alerts", "resolve", alert_id, "--as", "false-alarm", "-w", str(workspace),
                        "--who", "ana", "--comment", "shadows", "--json")
    assert code == 0 and json.loads(output)["state"] == "false_alarm"
    code, output = _run("alerts", "show", alert_id, "-w", str(workspace), "--json")
    history = json.loads(output)["history"]
    assert [h["state"] for h in history] == ["new", "acknowledged", "false_alarm"]
    assert history[-1]["who"] == "ana" and history[-1]["comment"] == "shadows"


def _main(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    """Exit code and stderr of the console entry point, whose error table maps library errors."""
    monkeypatch.setattr(sys, "argv", ["sitewatch", *args])
    with pytest.raises(SystemExit) as exited:
        main()
        raise SystemExit(0)
    return int(exited.value.code or 0), " ".join(capsys.readouterr().err.split())  # unwrapped


def test_triage_records_a_named_analyst_never_the_login(workspace: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from sitewatch.app.commands import alerts as alerts_verbs

    alert_id = json.loads(_run("alerts", "list", "-w", str(workspace), "--json")[1])[0]["id"]
    before = json.loads(_run("alerts", "show", alert_id, "-w", str(workspace), "--json")[1])
    monkeypatch.delenv("SITEWATCH_USER", raising=False)
    for verb in (["ack", alert_id], ["resolve", alert_id, "--as", "confirmed"]):
        code, error = _main(capsys, monkeypatch, "alerts", *verb, "-w", str(workspace))
        assert code == 2 and "--who NAME" in error and "SITEWATCH_USER" in error
    after = json.loads(_run("alerts", "show", alert_id, "-w", str(workspace), "--json")[1])
    assert (after["state"], after["history"]) == (before["state"], before["history"])  # nothing written
    monkeypatch.setenv("SITEWATCH_USER", " cy ")
    assert alerts_verbs._who(None) == "cy" and alerts_verbs._who("ana") == "ana"


def test_refusals_have_meaningful_exit_codes(workspace: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = _run("alerts", "list", "-w", str(workspace), "--json")
    alert_id = json.loads(output)[0]["id"]
    code, error = _main(capsys, monkeypatch, "alerts", "resolve", alert_id, "--as", "maybe",
                        "-w", str(workspace))
    assert code == 4 and "not a verdict" in error  # bad input
    code, _ = _main(capsys, monkeypatch, "alerts", "show", "no-such-alert", "-w", str(workspace))
    assert code == 3  # not found
    code, error = _main(capsys, monkeypatch, "alerts", "resolve", alert_id, "--as", "benign",
                        "-w", str(workspace), "--who", "ana")
    assert code == 4 and "needs a reason" in error  # a dismissal is never recorded without why
    code, output = _run("alerts", "resolve", alert_id, "--as", "benign", "-w", str(workspace), "--who", "ana",
                        "-m", "the staff car park fills on Fridays")
    assert code == 0, output
    code, error = _main(capsys, monkeypatch, "alerts", "ack", alert_id, "-w", str(workspace), "--who", "ana")
    assert code == 7 and "cannot become acknowledged" in error  # the lifecycle refuses: a conflict
    code, output = _run("alerts", "show", alert_id, "-w", str(workspace), "--json")
    assert json.loads(output)["state"] == "benign"


def test_monitor_again_scores_nothing_new(workspace: Path) -> None:
    code, output = _run("monitor", "-w", str(workspace), "--false-alarm-rate", "0.05")
    assert code == 0, output
    assert "Monitoring pass" in output and "Small site" in output


USAGE_ERRORS = {
    (): "a command is needed: one of init",
    ("nosuchverb",): "No such command 'nosuchverb'",
    ("alerts", "lst"): "Did you mean 'list'? No such command 'lst'",
    ("alerts", "show"): "Missing argument 'ID'",
    ("--jsn",): "No such option: --jsn",
    ("ingest", "--bogus"): "No such option: --bogus",
    ("-v", "1"): "No such command '1'",
    ("alerts", "list", "--state", "bogus"): "'bogus' is not an alert state; use one of new,",
    ("alerts", "list", "--state", "benin"): "Did you mean 'benign'? Invalid value for --state",
    ("alerts",): "a command is needed: one of list, show, ack, resolve",
    ("ingest",): "give image files or folders to ingest, or --stac SOURCE, or --repair alone",
    ("ingest", "x.tif", "--repair"): "one of them, not both",
}


@pytest.mark.parametrize("args", list(USAGE_ERRORS), ids=lambda a: " ".join(a) or "sitewatch")
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 16 item 4, issue 17 item 9: no traceback, no help page, the "did you mean" hint first
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys, "argv", ["sitewatch", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    assert exited.value.code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage: "), captured.err
    assert USAGE_ERRORS[args] in lines[0] and "--help" in lines[0]
    assert "Traceback" not in captured.err and not captured.out.strip()


def test_alert_list_keeps_ids_whole_at_80_columns(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 16 item 5: ids are typed into `alerts show`; a cut id ("sohae…") is useless
    monkeypatch.setenv("COLUMNS", "80")
    code, output = _run("alerts", "list", "-w", str(workspace), "--json")
    ids = [alert["id"] for alert in json.loads(output)]
    code, table = _run("alerts", "list", "-w", str(workspace))
    assert code == 0, table
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "…" not in table
    for alert_id in ids:
        assert alert_id in table
