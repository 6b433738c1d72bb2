"""Detections over a workspace: a simulated chip in, per-zone detections in the site CRS out."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rasterio
from shapely.geometry import box

from sitewatch.analytics.objects import get_detector
from sitewatch.core.types import Observation, Scene
from sitewatch.imagery.simulate.groundtruth import truth_objects
from sitewatch.imagery.simulate.render import render_scene
from sitewatch.imagery.simulate.scenario import load_scenario
from sitewatch.imagery.simulate.writer import write_scene
from sitewatch.pipeline.detect import detect_observation, zone_counts
from sitewatch.store import Workspace, chip_relpath

WHEN = datetime(2019, 2, 22, 2, 15, tzinfo=UTC)


@pytest.mark.slow
def test_detections_are_stored_per_zone_in_the_site_crs(tmp_path: Path) -> None:
    scenario = load_scenario("reference")
    # seed 11: not one of the seeds the shipped model was trained (7) or measured (8) on
    scene = render_scene(scenario, "sanumdong", WHEN, seed=11, cloud_fraction=0.0, shift=(0, 0))
    truth = Counter((o.zone, o.object_class) for o in truth_objects(scene))
    with Workspace.init(tmp_path / "ws") as ws:
        tif, _ = write_scene(scene, ws.staging_dir(), scenario)
        site = ws.site("sanumdong")
        grid = scene.grid
        record = Scene(
            id="sim-sanumdong-20190222", uri=str(tif), sensor=scenario.sensor, acquired=WHEN, gsd=grid.gsd,
            crs=f"EPSG:{grid.epsg}", footprint=site.geometry, bands=("red", "green", "blue"),
            width=grid.width, height=grid.height, checksum=hashlib.sha256(tif.read_bytes()).hexdigest(),
        )
        observation = Observation("obs-1", "sanumdong", record.id, WHEN,
                                  chip_relpath("sanumdong", "obs-1"), 1.0)
        assert ws.add_scene(record, [(observation, tif)])

        summary = detect_observation(ws, observation)
        stored = ws.detections(observation_id="obs-1")
        assert summary.count == len(stored) > 0
        with rasterio.open(ws.chip_path(observation)) as chip:
            bounds = box(*chip.bounds)
            assert chip.crs.to_epsg() == site.utm_epsg
        assert all(bounds.buffer(1).contains(d.geometry) for d in stored)
        assert {d.class_name for d in stored} <= set(get_detector().info.classes)
        assert all(d.detector == "vehicles" and 0 < d.score <= 1 for d in stored)

        # Zone ids are those of the site, given where a box centre lies in a zone. (Accuracy on
        # simulated imagery is measured in the model card, not asserted here: see docs/detector.md.)
        zone_ids = {z.id for z in site.zones}
        assert {d.zone_id for d in stored} - {None} <= zone_ids
        assert sum(zone_counts(stored, c).get(z, 0) for c in {d.class_name for d in stored}
                   for z in [*zone_ids, None]) == len(stored)
        assert truth[("parking", "car")] > 10

        again = detect_observation(ws, observation)  # a re-run replaces, never adds
        assert again.count == summary.count == len(ws.detections(observation_id="obs-1"))
