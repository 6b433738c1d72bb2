"""The monitoring pass over a real (small, synthetic) workspace: alerts, incremental = full re-run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from sitewatch.core.types import AlertState, Site, Zone, ZoneKind
from sitewatch.imagery.grid import site_grid
from sitewatch.pipeline.evidence import EvidenceOptions, SiteEvidence
from sitewatch.pipeline.ingest import ingest
from sitewatch.pipeline.monitor import MonitorOptions, run_monitor
from sitewatch.store import Workspace

LON, LAT = 125.78, 39.07
D = 0.0015
START = datetime(2018, 6, 1, 2, 0, tzinfo=UTC)
SURGE_INDEX = 52


def small_site() -> Site:
    zones = (
        Zone("yard", "Truck yard", ZoneKind.PARKING, box(LON, LAT, LON + D / 2, LAT + D)),
        Zone("hall", "Assembly hall", ZoneKind.ASSEMBLY_HALL, box(LON + D / 2, LAT, LON + D, LAT + D)),
    )
    outline = box(LON, LAT, LON + D, LAT + D)
    return Site("smallsite", "Small site", "KP", "industrial", outline, zones, gsd=1.0)


def write_images(folder: Path, count: int, seed: int = 1,
                 surges: tuple[int, ...] = (SURGE_INDEX,)) -> list[Path]:
    """GeoTIFFs on the site grid: fixed ground texture, a few vehicles a day, a surge on each of ``surges``
    (indexes)."""
    site = small_site()
    grid = site_grid(site)
    rng = np.random.default_rng(seed)
    ground = rng.normal(110, 12, grid.shape)
    ground[20:40, 20:60] = 180  # a building
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        when = START + timedelta(days=4 * index + int(rng.integers(0, 3)))
        image = ground * rng.uniform(0.9, 1.1) + rng.normal(0, 3, grid.shape)
        vehicles = int(rng.poisson(3)) + (25 if index in surges else 0)
        for _ in range(vehicles):
            r, c = int(rng.integers(50, grid.height - 6)), int(rng.integers(5, grid.width - 12))
            image[r:r + 3, c:c + 8] = 240
        pixels = np.clip(np.stack([image, image * 0.95, image * 0.9]), 0, 255).astype(np.uint8)
        path = folder / f"smallsite_{when:%Y%m%dT%H%M%SZ}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height, count=3,
                           dtype="uint8", crs=grid.crs, transform=grid.transform) as dataset:
            dataset.write(pixels)
            dataset.descriptions = ("red", "green", "blue")
        paths.append(path)
    return paths


def _workspace(root: Path, images: list[Path]) -> Workspace:
    ws = Workspace.init(root, sites=[small_site()])
    report = ingest(ws, images)
    assert len(ws.observations()) == len(images), report
    return ws


def _snapshot(ws: Workspace) -> tuple[dict, dict]:
    indicators = {(v.observation_id, v.zone_id, v.name): (v.value, v.quality)
                  for v in ws.indicators("smallsite")}
    alerts = {a.id: (a.observation_id, a.indicator, a.zone_id, round(a.p_value or 1.0, 12), a.value)
              for a in ws.alerts()}
    return indicators, alerts


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_images(tmp_path_factory.mktemp("images"), 60)


OPTIONS = MonitorOptions(false_alarm_rate=0.05, detect_objects=False)


def test_surge_is_alerted_with_its_evidence(images: list[Path], tmp_path: Path) -> None:
    with _workspace(tmp_path / "ws", images) as ws:
        report = run_monitor(ws, OPTIONS)
        alerts = ws.alerts()
        surge_day = ws.observations("smallsite")[SURGE_INDEX]
        observed = {v.observation_id for v in ws.indicators("smallsite")}
    assert len(observed) == 60
    assert report.sites[0].processed == 60
    surge = [a for a in alerts if a.observation_id == surge_day.id]
    assert surge, [(a.acquired, a.explanation) for a in alerts]
    alert = surge[0]
    assert alert.state is AlertState.NEW and alert.p_value is not None and alert.p_value < 0.04
    assert alert.zone_id in ("yard", "hall") and alert.value > alert.baseline
    assert "Small site" in alert.explanation and "earlier observations" in alert.explanation
    assert alert.hypotheses and "Hypotheses: " in alert.explanation  # stored with the alert, named in its why
    assert abs(sum(h.probability for h in alert.hypotheses) - 1.0) < 1e-6
    assert len(alerts) <= 6  # quiet days at α = 0.05 over 60 observations: a handful at most


def test_the_evidence_step_writes_nothing_and_is_what_the_monitor_stores(images: list[Path],
                                                                          tmp_path: Path) -> None:
    with _workspace(tmp_path / "ws", images[:12]) as ws:
        site, observations = ws.site("smallsite"), ws.observations("smallsite")
        revision = ws.revision()
        options = EvidenceOptions(min_valid_fraction=ws.settings.min_valid_fraction)
        step = SiteEvidence(site, observations, {s.id: s for s in ws.scenes(site.id)}, ws.chip_path, options)
        found = [step.observe(o, observations[:i]) for i, o in enumerate(observations)]
        assert ws.revision() == revision  # nobody committed anything
        assert ws.indicators(site.id) == [] and ws.change_regions(site_id=site.id) == []
        assert all(e.change is None and "needs 3" in (e.change_skipped or "") for e in found[:3])
        for index, evidence in enumerate(found[3:], start=3):
            assert evidence.change is not None, evidence.change_skipped
            assert evidence.change.reference_ids == tuple(o.id for o in observations[index - 3:index])
            assert evidence.change.detector == "contrast" and evidence.registration is not None
        run_monitor(ws, OPTIONS)
        for evidence in found:
            observation = evidence.observation
            regions = evidence.change.regions if evidence.change is not None else ()
            assert ws.change_regions(observation_id=observation.id) == list(regions)
            stored = {v for v in ws.indicators(site.id) if v.observation_id == observation.id}
            assert stored == set(evidence.indicators(site, min_visible_fraction=options.min_valid_fraction))
            kept = ws.observation(observation.id)
            assert evidence.record().registration == (kept.shift, kept.shift_confidence)


def test_incremental_passes_equal_one_full_pass(images: list[Path], tmp_path: Path) -> None:
    with _workspace(tmp_path / "once", images) as ws:
        run_monitor(ws, OPTIONS)
        once = _snapshot(ws)
    with _workspace(tmp_path / "steps", images[:35]) as ws:
        first = run_monitor(ws, OPTIONS)
        ingest(ws, images[35:])
        second = run_monitor(ws, OPTIONS)
        third = run_monitor(ws, OPTIONS)
        steps = _snapshot(ws)
    assert first.sites[0].processed == 35 and second.sites[0].processed == 25
    assert third.sites[0].processed == 0 and not third.new_alerts
    assert steps[0] == once[0]
    assert steps[1] == once[1]


def test_feedback_changes_later_scores_not_recorded_alerts(images: list[Path], tmp_path: Path) -> None:
    with _workspace(tmp_path / "ws", images) as ws:
        run_monitor(ws, OPTIONS)
        before = {a.id for a in ws.alerts()}
        for alert in ws.alerts():
            ws.set_alert_state(alert.id, AlertState.CONFIRMED, who="tester")
        again = run_monitor(ws, OPTIONS)
        after = {a.id for a in ws.alerts()}
    assert before <= after  # analysts' alerts are never dropped
    assert again.sites[0].processed == 0


def test_sites_in_worker_processes_give_the_same_result(images: list[Path], tmp_path: Path) -> None:
    import dataclasses

    from sitewatch.core.errors import ValidationError
    from sitewatch.core.parallel import Scheduler

    twin = dataclasses.replace(small_site(), id="twin", name="Twin site")
    results = []
    for workers in (1, 2):
        with Workspace.init(tmp_path / f"w{workers}", sites=[small_site(), twin]) as ws:
            ingest(ws, images[:30])
            seen: list[tuple[str, int, int]] = []

            def note(site: str, done: int, total: int, seen: list[tuple[str, int, int]] = seen) -> None:
                seen.append((site, done, total))

            scheduler = Scheduler(local_workers=workers) if workers > 1 else Scheduler()
            run_monitor(ws, dataclasses.replace(OPTIONS, scheduler=scheduler), progress=note)
            results.append({(v.observation_id, v.zone_id, v.name): v.value
                            for site in ("smallsite", "twin") for v in ws.indicators(site)})
            assert {s for s, _, _ in seen} == {"smallsite", "twin"} and ("twin", 30, 30) in seen
    assert results[0] == results[1] and len(results[0]) > 0
    with pytest.raises(ValidationError, match="scheduler"):
        MonitorOptions(scheduler="local:2")  # type: ignore[arg-type]


def test_counts_survive_a_gap_in_the_clouds(images: list[Path], tmp_path: Path) -> None:
    """With object detection on, an image mostly under cloud still counts the yard it shows (every
    class, zero included), but gives no pixel change and says nothing of the hidden hall."""
    from sitewatch.analytics.indicators import MIN_VISIBLE_FOR_COUNTS

    clouded = tmp_path / "clouded" / images[25].name
    clouded.parent.mkdir()
    with rasterio.open(images[25]) as source:
        pixels, profile = source.read(), source.profile
        descriptions = source.descriptions
    gap = np.zeros(pixels.shape[1:], bool)
    gap[30:160, 5:62] = True  # a clear window over the west (yard) half
    pixels[:, ~gap] = 255  # opaque white cloud everywhere else
    with rasterio.open(clouded, "w", **profile) as target:
        target.write(pixels)
        target.descriptions = descriptions
    with _workspace(tmp_path / "ws", [*images[:24], clouded]) as ws:
        run_monitor(ws, MonitorOptions(false_alarm_rate=0.05, detect_objects=True))
        last = ws.observations("smallsite")[-1]
        values = {(v.zone_id, v.name): v for v in ws.indicators("smallsite") if v.observation_id == last.id}
        classes = {v.name for v in ws.indicators("smallsite") if v.name.startswith("count_")}
    assert MIN_VISIBLE_FOR_COUNTS <= last.valid_fraction < ws.settings.min_valid_fraction
    assert {"count_car", "count_large_vehicle"} <= classes  # every class, found or not
    for name in classes:
        assert values[("yard", name)].value is not None and values[("yard", name)].quality > 0
        assert values[("hall", name)].value is None
    assert all(values[(zone, "changed_area_m2")].value is None for zone in ("yard", "hall")
               if (zone, "changed_area_m2") in values)


def test_a_5_m_rgbn_site_is_monitored_without_vehicles(tmp_path: Path) -> None:
    """Imagery coarser than the vehicle detector resolves: detection is skipped and its objects are not
    observed (no counts, no vehicle-sized patches of change), while pixel change and NDVI are measured."""
    site = Site("fields", "Fields", "US", "control", box(-99.16, 47.01, -99.14, 47.02), gsd=5.0)
    grid = site_grid(site)
    rng = np.random.default_rng(5)
    ground = rng.normal(120, 15, grid.shape)
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(6):
        image = ground * rng.uniform(0.9, 1.1) + rng.normal(0, 3, grid.shape)
        pixels = np.clip(np.stack([image, image * 0.95, image * 0.9, image * 1.3]), 1, 255).astype(np.uint8)
        with rasterio.open(folder / f"fields_20{10 + index}0801.tif", "w", driver="GTiff", width=grid.width,
                           height=grid.height, count=4, dtype="uint8", crs=grid.crs,
                           transform=grid.transform) as dataset:
            dataset.write(pixels)  # no band descriptions, as NAIP files come
    with Workspace.init(tmp_path / "ws", sites=[site]) as ws:
        assert ingest(ws, [folder], bands=("red", "green", "blue", "nir")).ok
        report = run_monitor(ws, MonitorOptions(detect_objects=True))
        values = ws.indicators("fields")
        observations = ws.observations("fields")
        assert ws.detections(site_id="fields") == []
    outcome = report.sites[0]
    assert outcome.detection_skipped == 6 and "got 5.0 m" in (outcome.detection_skipped_reason or "")
    names = {v.name for v in values}
    assert not any(name.startswith("count_") for name in names) and "changed_objects" not in names
    measured = {v.observation_id for v in values if v.name == "changed_area_m2" and v.value is not None}
    assert measured == {o.id for o in observations[3:]}  # a reference of three earlier dates first
    assert {v.observation_id for v in values if v.name == "ndvi_mean" and v.value is not None} == measured
    assert all(v.value > 0.1 for v in values if v.name == "ndvi_mean" and v.value is not None)
    assert all(o.shift_confidence is not None for o in observations[1:])  # registered, shift recorded


def test_a_site_that_registers_on_one_probe_in_three_is_compared_as_ingested(tmp_path: Path) -> None:
    """Where the landscape changes between dates, co-registration refuses most dates: the site is
    compared on its georeferenced grid, not left unobserved on every refused date."""
    site = Site("wetland", "Wetland", "US", "control", box(-99.18, 47.00, -99.15, 47.02), gsd=5.0)
    grid = site_grid(site)
    rng = np.random.default_rng(9)
    grounds = [rng.normal(120, 20, grid.shape) for _ in range(3)]
    folder = tmp_path / "images"
    folder.mkdir()
    # Dates 2 and 3 show another landscape (the anchor's tiles disagree with them); the rest the first.
    for index, ground in enumerate([0, 0, 1, 2, 0, 0, 0]):
        image = np.clip(grounds[ground] + rng.normal(0, 3, grid.shape), 1, 255).astype(np.uint8)
        with rasterio.open(folder / f"wetland_20{10 + index}0801.tif", "w", driver="GTiff", width=grid.width,
                           height=grid.height, count=1, dtype="uint8", crs=grid.crs,
                           transform=grid.transform) as dataset:
            dataset.write(image[None])
    with Workspace.init(tmp_path / "ws", sites=[site]) as ws:
        assert ingest(ws, [folder]).ok
        run_monitor(ws, MonitorOptions(detect_objects=False))
        observations = ws.observations("wetland")
        measured = {v.observation_id for v in ws.indicators("wetland")
                    if v.name == "changed_area_m2" and v.value is not None}
    assert min(grid.shape) > 256  # several tiles, so they can disagree
    assert all(o.shift == (0.0, 0.0) and o.shift_confidence is None for o in observations)
    assert measured == {o.id for o in observations[3:]}
