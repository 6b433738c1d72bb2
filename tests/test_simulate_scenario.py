"""Scenario files: bad ones are refused with the file and field named; the CLI runs one end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.core.errors import SitewatchError
from sitewatch.imagery.simulate import (
    ScenarioError,
    builtin_scenarios,
    load_ground_truth,
    load_scenario,
    parse_scenario,
    render_scene,
    simulate,
    truth_objects,
)
from sitewatch.imagery.simulate.sun import solar_position

HEAD = "name: x\nstart: 2019-01-01\nend: 2019-01-05\nsites:\n  - id: sanumdong\n    events:\n"
EVENT = "      - {id: e, zone: parking, kind: k, start: 2019-01-02, end: 2019-01-02"

TINY = """
name: tiny
start: 2019-02-22
end: 2019-02-23
revisit: {min_days: 1, max_days: 1}
sites:
  - id: sanumdong
    layout_from: reference
"""


def test_builtin_scenarios_load() -> None:
    assert {"reference", "quick"} <= set(builtin_scenarios())
    for name in builtin_scenarios():
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.sites


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nstart: 2019-01-02\nend: 2019-01-01\nsites: []", "end"),
        ("name: x\nstart: 2019-01-01\nend: 2019-01-05\nsites: []", "at least one site"),
        ("name: x\nstart: tomorrow\nend: 2019-01-05\nsites: [{id: sanumdong}]", "scenario.start"),
        (
            "name: x\nstart: 2019-01-01\nend: 2019-01-05\nclouds: {clear: 0.9}\nsites: [{id: sanumdong}]",
            "add up to 1",
        ),
        (
            HEAD + EVENT + "}",
            "alert_expected",
        ),
        (
            HEAD + EVENT + ", alert_expected: true, phases: [{objects: [{class: tank, count: 2}]}]}",
            "sites[0].events[0].phases[0].objects[0].class",
        ),
        (
            HEAD + EVENT + ", alert_expected: true, remove: [no_such_tower]}",
            "no_such_tower",
        ),
        (
            "name: x\nstart: 2019-01-01\nend: 2019-01-05\nsites:\n"
            "  - {id: sanumdong, layout: {buildings: [{id: b}]}}",
            "sites[0].layout.buildings[0].size",
        ),
        ("- just\n- a list", "expected a mapping"),
        ("name: [unclosed", "not valid YAML"),
    ],
)
def test_bad_scenarios_name_the_field(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, source="bad.yaml")
    assert "bad.yaml" in str(caught.value)
    assert expected in str(caught.value)
    assert isinstance(caught.value, SitewatchError) and isinstance(caught.value, ValueError)


def test_unknown_zone_and_overfull_event_are_refused_before_rendering(tmp_path: Path) -> None:
    unknown_zone = parse_scenario(
        TINY + "    events:\n      - {id: e, zone: launch_pad, kind: k, start: 2019-02-22, end: 2019-02-22,"
        " alert_expected: true, phases: [{objects: [{class: car, count: 1}]}]}\n",
        source="zone.yaml",
    )
    with pytest.raises(ScenarioError, match="launch_pad"):
        simulate(unknown_zone, tmp_path / "a", seed=1)
    overfull = parse_scenario(
        TINY + "    events:\n      - {id: e, zone: parking, kind: k, start: 2019-02-22, end: 2019-02-22,"
        " alert_expected: true, phases: [{objects: [{class: crane, count: 5}]}]}\n",
        source="full.yaml",
    )
    with pytest.raises(ScenarioError, match=r"needs 5 crane place\(s\) in zone 'parking'"):
        simulate(overfull, tmp_path / "b", seed=1)
    assert not list((tmp_path / "b").rglob("*.tif"))


def test_unknown_scenario_name_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError, match="reference"):
        load_scenario("no-such-scenario")


def test_solar_position_matches_known_geometry() -> None:
    # Local solar noon at the June solstice: the sun due south at 90 - 39.07 + 23.44 degrees.
    noon = solar_position(datetime(2018, 6, 21, 3, 37, tzinfo=UTC), 39.07, 125.78)
    assert abs(noon.elevation - 74.37) < 0.6
    assert abs(noon.azimuth - 180.0) < 3.0
    morning = solar_position(datetime(2018, 12, 21, 2, 15, tzinfo=UTC), 39.07, 125.78)
    assert 20 < morning.elevation < 28 and 140 < morning.azimuth < 170
    east, north = morning.shadow_vector(10.0)
    assert north > 0 and east < 0  # a morning winter sun in the south-east casts shadows to the north-west


def test_render_scene_at_a_chosen_gsd_for_training() -> None:
    scene = render_scene(
        load_scenario("quick"),
        "sanumdong",
        datetime(2019, 2, 22, 2, 0, tzinfo=UTC),
        seed=1,
        gsd=1.0,
        cloud_fraction=0.0,
    )
    assert scene.grid.gsd == 1.0
    assert scene.image.shape == (scene.grid.height, scene.grid.width, 3)
    classes = {o.object_class for o in scene.objects}
    assert {"car", "large_vehicle", "tanker_truck", "rail_car", "crane"} <= classes


def test_render_scene_with_chosen_counts_for_training() -> None:
    counts = {"car": 60, "large_vehicle": 12, "tanker_truck": 6, "rail_car": 10, "crane": 2}
    scene = render_scene(
        load_scenario("reference"),
        "yongbyon",
        datetime(2018, 8, 2, 2, 0, tzinfo=UTC),
        seed=4,
        gsd=0.3,
        cloud_fraction=0.0,
        counts=counts,
    )
    assert scene.grid.gsd == 0.3
    found = {cls: sum(1 for o in scene.objects if o.object_class == cls) for cls in counts}
    # Yongbyon has no rail line or crane spots: those are cut to the room there is.
    assert found == {"car": 60, "large_vehicle": 12, "tanker_truck": 6, "rail_car": 0, "crane": 0}
    polygons = [o.polygon for o in truth_objects(scene)]
    overlaps = sum(a.intersection(b).area > 0.05 for i, a in enumerate(polygons) for b in polygons[i + 1 :])
    assert overlaps == 0
    with pytest.raises(ScenarioError, match="tank"):
        render_scene(
            load_scenario("quick"), "sanumdong", datetime(2019, 2, 22, tzinfo=UTC), seed=1, counts={"tank": 3}
        )


def test_cli_simulate_prints_folder_count_and_checksum(tmp_path: Path) -> None:
    scenario_file = tmp_path / "tiny.yaml"
    scenario_file.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["simulate", str(scenario_file), "--out", str(out), "--seed", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["images"] == 2
    assert summary["images_per_site"] == {"sanumdong": 2}
    assert summary["folder"] == str(out)
    truth = load_ground_truth(out)
    assert truth.checksum == summary["checksum"]
    assert len(truth.images) == 2
    plain = CliRunner().invoke(
        app, ["simulate", str(scenario_file), "--out", str(tmp_path / "again"), "--seed", "5"]
    )
    assert plain.exit_code == 0, plain.output
    assert summary["checksum"] in plain.output
    assert "images:   2" in plain.output


def test_cli_simulate_refuses_a_bad_gsd(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "quick", "--out", str(tmp_path), "--gsd", "0"])
    assert result.exit_code != 0
    assert "gsd" in str(result.exception or result.output).lower()


def test_load_ground_truth_explains_a_wrong_folder(tmp_path: Path) -> None:
    with pytest.raises(SitewatchError, match="sitewatch simulate"):
        load_ground_truth(tmp_path)
