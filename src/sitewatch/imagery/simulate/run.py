"""Simulate a whole scenario into a folder: images, STAC items and ground truth, with a checksum.

Re-running with the same scenario and seed into the same folder rewrites byte-identical files
and reports the same checksum, which tests pin to catch any change in what the simulator draws.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.parallel import Scheduler, run_jobs
from sitewatch.imagery.simulate.groundtruth import (
    GROUND_TRUTH_FILE,
    SCHEMA_VERSION,
    ImageTruth,
    event_to_json,
    event_truth,
    image_to_json,
    truth_objects,
)
from sitewatch.imagery.simulate.render import SiteRenderer, effective_gsd, site_seed
from sitewatch.imagery.simulate.scenario import Scenario, SiteScenario
from sitewatch.imagery.simulate.schedule import acquisition_time, revisit_dates
from sitewatch.imagery.simulate.sites import site_by_id
from sitewatch.imagery.simulate.writer import file_digest, write_scene

Progress = Callable[[int, int, str], None]
"""Called after each image with (done, total, what was just written)."""

PINNED_MAX_CLOUD = 0.25
"""Pinned dates stand for images an analyst chose, so they are mostly clear."""


@dataclass(frozen=True, slots=True)
class SimulationResult:
    folder: Path
    scenario: str
    seed: int
    images: tuple[ImageTruth, ...]
    checksum: str
    """SHA-256 over every written file's digest and the ground truth: equal runs give equal checksums."""
    seconds: float
    ground_truth: Path

    @property
    def image_count(self) -> int:
        return len(self.images)


class _Counter:
    """Counts rendered images across sites for the progress callback."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self.progress = 0, total, progress

    def step(self, label: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, label)


def _render_site(site_id: str, plan: SiteScenario, site_gsd: float, days: Sequence[date], scenario: Scenario,
                 seed: int, folder: Path, on_image: Callable[[str], None]) -> list[ImageTruth]:
    """Render and write every revisit of one site; its images' ground truth, in date order."""
    site = site_by_id(site_id)
    renderer = SiteRenderer(site, plan, site_gsd, seed)
    time_rng = site_seed(seed, site.id, 5)
    pinned = set(plan.pinned_dates)
    images = []
    for day in days:
        when = acquisition_time(scenario, day, time_rng)
        scene = renderer.render_date(
            when, scenario.clouds, max_cloud=PINNED_MAX_CLOUD if day in pinned else 1.0
        )
        tif, _ = write_scene(scene, folder / site.id, scenario)
        dy, dx = scene.conditions.shift
        grid = scene.grid
        images.append(
            ImageTruth(
                site_id=site.id,
                acquired=scene.conditions.when,
                file=tif.relative_to(folder).as_posix(),
                crs=f"EPSG:{grid.epsg}",
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                gsd=grid.gsd,
                shift_px=(dy, dx),
                shift_m=(dx * grid.gsd, -dy * grid.gsd),
                cloud_fraction=scene.cloud_fraction,
                sun_elevation=scene.conditions.sun.elevation,
                sun_azimuth=scene.conditions.sun.azimuth,
                off_nadir=scene.conditions.off_nadir,
                view_azimuth=scene.conditions.view_azimuth,
                objects=truth_objects(scene),
            )
        )
        on_image(tif.relative_to(folder).as_posix())
    return images


def simulate(
    scenario: Scenario,
    out_dir: str | Path,
    *,
    seed: int,
    gsd: float | None = None,
    progress: Progress | None = None,
    scheduler: Scheduler | None = None,
) -> SimulationResult:
    """Render every revisit of every site of ``scenario`` into ``out_dir``.

    ``scheduler`` (default: in this process) renders sites side by side, one task per site; the images,
    ground truth and checksum are the same wherever they run (every site has its own seeded random
    streams).

    ``gsd`` overrides the scenario's GSD for every site; by default each site is rendered at the
    scenario's GSD but never finer than its catalog grid (Sohae's grid is 1 m).
    """
    if gsd is not None and not (0.1 <= gsd <= 10.0):
        raise UnsupportedInputError(f"--gsd {gsd} is outside 0.1..10 metres; choose e.g. 0.5")
    started = time.perf_counter()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    plans = []
    for plan in scenario.sites:
        site = site_by_id(plan.site_id)
        days = revisit_dates(scenario, plan, site_seed(seed, site.id, 4))
        plans.append((site, plan, days))
    total = sum(len(days) for _, _, days in plans)
    images: list[ImageTruth] = []
    digests = hashlib.sha256()
    jobs = [(site.id, plan, gsd if gsd is not None else effective_gsd(site, scenario.gsd), days,
             scenario, seed, folder) for site, plan, days in plans]
    counter = _Counter(total, progress)
    per_site = run_jobs(_render_site, jobs, scheduler or Scheduler(), on_message=counter.step,
                        names=[f"simulate-{site.id}" for site, _, _ in plans])
    for site_images in per_site:  # in the scenario's site order, whatever order they finished in
        images.extend(site_images)
        for image in site_images:
            tif = folder / image.file
            for path in (tif, tif.with_suffix(".json")):
                digests.update(f"{path.relative_to(folder).as_posix()} {file_digest(path)}\n".encode())
    events = [event_truth(plan.site_id, event) for plan in scenario.sites for event in plan.events]
    body = {
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario.name,
        "seed": seed,
        "images": [image_to_json(i) for i in images],
        "events": [event_to_json(e) for e in events],
    }
    truth_text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    digests.update(hashlib.sha256(truth_text.encode()).hexdigest().encode())
    checksum = digests.hexdigest()
    truth_path = folder / GROUND_TRUTH_FILE
    _remove_stale(folder, truth_path, {i.file for i in images})
    partial = truth_path.with_name(truth_path.name + ".partial")
    partial.write_text(
        json.dumps({**body, "checksum": checksum}, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    partial.replace(truth_path)
    return SimulationResult(
        folder=folder,
        scenario=scenario.name,
        seed=seed,
        images=tuple(images),
        checksum=checksum,
        seconds=time.perf_counter() - started,
        ground_truth=truth_path,
    )


def _remove_stale(folder: Path, truth_path: Path, keep: set[str]) -> None:
    """Delete images (and their STAC items) an earlier run listed here that this run did not write."""
    if not truth_path.is_file():
        return
    try:
        previous = json.loads(truth_path.read_text("utf-8"))
        listed = [str(i["file"]) for i in previous.get("images", [])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return
    for name in listed:
        if name in keep or ".." in Path(name).parts:
            continue
        image = folder / name
        for stale in (image, image.with_suffix(".json")):
            if stale.is_file():
                stale.unlink()
