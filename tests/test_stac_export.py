"""`sitewatch export stac`: the chips as a static catalog that pystac reads back and odc-stac loads
pixel for pixel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import odc.stac
import pystac
import pytest
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.chips import read_chip
from sitewatch.imagery.simulate import load_scenario, simulate
from sitewatch.pipeline.ingest import ingest_stac
from sitewatch.pipeline.stac_export import export_stac
from sitewatch.store import Workspace
from test_stac_ingest import build_catalog, centre_site

# odc-geo (a dependency of odc-stac) still calls shapely.ops.transform, deprecated in shapely 2.1.
ODC_GEO_SHAPELY = "ignore:The 'shapely.ops.transform\\(\\)' function is deprecated:DeprecationWarning"


@pytest.fixture(scope="module")
def workspace_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding the quick scenario's scenes (2 m), ingested from a static STAC catalog."""
    work = tmp_path_factory.mktemp("stac-export")
    simulate(load_scenario("quick"), work / "sim", seed=9, gsd=2.0)
    items, images = [], {}
    for item_file in sorted((work / "sim").rglob("*.json")):
        document = json.loads(item_file.read_text())
        if document.get("type") == "Feature":
            item = pystac.Item.from_dict(document)
            items.append(item)
            images[item.id] = item_file.with_suffix(".tif")
    build_catalog(work / "catalog", items, images)
    site = centre_site(list(items[0].bbox or []), "yard", 0.4, gsd=2.0)
    with Workspace.init(work / "ws", sites=[site]) as ws:
        report = ingest_stac(ws, str(work / "catalog" / "catalog.json"))
        assert report.ok and len(report.ingested) == len(items)
    return work / "ws"


@pytest.mark.filterwarnings(ODC_GEO_SHAPELY)
def test_export_reads_back_with_pystac_and_odc_stac_loads_the_chip_pixels(workspace_root: Path,
                                                                          tmp_path: Path) -> None:
    with Workspace.open(workspace_root) as ws:
        written = export_stac(ws, tmp_path / "stac")
        observations = {o.id: o for o in ws.observations()}
        chips = {o.id: read_chip(ws.chip_path(o)) for o in observations.values()}
        scenes = {s.id: s for s in ws.scenes()}
    assert written.items == len(observations) > 3 and written.collections == 1

    catalog = pystac.Catalog.from_file(str(tmp_path / "stac" / "catalog.json"))
    items = sorted(catalog.get_items(recursive=True), key=lambda i: i.datetime or 0)
    assert {i.id for i in items} == set(observations)
    for item in items:
        scene = scenes[observations[item.id].scene_id]
        assert item.datetime == observations[item.id].acquired
        assert item.properties["proj:code"] == "EPSG:32651"
        assert item.properties["view:sun_elevation"] == pytest.approx(scene.sun_elevation)
        assert item.properties["license"] == "CC0-1.0"
        assert [link.href for link in item.get_links("derived_from")] == [scene.stac_href]
        asset = Path(item.assets["image"].get_absolute_href() or "")
        assert asset.is_file() and asset.is_relative_to(tmp_path / "stac")
        # Relative hrefs: the folder can be moved or served as it is.
        assert item.assets["image"].to_dict()["href"].startswith("./")

    loaded = odc.stac.load(items, bands=["red", "green", "blue"], chunks=None)
    assert loaded.sizes["time"] == len(items)
    for index, item in enumerate(items):
        chip = chips[item.id]
        stack = np.stack([loaded[name].isel(time=index).to_numpy() for name in ("red", "green", "blue")])
        assert stack.dtype == chip.array.dtype and stack.shape == chip.array.shape
        np.testing.assert_array_equal(stack[:, chip.valid], chip.array[:, chip.valid])

    # And sitewatch itself takes an export as a source: another workspace ingests every chip.
    with Workspace.open(workspace_root) as ws:
        sites = ws.sites()
    with Workspace.init(tmp_path / "other", sites=sites) as other:
        report = ingest_stac(other, str(tmp_path / "stac" / "catalog.json"))
        assert report.ok and len(report.ingested) == len(items)
        assert {s.stac_collection for s in other.scenes()} == {"yard"}


def test_export_refuses_a_folder_in_use_and_the_cli_reports_counts(workspace_root: Path,
                                                                   tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep me")
    in_use = pytest.raises(UnsupportedInputError, match="not an empty folder")
    with Workspace.open(workspace_root) as ws, in_use:
        export_stac(ws, used)
    assert (used / "notes.txt").read_text() == "keep me"

    result = CliRunner().invoke(app, ["export", "stac", str(tmp_path / "out"), "--site", "yard", "--json",
                                      "-w", str(workspace_root)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["collections"] == 1 and summary["items"] > 3
    assert Path(summary["catalog"]) == tmp_path / "out" / "catalog.json"
