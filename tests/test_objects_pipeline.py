"""Detections over a workspace: a simulated chip in, per-zone detections in the site CRS out."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from sitewatch.analytics.objects import DetectorInfo, get_detector
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.types import Observation, Scene, Site
from sitewatch.imagery.chips import Chip, write_chip
from sitewatch.imagery.grid import site_grid
from sitewatch.imagery.simulate.groundtruth import truth_objects
from sitewatch.imagery.simulate.render import render_scene
from sitewatch.imagery.simulate.scenario import load_scenario
from sitewatch.imagery.simulate.writer import write_scene
from sitewatch.pipeline.detect import detect_observation, detection_problem, select_bands, zone_counts
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


def _chip(bands: tuple[str, ...]) -> Chip:
    array = np.stack([np.full((8, 8), index, np.uint8) for index in range(len(bands))])
    return Chip(array=array, valid=np.ones((8, 8), bool), bands=bands)


def test_rgb_bands_are_picked_by_name_never_guessed() -> None:
    rgb = ("red", "green", "blue")
    assert select_bands(_chip(("blue", "green", "red", "nir")), rgb)[:, 0, 0].tolist() == [2, 1, 0]
    assert select_bands(_chip(("Red", "Green", "Blue", "NIR")), rgb)[:, 0, 0].tolist() == [0, 1, 2]
    assert select_bands(_chip(("b1", "b2", "b3")), rgb)[:, 0, 0].tolist() == [0, 1, 2]  # RGB by convention
    with pytest.raises(UnsupportedInputError, match=r"unnamed.*--bands red,green,blue,nir"):
        select_bands(_chip(("b1", "b2", "b3", "b4")), rgb)  # BGRN or RGBN: a guess
    with pytest.raises(UnsupportedInputError, match="needs red, green, blue"):
        select_bands(_chip(("pan",)), rgb)


def test_a_coarse_image_is_not_observed_even_on_a_fine_grid() -> None:
    info = DetectorInfo("vehicles", ("car",), ("red", "green", "blue"), (0.1, 1.0), 0.15, 0.5)
    rgb = ("red", "green", "blue")
    assert detection_problem(info, grid_gsd=0.5, image_gsd=0.5, bands=rgb) is None
    assert "got 5.0 m" in (detection_problem(info, grid_gsd=0.5, image_gsd=5.0, bands=rgb) or "")
    assert "got 5.0 m" in (detection_problem(info, grid_gsd=5.0, image_gsd=5.0, bands=rgb) or "")
    assert "unnamed" in (detection_problem(info, grid_gsd=0.5, image_gsd=0.5,
                                           bands=("b1", "b2", "b3", "b4")) or "")


def test_detection_at_5_m_is_skipped_and_stores_nothing(tmp_path: Path) -> None:
    site = Site("coarse", "Coarse site", "US", "test", box(-99.15, 47.01, -99.14, 47.02), gsd=5.0)
    grid = site_grid(site)
    with Workspace.init(tmp_path / "ws", sites=[site]) as ws:
        path = ws.staging_dir() / "chip.tif"
        pixels = np.random.default_rng(3).integers(20, 200, (4, *grid.shape)).astype(np.uint8)
        write_chip(Chip(pixels, np.ones(grid.shape, bool), ("red", "green", "blue", "nir")), grid, path)
        record = Scene(id="naip-like", uri=str(path), sensor="naip", acquired=WHEN, gsd=5.0, crs=grid.crs,
                       footprint=site.geometry, bands=("red", "green", "blue", "nir"), width=grid.width,
                       height=grid.height, checksum="0" * 64)
        observation = Observation("obs-5m", "coarse", record.id, WHEN, chip_relpath("coarse", "obs-5m"), 1.0)
        assert ws.add_scene(record, [(observation, path)])
        summary = detect_observation(ws, observation)
        assert summary.skipped is not None
        assert "0.05-1.0 m" in summary.skipped and "got 5.0 m" in summary.skipped
        assert (summary.count, summary.per_zone, summary.classes) == (0, {}, ())
        assert ws.detections(observation_id="obs-5m") == []
