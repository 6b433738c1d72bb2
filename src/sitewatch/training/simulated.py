"""Training frames rendered by the scene simulator, with their exact ground truth.

Why: rail cars, cranes and trucks with cylindrical trailers have no freely licensed real
labels here, so the detector learns them from the simulator's drawings (and is validated
only on simulated imagery for them, which the model card and docs say). Images are
rendered cloud-free, because the ground truth lists objects even under cloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from PIL import Image

from sitewatch.imagery.simulate.groundtruth import truth_objects
from sitewatch.imagery.simulate.render import SiteRenderer, effective_gsd
from sitewatch.imagery.simulate.scenario import CloudModel, Scenario, load_scenario
from sitewatch.imagery.simulate.sites import site_by_id
from sitewatch.training.data import TrainingFrame

SIMULATED_PREFIX = "sim-"
"""Names of rendered frames start with this."""
CLEAR_SKY = CloudModel(clear=1.0, partial=0.0, mostly=0.0, full=0.0)


@dataclass(frozen=True, slots=True)
class SimulatedSpec:
    """Which renders to make: a scenario, a seed, and how many dates per site."""

    scenario: str = "reference"
    seed: int = 1
    dates_per_site: int = 8
    gsd: float | None = None
    """Render GSD in metres; None uses the scenario's (never finer than the site grid)."""


def _dates(scenario: Scenario, site_index: int, count: int, rng: np.random.Generator) -> list[date]:
    """Every event's first and last day (the busy ones), then random days of the scenario."""
    plan = scenario.sites[site_index]
    chosen: list[date] = []
    for event in plan.events:
        for day in (event.start, event.end):
            if day not in chosen:
                chosen.append(day)
    span = (scenario.end - scenario.start).days
    while len(chosen) < min(count, span + 1):
        day = scenario.start + timedelta(days=int(rng.integers(span + 1)))
        if day not in chosen:
            chosen.append(day)
    return chosen


def simulated_frames(spec: SimulatedSpec, classes: tuple[str, ...]) -> list[TrainingFrame]:
    """Rendered images of every site of the scenario with boxes of the objects in ``classes``."""
    scenario = load_scenario(spec.scenario)
    rng = np.random.default_rng(spec.seed)
    frames = []
    for index, plan in enumerate(scenario.sites):
        site = site_by_id(plan.site_id)
        renderer = SiteRenderer(site, plan, effective_gsd(site, spec.gsd or scenario.gsd), spec.seed)
        for day in _dates(scenario, index, spec.dates_per_site, rng):
            moment = datetime.combine(day, scenario.acquisition_time).replace(tzinfo=UTC)
            scene = renderer.render_date(moment, CLEAR_SKY)
            boxes, labels = [], []
            for obj in truth_objects(scene):
                if obj.object_class in classes:
                    boxes.append(obj.pixel_box)
                    labels.append(classes.index(obj.object_class))
            frames.append(TrainingFrame(
                name=f"{SIMULATED_PREFIX}{plan.site_id}-{day.isoformat()}",
                image=Image.fromarray(scene.image),
                gsd=scene.grid.gsd,
                boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                classes=np.asarray(labels, np.int64),
            ))
    return frames

