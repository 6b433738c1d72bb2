"""The workspace change step on simulated imagery: one change evidence per observation, the monitor's."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.core.types import Observation, Scene
from sitewatch.imagery.simulate.render import render_scene
from sitewatch.imagery.simulate.scenario import load_scenario
from sitewatch.imagery.simulate.writer import write_scene
from sitewatch.pipeline.change import detect_change
from sitewatch.pipeline.monitor import MonitorOptions, run_monitor
from sitewatch.store import Workspace, chip_relpath

QUIET = datetime(2019, 1, 10, 2, 15, tzinfo=UTC)
BUSY = datetime(2019, 2, 22, 2, 15, tzinfo=UTC)


def _add(ws: Workspace, scenario_name: str, when: datetime, observation_id: str,
         shift: tuple[int, int]) -> Observation:
    scenario = load_scenario(scenario_name)
    scene = render_scene(scenario, "sanumdong", when, seed=11, cloud_fraction=0.0, shift=shift)
    tif, _ = write_scene(scene, ws.staging_dir(), scenario)
    site = ws.site("sanumdong")
    grid = scene.grid
    record = Scene(
        id=f"sim-{observation_id}", uri=str(tif), sensor=scenario.sensor, acquired=when, gsd=grid.gsd,
        crs=f"EPSG:{grid.epsg}", footprint=site.geometry, bands=("red", "green", "blue"),
        width=grid.width, height=grid.height, checksum=hashlib.sha256(tif.read_bytes()).hexdigest(),
    )
    observation = Observation(observation_id, "sanumdong", record.id, when,
                              chip_relpath("sanumdong", observation_id), 1.0)
    assert ws.add_scene(record, [(observation, tif)])
    return observation


def _regions(ws: Workspace, observation_id: str) -> list[tuple[object, ...]]:
    return [(r.reference_observation_id, r.geometry.wkb, r.area_m2, r.mean_probability, r.zone_id, r.detector)
            for r in ws.change_regions(observation_id=observation_id)]


@pytest.mark.slow
def test_change_evidence_is_the_monitors_whichever_path_stores_it(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    with Workspace.init(root) as ws:
        quiet = [_add(ws, "reference", QUIET + timedelta(days=day), f"obs-quiet-{day}", shift)
                 for day, shift in ((0, (0, 0)), (3, (1, 2)), (6, (-1, 1)))]
        busy = _add(ws, "reference", BUSY, "obs-busy", (2, -3))
        early = detect_change(ws, quiet[-1].id)  # two earlier observations: no reference composite yet
        assert early.skipped is not None and "needs 3" in early.skipped and early.regions == 0
        assert ws.change_regions(observation_id=quiet[-1].id) == []
        outcome = detect_change(ws, busy.id)
        assert outcome.skipped is None, outcome.skipped
        # the monitoring rule: the three earlier good observations, contrast at the site's 0.5 m
        assert outcome.reference_observation_ids == tuple(o.id for o in quiet)
        assert outcome.detector == "contrast" and "object-scale" in outcome.choice and outcome.stored
        assert outcome.registration is not None and outcome.registration.confidence > 0.5
        stored = _regions(ws, busy.id)
        assert outcome.regions == len(stored) > 0
        assert {r[0] for r in stored} == {quiet[-1].id}  # the newest observation of the composite
        assert {r[4] for r in stored} & {z.id for z in ws.site("sanumdong").zones}
        assert ws.observation(busy.id).shift == outcome.registration.shift
        again = detect_change(ws, busy.id)  # a re-run replaces, never adds
        assert again.regions == len(_regions(ws, busy.id)) == len(stored)
        # the monitor stores exactly the same evidence: neither path overwrites the other's with its own
        run_monitor(ws, MonitorOptions(detect_objects=False))
        assert _regions(ws, busy.id) == stored
        assert ws.change_regions(observation_id=quiet[-1].id) == []
    # a what-if by another method or against another reference is shown, not stored
    for extra in (["--method", "cva"], ["--reference", quiet[0].id]):
        command = ["change", "observation", busy.id, "-w", str(root), "--json", *extra]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output
        shown = json.loads(result.output)
        assert shown["stored"] is False and shown["regions"] > 0
    assert shown["reference_observation_id"] == quiet[0].id
    result = CliRunner().invoke(app, ["change", "observation", quiet[-1].id, "-w", str(root)])
    assert result.exit_code == 1 and "not compared" in result.output
    with Workspace.open(root) as ws:
        assert _regions(ws, busy.id) == stored
