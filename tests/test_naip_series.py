"""A real image series through the whole pipeline, as a user runs it: NAIP North Dakota, 10 dates.

Ten USDA NAIP images (2009-2020) of prairie-pothole farmland, 4 bands (red, green, blue, NIR)
resampled to 5 m, on grids that jitter by up to 3 m between dates (../shared/data/
naip_north_dakota_timeseries). Nothing is built there: its only changes are crops, harvest and
water. The site (tests/data/naip_north_dakota_site.geojson) is a control site; docs/monitoring.md
("A real series: NAIP North Dakota") reports what the monitor made of it.
"""

from __future__ import annotations

import itertools
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.imagery.chips import read_chip
from sitewatch.imagery.coregister import CoregistrationError, estimate_shift
from sitewatch.store import Workspace

SITE = Path(__file__).parent / "data" / "naip_north_dakota_site.geojson"
DATES = [date(2009, 8, 18), date(2010, 6, 29), date(2012, 7, 31), date(2014, 7, 20), date(2015, 9, 26),
         date(2016, 8, 16), date(2017, 8, 27), date(2018, 7, 16), date(2019, 9, 4), date(2020, 8, 31)]
BANDS = ("red", "green", "blue", "nir")
ALIGNED_PX = 1.0
"""Largest shift between consecutive dates' chips: one 5 m pixel, NAIP's own positional accuracy."""


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.shared_data
def test_naip_series_is_ingested_aligned_and_monitored(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "naip_north_dakota_timeseries"
    root = str(tmp_path / "ws")
    _cli("init", root)
    _cli("sites", "add", str(SITE), "-w", root)
    ingested = json.loads(_cli("ingest", str(folder), "--bands", ",".join(BANDS), "-w", root, "--json"))
    assert (ingested["ingested"], ingested["failed"]) == (10, 0)
    monitored = json.loads(_cli("monitor", "-w", root, "-j", "1", "--json"))
    alerts = json.loads(_cli("alerts", "list", "-w", root, "--json"))

    with Workspace.open(Path(root)) as ws:
        observations = ws.observations("naip-nd-control")
        scenes = [ws.scene(o.scene_id) for o in observations]
        chips = [read_chip(ws.chip_path(o)) for o in observations]
        values = ws.indicators("naip-nd-control")
        detections = ws.detections(site_id="naip-nd-control")

    # Ten dates from the file names; four named bands kept from the scene into every chip.
    assert [o.acquired.date() for o in observations] == DATES
    assert all(s.bands == BANDS and s.gsd == pytest.approx(5.0) and s.crs == "EPSG:26914" for s in scenes)
    assert all(c.bands == BANDS and c.array.dtype == np.uint8 for c in chips)
    assert len({c.array.shape for c in chips}) == 1 and all(o.valid_fraction > 0.7 for o in observations)

    # Aligned: the jittered grids were resampled onto one site grid, and consecutive dates agree within
    # a pixel wherever a shift can be measured; the shift the monitor applied is recorded and as small.
    measured = []
    for before, after in itertools.pairwise(chips):
        try:
            shift = estimate_shift(before.array.astype(np.float32), after.array.astype(np.float32),
                                   valid_reference=before.valid, valid_moving=after.valid).shift
        except CoregistrationError:
            continue
        measured.append(float(np.hypot(*shift)))
    assert len(measured) >= 7 and max(measured) <= ALIGNED_PX, measured
    assert all(np.hypot(*o.shift) <= ALIGNED_PX for o in observations)
    assert all(o.shift_confidence is None for o in observations if o.shift == (0.0, 0.0))

    # 5 m is outside the vehicle detector's 0.1-1 m: skipped, and its objects are not observed, not zero.
    site = next(s for s in monitored["sites"] if s["site_id"] == "naip-nd-control")
    if monitored["object_detection"]:
        assert site["detection_skipped"] == 10 and "got 5.0 m" in site["detection_skipped_reason"]
    assert detections == []
    names = {v.name for v in values}
    assert not any(name.startswith("count_") for name in names) and "changed_objects" not in names

    # Change and NDVI are measured on every date with a reference of three earlier ones (from the 4th).
    zones = {"central_lake", "west_wetland", "east_fields", "north_fields"}
    for name in ("changed_area_m2", "ndvi_mean"):
        seen = {(v.observation_id, v.zone_id) for v in values if v.name == name and v.value is not None}
        assert seen == {(o.id, zone) for o in observations[3:] for zone in zones}, name

    # At most one alert at the workspace's false-alarm rate on a series of seasonal and water change only.
    assert monitored["false_alarm_rate"] == 0.01
    assert len([a for a in alerts if a["site_id"] == "naip-nd-control"]) <= 1, alerts
