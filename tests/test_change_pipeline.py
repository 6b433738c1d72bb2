"""The workspace change step on simulated imagery: co-register, normalise, detect, store per zone."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.core.types import Observation, Scene
from sitewatch.imagery.simulate.render import render_scene
from sitewatch.imagery.simulate.scenario import load_scenario
from sitewatch.imagery.simulate.writer import write_scene
from sitewatch.pipeline.change import detect_change
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


@pytest.mark.slow
def test_change_regions_are_stored_against_the_reference(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        _add(ws, "reference", QUIET, "obs-quiet", (0, 0))
        busy = _add(ws, "reference", BUSY, "obs-busy", (2, -3))
        outcome = detect_change(ws, busy.id)
        assert outcome.skipped is None, outcome.skipped
        # 0.5 m chips with bands named red, green, blue: the learned model, as before the one rule
        assert outcome.detector == "learned" and outcome.bands == ("red", "green", "blue")
        assert "RGB bands by name" in outcome.choice
        assert outcome.reference_observation_id == "obs-quiet"
        assert outcome.registration is not None and outcome.registration.confidence > 0.5
        stored = ws.change_regions(observation_id=busy.id)
        assert outcome.regions == len(stored) > 0
        assert all(r.reference_observation_id == "obs-quiet" and r.area_m2 >= 10 for r in stored)
        assert {r.zone_id for r in stored} & {z.id for z in ws.site("sanumdong").zones}
        again = detect_change(ws, busy.id)  # a re-run replaces, never adds
        assert again.regions == len(ws.change_regions(observation_id=busy.id)) == len(stored)
    # the same from the command line, once more: still replaces
    result = CliRunner().invoke(app, ["change", "observation", busy.id, "-w", str(tmp_path / "ws"),
                                      "--method", outcome.detector, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["regions"] == len(stored)
    with Workspace.open(tmp_path / "ws") as ws:
        assert len(ws.change_regions(observation_id=busy.id)) == len(stored)
