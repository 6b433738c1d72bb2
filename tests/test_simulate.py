"""The scene simulator: reproducible runs, ground truth that matches the pixels, georeferencing."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import box
from skimage.draw import polygon as polygon_pixels
from skimage.registration import phase_cross_correlation

from sitewatch.catalog import builtin_sites
from sitewatch.core.parallel import Scheduler
from sitewatch.imagery.simulate import (
    OBJECT_CLASSES,
    SiteRenderer,
    load_ground_truth,
    load_scenario,
    parse_scenario,
    render_scene,
    simulate,
    truth_objects,
)

TINY = """
name: tiny
start: 2019-02-21
end: 2019-02-23
revisit: {min_days: 1, max_days: 1}
sites:
  - id: sanumdong
    layout_from: reference
    pinned_dates: [2019-02-22]
"""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("quick")
    simulate(load_scenario("quick"), folder, seed=11)
    return folder


@pytest.fixture(scope="module")
def sanumdong() -> SiteRenderer:
    scenario = load_scenario("reference")
    site = next(s for s in builtin_sites() if s.id == "sanumdong")
    return SiteRenderer(site, scenario.site("sanumdong"), 0.5, seed=5)


def _digests(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.tif"))}


def test_same_seed_gives_byte_identical_run_and_checksum(tmp_path: Path) -> None:
    scenario = parse_scenario(TINY, source="tiny")
    first = simulate(scenario, tmp_path / "a", seed=3)
    second = simulate(scenario, tmp_path / "b", seed=3)
    assert first.image_count == 3
    assert first.checksum == second.checksum
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    again = simulate(scenario, tmp_path / "a", seed=3)  # idempotent in place
    assert again.checksum == first.checksum
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


def test_different_seed_gives_different_run(tmp_path: Path) -> None:
    scenario = parse_scenario(TINY, source="tiny")
    one = simulate(scenario, tmp_path / "a", seed=3)
    other = simulate(scenario, tmp_path / "b", seed=4)
    assert one.checksum != other.checksum
    # A re-run with another seed into the same folder leaves only its own images behind.
    simulate(scenario, tmp_path / "a", seed=4)
    listed = {i.file for i in load_ground_truth(tmp_path / "a").images}
    on_disk = {p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*.tif")}
    assert listed == on_disk


def test_ground_truth_loads_as_typed_values(quick_run: Path) -> None:
    truth = load_ground_truth(quick_run)
    assert truth.scenario == "quick"
    assert truth.seed == 11
    assert 8 <= len(truth.images) <= 15
    days = [i.acquired.date() for i in truth.images]
    assert days == sorted(days)
    gaps = [(b - a).days for a, b in itertools.pairwise(days)]
    assert all(1 <= g <= 3 for g in gaps)
    for image in truth.images:
        assert (quick_run / image.file).is_file()
        assert (quick_run / image.file).with_suffix(".json").is_file()
        assert image.acquired.tzinfo is not None
        assert all(abs(v) <= 3 for v in image.shift_px)
        assert 0.0 <= image.cloud_fraction <= 1.0
        for obj in image.objects:
            assert obj.object_class in OBJECT_CLASSES
            assert obj.polygon.is_valid and obj.polygon.area > 1.0
            c0, r0, c1, r1 = obj.pixel_box
            assert c0 < c1 and r0 < r1


def test_surge_and_drop_on_the_right_dates(quick_run: Path) -> None:
    truth = load_ground_truth(quick_run)
    by_day = {i.acquired.date(): i for i in truth.images}
    surge, drop = by_day[date(2019, 2, 22)], by_day[date(2019, 2, 23)]
    assert surge.count("crane", "assembly_hall") == 2
    assert drop.count("crane", "assembly_hall") == 1
    assert surge.count("large_vehicle", "assembly_hall") >= 14
    assert surge.count("tanker_truck", "assembly_hall") >= 3
    assert surge.count("rail_car", "rail_yard") >= 8
    assert drop.count("large_vehicle", "assembly_hall") < surge.count("large_vehicle", "assembly_hall") - 8
    quiet = [i for d, i in by_day.items() if d not in (date(2019, 2, 22), date(2019, 2, 23))]
    assert quiet and all(i.count("crane") == 0 for i in quiet)
    assert surge.cloud_fraction <= 0.25  # pinned dates stand for images an analyst chose
    (event,) = truth.events_of("sanumdong", "assembly_hall")
    assert event.alert_expected
    assert event.covers(surge.acquired) and event.covers(drop.acquired)
    assert "rail_yard" in event.zones
    assert truth.events_of("sanumdong", "rail_yard") == (event,)


def test_image_is_georeferenced_over_the_site_with_time_and_stac(quick_run: Path) -> None:
    truth = load_ground_truth(quick_run)
    site = next(s for s in builtin_sites() if s.id == "sanumdong")
    image = truth.images[0]
    path = quick_run / image.file
    with rasterio.open(path) as dataset:
        assert dataset.crs.to_epsg() == site.utm_epsg
        assert dataset.count == 3 and dataset.dtypes[0] == "uint8"
        assert abs(dataset.res[0] - 0.5) < 1e-9
        assert dataset.tags()["TIFFTAG_DATETIME"] == image.acquired.strftime("%Y:%m:%d %H:%M:%S")
        to_lonlat = Transformer.from_crs(dataset.crs.to_epsg(), 4326, always_xy=True)
        west, south, east, north = dataset.bounds
        lon0, lat0 = to_lonlat.transform(west, south)
        lon1, lat1 = to_lonlat.transform(east, north)
    footprint = box(lon0, lat0, lon1, lat1)
    assert footprint.contains(site.geometry)
    item = json.loads(path.with_suffix(".json").read_text())
    props = item["properties"]
    assert props["datetime"] == image.acquired.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert props["gsd"] == 0.5
    assert props["attribution"] == "simulated by sitewatch"
    assert 0 < props["view:sun_elevation"] < 90
    assert abs(props["eo:cloud_cover"] - 100 * image.cloud_fraction) < 0.01


def _object_contrast(image: np.ndarray, corners: tuple[tuple[float, float], ...], ring: float) -> float:
    """Mean brightness inside a box minus the mean of a ring around it."""
    cols = np.array([c for c, _ in corners])
    rows = np.array([r for _, r in corners])
    centre_c, centre_r = cols.mean(), rows.mean()
    inside = np.zeros(image.shape[:2], dtype=bool)
    rr, cc = polygon_pixels(rows - 0.5, cols - 0.5, image.shape[:2])
    inside[rr, cc] = True
    scale = 1.0 + ring / max(np.hypot(cols - centre_c, rows - centre_r).max(), 1.0)
    outer = np.zeros_like(inside)
    rr, cc = polygon_pixels(
        centre_r + (rows - centre_r) * scale - 0.5,
        centre_c + (cols - centre_c) * scale - 0.5,
        image.shape[:2],
    )
    outer[rr, cc] = True
    outer &= ~inside
    grey = image.astype(float).mean(axis=2)
    return float(grey[inside].mean() - grey[outer].mean())


def test_vehicle_boxes_stand_out_from_the_ground_around_them() -> None:
    scene = render_scene(
        load_scenario("quick"),
        "sanumdong",
        datetime(2019, 2, 22, 2, 15, tzinfo=UTC),
        seed=2,
        cloud_fraction=0.0,
        shift=(2, -3),
    )
    truth = truth_objects(scene)
    vehicles = [o for o in truth if o.object_class in ("car", "large_vehicle", "tanker_truck", "rail_car")]
    assert len(vehicles) >= 40
    contrasts = np.array([abs(_object_contrast(scene.image, o.pixel_corners, ring=4.0)) for o in vehicles])
    assert np.median(contrasts) > 15
    assert (contrasts > 6).mean() > 0.85
    # Boxes shifted away from where the objects were drawn lose the contrast: the shift is in the truth.
    wrong = [tuple((c + 9, r + 9) for c, r in o.pixel_corners) for o in vehicles]
    wrong_contrasts = np.array([abs(_object_contrast(scene.image, w, ring=4.0)) for w in wrong])
    assert np.median(wrong_contrasts) < np.median(contrasts) / 2


def test_clouds_are_drawn_and_their_fraction_recorded() -> None:
    scenario = load_scenario("quick")
    when = datetime(2019, 2, 20, 2, 15, tzinfo=UTC)
    clear = render_scene(scenario, "sanumdong", when, seed=2, cloud_fraction=0.0)
    cloudy = render_scene(scenario, "sanumdong", when, seed=2, cloud_fraction=0.95)
    assert clear.cloud_fraction == 0.0 and not clear.cloud_mask.any()
    assert cloudy.cloud_fraction > 0.8
    assert cloudy.image[cloudy.cloud_mask].mean() > 200
    assert cloudy.image.mean() > clear.image.mean() + 50


def test_shadows_fall_away_from_the_sun(sanumdong: SiteRenderer) -> None:
    scene = sanumdong.render_date(
        datetime(2018, 12, 20, 2, 15, tzinfo=UTC),
        load_scenario("reference").clouds,
        cloud_fraction=0.0,
        shift=(0, 0),
    )
    hall = next(b for b in sanumdong.layout.buildings if b.id == "assembly_hall")
    grid = scene.grid
    away = scene.conditions.sun.shadow_vector(1.0)
    unit = np.array(away) / np.hypot(*away)
    reach = hall.width / 2 + 4.0  # just past the wall, inside a 28 m building's winter shadow
    grey = scene.image.astype(float).mean(axis=2)

    def sample(direction: np.ndarray) -> float:
        x, y = hall.cx + direction[0] * reach, hall.cy + direction[1] * reach
        col, row = int((x - grid.west) / grid.gsd), int((grid.north - y) / grid.gsd)
        return float(grey[row - 3 : row + 4, col - 3 : col + 4].mean())

    assert sample(unit) < sample(-unit) - 30


def test_misregistration_shift_is_the_true_one(sanumdong: SiteRenderer) -> None:
    clouds = load_scenario("reference").clouds
    # Two dates, as co-registration sees them: other vehicles, sun, view and sensor noise.
    reference = sanumdong.render_date(
        datetime(2018, 9, 3, 2, 15, tzinfo=UTC), clouds, cloud_fraction=0.0, shift=(0, 0)
    )
    moved = sanumdong.render_date(
        datetime(2018, 9, 7, 2, 5, tzinfo=UTC), clouds, cloud_fraction=0.0, shift=(2, -3)
    )
    found, _, _ = phase_cross_correlation(
        moved.image[..., 1].astype(float), reference.image[..., 1].astype(float)
    )
    assert tuple(np.round(found).astype(int)) == (2, -3)


def test_reference_story_dates_and_events() -> None:
    from sitewatch.imagery.simulate.activity import structure_progress
    from sitewatch.imagery.simulate.render import site_seed
    from sitewatch.imagery.simulate.schedule import revisit_dates

    scenario = load_scenario("reference")
    assert (scenario.start, scenario.end) == (date(2018, 6, 1), date(2019, 3, 20))
    assert {s.site_id for s in scenario.sites} == {"sohae", "sanumdong", "yongbyon"}
    for seed in (1, 2, 3):
        for plan in scenario.sites:
            days = revisit_dates(scenario, plan, site_seed(seed, plan.site_id, 4))
            gaps = [(b - a).days for a, b in itertools.pairwise(days)]
            assert max(gaps) <= 10 and min(gaps) >= 1
            if plan.site_id == "sanumdong":
                assert {date(2019, 2, 22), date(2019, 2, 23)} <= set(days)
            if plan.site_id == "sohae":
                assert sum(1 for d in days if date(2019, 3, 1) <= d <= date(2019, 3, 10)) >= 3
    sohae = scenario.site("sohae")
    assert structure_progress(sohae, date(2018, 6, 15)) == {
        "launch_tower": 1.0,
        "transfer_structure": 1.0,
        "test_stand": 1.0,
    }
    assert structure_progress(sohae, date(2018, 9, 1))["transfer_structure"] == 0.0
    assert structure_progress(sohae, date(2018, 9, 1))["test_stand"] == 0.0
    assert 0.0 < structure_progress(sohae, date(2019, 3, 4))["transfer_structure"] < 1.0
    assert structure_progress(sohae, date(2019, 3, 15))["transfer_structure"] == 1.0
    assert scenario.site("yongbyon").events == ()
    routine = [e for e in scenario.site("sanumdong").events if not e.alert_expected]
    assert len(routine) >= 3


def test_sites_rendered_in_worker_processes_give_the_same_run(tmp_path: Path) -> None:
    two_sites = TINY.replace("end: 2019-02-23", "end: 2019-02-22") + \
        "  - id: yongbyon\n    layout_from: reference\n"
    scenario = parse_scenario(two_sites, source="two sites")
    seen: list[tuple[int, int]] = []
    serial = simulate(scenario, tmp_path / "serial", seed=5)
    parallel = simulate(scenario, tmp_path / "parallel", seed=5, scheduler=Scheduler(local_workers=2),
                        progress=lambda done, total, _: seen.append((done, total)))
    assert {i.site_id for i in serial.images} == {"sanumdong", "yongbyon"}
    assert parallel.checksum == serial.checksum
    assert _digests(tmp_path / "serial") == _digests(tmp_path / "parallel")
    assert seen[-1] == (serial.image_count, serial.image_count)
