"""One bad chip never stops alerting: it is skipped and flagged, `check` finds it, `ingest --repair`
(or a re-ingest of its source) recreates it (issue 17, item 1)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.app.web import serialize
from sitewatch.imagery.readers import sha256_file
from sitewatch.pipeline.evidence import SiteEvidence
from sitewatch.pipeline.ingest import FileStatus, check_chips, ingest
from sitewatch.pipeline.monitor import MonitorOptions, run_monitor
from sitewatch.store import Workspace
from sitewatch.store import schema as t
from test_monitor_pipeline import small_site, write_images

OPTIONS = MonitorOptions(false_alarm_rate=0.05, detect_objects=False)
TWIN = dataclasses.replace(small_site(), id="twin", name="Twin site")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_images(tmp_path_factory.mktemp("images"), 16)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _scored(ws: Workspace, site_id: str) -> set[str]:
    return {v.observation_id for v in ws.indicators(site_id)}


def test_a_truncated_chip_is_flagged_and_every_other_observation_still_scored(images: list[Path],
                                                                              tmp_path: Path) -> None:
    root = tmp_path / "ws"
    with Workspace.init(root, sites=[small_site(), TWIN]) as ws:
        ingest(ws, images[:10])
        run_monitor(ws, OPTIONS)
        latest = ws.observations("smallsite")[-1]  # the newest: a reference of the next observations
        assert latest.chip_sha256 == sha256_file(ws.chip_path(latest))  # kept at ingest
        chip = ws.chip_path(latest)
    os.truncate(chip, 5000)
    with Workspace.open(root) as ws:
        ingest(ws, images[10:])
    code, output = _run("monitor", "-w", str(root), "--false-alarm-rate", "0.05", "--json", "-j", "1")
    assert code == 0, output
    sites = {s["site_id"]: s for s in json.loads(output)["sites"]}
    assert sites["twin"]["flagged"] == [] and sites["twin"]["processed"] == 6
    flagged = sites["smallsite"]["flagged"]
    assert [f["observation_id"] for f in flagged] == [latest.id]
    assert "checksum recorded at ingest" in flagged[0]["problem"] and str(root) not in flagged[0]["problem"]
    with Workspace.open(root) as ws:
        new = {o.id for o in ws.observations("smallsite")[10:]}
        assert new <= _scored(ws, "smallsite")  # every other observation scored, with other references
        assert len(_scored(ws, "twin")) == 16
        shown = serialize.observation(ws.observation(latest.id))
        assert shown["problem"] == flagged[0]["problem"]  # the API says why

    code, output = _run("monitor", "-w", str(root), "--false-alarm-rate", "0.05")
    assert code == 0 and "flagged, not scored:" in output and "ingest --repair" in output

    code, output = _run("check", "-w", str(root), "--json")
    assert code == 5, output
    assert [b["observation_id"] for b in json.loads(output)["broken"]] == [latest.id]

    code, output = _run("ingest", "--repair", "-w", str(root), "--json")
    assert code == 0, output
    report = json.loads(output)
    assert (report["repaired"], report["failed"]) == (1, 0)
    with Workspace.open(root) as ws:
        repaired = ws.observation(latest.id)
        assert repaired.problem is None and repaired.chip_sha256 == sha256_file(chip)
    code, output = _run("check", "-w", str(root))
    assert code == 0 and "0 missing or corrupt" in output, output
    code, output = _run("ingest", "--repair", "-w", str(root))
    assert code == 0 and "nothing to repair" in output  # re-runnable


def test_reingesting_the_source_recreates_a_deleted_chip(images: list[Path], tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", sites=[small_site(), TWIN]) as ws:
        ingest(ws, images[:3])
        observation = ws.observations("twin")[1]
        original = ws.chip_path(observation).read_bytes()
        ws.chip_path(observation).unlink()
        report = ingest(ws, images[:3])
        assert [o.status for o in report.outcomes] == [FileStatus.SKIPPED, FileStatus.REPAIRED,
                                                       FileStatus.SKIPPED]
        assert report.repaired[0].site_ids == ("twin",)
        assert ws.chip_path(observation).read_bytes() == original  # the same chip, cut again
        assert not check_chips(ws) and not any(ws.staging_dir().iterdir())


def test_chips_from_before_checksums_are_decoded_then_get_one(images: list[Path], tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", sites=[small_site()]) as ws:
        ingest(ws, images[:3])
        with ws.engine.begin() as connection:  # as a workspace migrated from before checksums
            connection.execute(sa.update(t.observations).values(chip_sha256=None))
        first, second, _ = ws.observations()
        os.truncate(ws.chip_path(second), 5000)
        broken = check_chips(ws)
        assert [b.observation.id for b in broken] == [second.id] and "cannot be read" in broken[0].problem
        assert ws.observation(first.id).chip_sha256 == sha256_file(ws.chip_path(first))  # found whole
        assert ws.observation(second.id).problem == broken[0].problem


def test_an_observation_whose_evidence_step_fails_is_flagged_the_rest_scored(
        images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Workspace.init(tmp_path / "ws", sites=[small_site(), TWIN]) as ws:
        ingest(ws, images[:8])
        bad = ws.observations("smallsite")[5]
        observe = SiteEvidence.observe

        def failing(self: SiteEvidence, observation, *args, **kwargs):  # type: ignore[no-untyped-def]
            if observation.id == bad.id:
                raise MemoryError("Unable to allocate 38.7 GiB")
            return observe(self, observation, *args, **kwargs)

        monkeypatch.setattr(SiteEvidence, "observe", failing)
        report = run_monitor(ws, OPTIONS)
        outcome = {s.site_id: s for s in report.sites}
        assert [o for o, _ in outcome["smallsite"].flagged] == [bad.id]
        assert "MemoryError" in outcome["smallsite"].flagged[0][1]
        assert _scored(ws, "smallsite") == {o.id for o in ws.observations("smallsite")} - {bad.id}
        assert len(_scored(ws, "twin")) == 8
        monkeypatch.setattr(SiteEvidence, "observe", observe)
        again = run_monitor(ws, OPTIONS)  # flagged: waits for --full or a repair, not retried each pass
        assert again.sites[0].processed == 0
        run_monitor(ws, dataclasses.replace(OPTIONS, full=True))
        assert ws.observation(bad.id).problem is None and bad.id in _scored(ws, "smallsite")
