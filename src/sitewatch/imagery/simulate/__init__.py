"""The scene simulator: realistic, seeded, georeferenced time series of sites, with ground truth.

``load_scenario`` reads a scenario (built-in ``reference`` or ``quick``, or a YAML file),
``simulate`` renders all of it into a folder of GeoTIFFs + STAC items + ``ground_truth.json``,
``load_ground_truth`` reads that back, and ``render_scene`` / ``SiteRenderer`` render in memory
(for detector training). Documented in docs/simulator.md.
"""

from sitewatch.imagery.simulate.activity import SceneObject
from sitewatch.imagery.simulate.groundtruth import (
    EventTruth,
    GroundTruth,
    ImageTruth,
    TruthObject,
    load_ground_truth,
    truth_objects,
)
from sitewatch.imagery.simulate.render import Conditions, RenderedScene, SiteRenderer, render_scene
from sitewatch.imagery.simulate.run import SimulationResult, simulate
from sitewatch.imagery.simulate.scenario import (
    OBJECT_CLASSES,
    Scenario,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "OBJECT_CLASSES",
    "Conditions",
    "EventTruth",
    "GroundTruth",
    "ImageTruth",
    "RenderedScene",
    "Scenario",
    "ScenarioError",
    "SceneObject",
    "SimulationResult",
    "SiteRenderer",
    "TruthObject",
    "builtin_scenarios",
    "load_ground_truth",
    "load_scenario",
    "parse_scenario",
    "render_scene",
    "simulate",
    "truth_objects",
]
