"""What a monitoring pass stored for a fixed input, as plain JSON: the yardstick of speed-ups.

The input is the built-in ``quick`` scenario (Sanumdong at 0.5 m, about ten images, seed 11),
ingested and monitored with object detection on. The snapshot keeps, per observation, the shift
applied to its chip, its change regions (zone, area, mean probability, bounds), its detections per
class and its indicators. ``tests/data/evidence_snapshot.json`` was written by the code before the
monitor's compute was made faster (issue 18); ``test_monitor_speed.py`` checks that the faster code
stores the same, within float noise. To write it again (only when a change of results is meant):

    .venv/bin/python tests/evidence_snapshot.py tests/data/evidence_snapshot.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from sitewatch.imagery.simulate import load_scenario, simulate
from sitewatch.imagery.simulate.sites import site_by_id
from sitewatch.pipeline.ingest import ingest
from sitewatch.pipeline.monitor import MonitorOptions, run_monitor
from sitewatch.store import Workspace

SEED = 11
SITE = "sanumdong"


def monitored_snapshot(folder: Path) -> dict[str, Any]:
    """Simulate, ingest and monitor the quick scenario under ``folder``; what the store then holds."""
    simulate(load_scenario("quick"), folder / "images", seed=SEED)
    with Workspace.init(folder / "ws", sites=[site_by_id(SITE)]) as workspace:
        report = ingest(workspace, sorted((folder / "images").rglob("*.tif")))
        if not report.ok:
            raise RuntimeError(report.failed[0].message)
        run_monitor(workspace, MonitorOptions(detect_objects=True))
        return snapshot(workspace)


def snapshot(workspace: Workspace) -> dict[str, Any]:
    observations: dict[str, Any] = {}
    for observation in workspace.observations(SITE):
        regions = sorted(
            [region.zone_id or "", round(region.area_m2, 6), round(region.mean_probability, 6),
             [round(v, 3) for v in region.geometry.bounds]]
            for region in workspace.change_regions(observation_id=observation.id))
        detections = Counter(d.class_name for d in workspace.detections(observation_id=observation.id))
        observations[observation.id] = {
            "shift": [round(v, 6) for v in observation.shift],
            "regions": regions,
            "detections": dict(sorted(detections.items())),
        }
    for value in workspace.indicators(SITE):
        indicators = observations[value.observation_id].setdefault("indicators", {})
        indicators[f"{value.zone_id}/{value.name}"] = [value.value, round(value.quality, 9)]
    return observations


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as temporary:
        found = monitored_snapshot(Path(temporary))
    Path(sys.argv[1]).write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
