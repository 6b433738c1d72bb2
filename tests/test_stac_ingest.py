"""STAC ingest against real files on loopback: the simulator's scenes and real GeoTIFFs as COGs in a
static catalog, served by an HTTP server with Range support that counts the bytes it sends."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.shutil
from rasterio.warp import transform_bounds
from shapely.geometry import box
from typer.testing import CliRunner

from range_server import RangeServer, serving
from sitewatch.app.cli import app
from sitewatch.app.web import serialize
from sitewatch.app.web.schemas import SceneOut
from sitewatch.core.types import Site
from sitewatch.imagery.chips import extract_chip, read_chip
from sitewatch.imagery.grid import site_grid
from sitewatch.imagery.simulate import load_scenario, simulate
from sitewatch.imagery.stac import (
    StacLoopError,
    StacProblem,
    StacQuery,
    StacSourceError,
    choose_asset,
    stac_entries,
)
from sitewatch.pipeline.ingest import ingest_stac
from sitewatch.store import Workspace

COG_BLOCK = 128
"""Small tiles, so a site's window is few of them and whole-file reads stand out."""


@dataclass(frozen=True)
class SimCatalog:
    root: Path
    """Folder holding catalog.json, the collection, the items and their COG assets."""
    items: tuple[dict, ...]
    """The items as written (id, properties, bbox, asset href relative to its item)."""
    cogs: dict[str, Path]
    """Item id -> its COG."""

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.json"


def write_cog(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    rasterio.shutil.copy(source, target, driver="COG", BLOCKSIZE=COG_BLOCK, COMPRESS="DEFLATE",
                         OVERVIEW_RESAMPLING="AVERAGE")
    return target


def build_catalog(root: Path, items: list[pystac.Item], images: dict[str, Path],
                  collection_id: str = "sim") -> dict[str, Path]:
    """A self-contained static catalog at ``root``: catalog -> collection -> items, each item's
    ``image`` asset a COG beside it. Returns item id -> COG path."""
    catalog = pystac.Catalog(id="test-catalog", description="STAC ingest test catalog")
    extent = pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                           pystac.TemporalExtent([[None, None]]))
    collection = pystac.Collection(id=collection_id, description="test scenes", extent=extent,
                                   license="CC0-1.0")
    catalog.add_child(collection)
    for item in items:
        collection.add_item(item)
    catalog.normalize_hrefs(str(root))
    cogs: dict[str, Path] = {}
    for item in items:
        cog = Path(item.get_self_href() or "").parent / f"{item.id}.tif"
        write_cog(images[item.id], cog)
        item.assets["image"].href = str(cog)
        cogs[item.id] = cog
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return cogs


@pytest.fixture(scope="module")
def sim_catalog(tmp_path_factory: pytest.TempPathFactory) -> SimCatalog:
    """The quick scenario's scenes (1 m) with the simulator's own STAC items, as a static catalog."""
    work = tmp_path_factory.mktemp("stac-sim")
    simulate(load_scenario("quick"), work / "sim", seed=5, gsd=1.0)
    items, images = [], {}
    for item_file in sorted((work / "sim").rglob("*.json")):
        document = json.loads(item_file.read_text())
        if document.get("type") != "Feature":
            continue
        item = pystac.Item.from_dict(document)
        items.append(item)
        images[item.id] = item_file.with_suffix(".tif")
    cogs = build_catalog(work / "catalog", items, images)
    written = tuple(json.loads(Path(c).with_name(f"{i}.json").read_text()) for i, c in cogs.items())
    return SimCatalog(root=work / "catalog", items=written, cogs=cogs)


def centre_site(bbox: list[float], site_id: str = "yard", fraction: float = 0.25, gsd: float = 1.0) -> Site:
    west, south, east, north = bbox
    cx, cy = (west + east) / 2, (south + north) / 2
    half_x, half_y = (east - west) * fraction / 2, (north - south) * fraction / 2
    return Site(id=site_id, name=site_id, country="XX", category="test",
                geometry=box(cx - half_x, cy - half_y, cx + half_x, cy + half_y), gsd=gsd)


@pytest.fixture
def served(sim_catalog: SimCatalog) -> Iterator[RangeServer]:
    with serving(sim_catalog.root) as server:
        yield server


def _relative(sim: SimCatalog, item_id: str) -> str:
    return sim.cogs[item_id].relative_to(sim.root).as_posix()


def test_http_catalog_reads_only_site_windows_keeps_provenance_and_reruns_ingest_nothing(
    sim_catalog: SimCatalog, served: RangeServer, tmp_path: Path,
) -> None:
    site = centre_site(sim_catalog.items[0]["bbox"])
    with Workspace.init(tmp_path / "ws", sites=[site]) as ws:
        report = ingest_stac(ws, served.url + "catalog.json")
        assert report.ok, report.to_dict()
        assert len(report.ingested) == len(sim_catalog.items) > 3

        sizes = {item_id: cog.stat().st_size for item_id, cog in sim_catalog.cogs.items()}
        read = {item_id: served.served_bytes(_relative(sim_catalog, item_id)) for item_id in sizes}
        print("bytes served / asset size:",
              {item_id: f"{read[item_id]}/{sizes[item_id]}" for item_id in sorted(sizes)})
        assert all(0 < read[i] < 0.35 * sizes[i] for i in sizes), read
        assert sum(read.values()) < 0.3 * sum(sizes.values())
        assert not any(method == "GET" and byte_range is None and path.endswith(".tif")
                       for method, path, byte_range in served.requests), "a whole asset was fetched"

        first = sim_catalog.items[0]
        scene = next(s for s in ws.scenes() if s.stac_item == first["id"])
        props = first["properties"]
        assert scene.stac_collection == "sim" and scene.stac_asset == "image"
        assert scene.stac_href == f"{served.url}sim/{first['id']}/{first['id']}.json"
        assert scene.uri == served.url + _relative(sim_catalog, first["id"])
        assert scene.acquired == datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
        assert scene.sensor == f"{props['platform']}/simulated-vhr"
        assert scene.sun_elevation == pytest.approx(props["view:sun_elevation"])
        assert scene.sun_azimuth == pytest.approx(props["view:sun_azimuth"])
        assert scene.off_nadir == pytest.approx(props["view:off_nadir"])
        assert scene.cloud_cover == pytest.approx(props["eo:cloud_cover"] / 100.0)
        assert scene.license == "CC0-1.0" and scene.attribution == "simulated by sitewatch"
        assert scene.bands == ("red", "green", "blue") and scene.gsd == pytest.approx(1.0)
        assert len(ws.observations(site.id)) == len(sim_catalog.items)
        shown = SceneOut.model_validate(serialize.scene(scene))  # the web API's scene JSON carries it all
        assert (shown.stac_item, shown.stac_collection, shown.stac_href, shown.stac_asset) == (
            first["id"], "sim", scene.stac_href, "image")
        assert (shown.platform, shown.instruments) == (props["platform"], ["simulated-vhr"])
        assert shown.sun_elevation == scene.sun_elevation and shown.off_nadir == scene.off_nadir
        assert (shown.license, shown.attribution) == ("CC0-1.0", "simulated by sitewatch")

        served.reset()
        again = ingest_stac(ws, served.url + "catalog.json")
        assert len(again.skipped) == len(sim_catalog.items) and not again.ingested and again.ok
        assert not any(path.endswith(".tif") for _, path, _ in served.requests), "a stored asset was opened"
        assert len(ws.scenes()) == len(sim_catalog.items)


def _sim_items(sim: SimCatalog) -> list[dict]:
    return list(sim.items)


def _ids(source: str, query: StacQuery) -> set[str]:
    entries = list(stac_entries(source, query))
    assert not [e for e in entries if isinstance(e, StacProblem)]
    return {e.item_id for e in entries if not isinstance(e, StacProblem)}


def test_filters_pick_the_items_a_reading_of_their_properties_picks(sim_catalog: SimCatalog) -> None:
    source = str(sim_catalog.catalog)
    items = _sim_items(sim_catalog)
    everything = {i["id"] for i in items}
    site_area = centre_site(items[0]["bbox"]).geometry
    assert _ids(source, StacQuery(area=site_area)) == everything
    assert _ids(source, StacQuery(area=box(10.0, 10.0, 10.1, 10.1))) == set()

    clouds = sorted(i["properties"]["eo:cloud_cover"] for i in items)
    limit = clouds[len(clouds) // 2]
    assert _ids(source, StacQuery(max_cloud=limit)) == {
        i["id"] for i in items if i["properties"]["eo:cloud_cover"] <= limit} != everything

    angles = sorted(i["properties"]["view:off_nadir"] for i in items)
    assert _ids(source, StacQuery(max_off_nadir=angles[2])) == {
        i["id"] for i in items if i["properties"]["view:off_nadir"] <= angles[2]}

    times = sorted(datetime.fromisoformat(i["properties"]["datetime"].replace("Z", "+00:00")) for i in items)
    since, until = times[2], times[-3]
    assert _ids(source, StacQuery(since=since, until=until)) == {
        i["id"] for i in items
        if since <= datetime.fromisoformat(i["properties"]["datetime"].replace("Z", "+00:00")) <= until}
    assert _ids(source, StacQuery(collections=("sim",))) == everything
    assert _ids(source, StacQuery(collections=("other",))) == set()
    assert _ids(source, StacQuery(max_gsd=0.5)) == set()
    assert _ids(source, StacQuery(max_gsd=1.0)) == everything


def _copy_catalog(sim: SimCatalog, target: Path) -> Path:
    shutil.copytree(sim.root, target)
    return target


def test_a_malformed_item_is_named_and_the_others_go_in(sim_catalog: SimCatalog, tmp_path: Path) -> None:
    root = _copy_catalog(sim_catalog, tmp_path / "catalog")
    broken = sim_catalog.items[1]["id"]
    item_file = root / "sim" / broken / f"{broken}.json"
    document = json.loads(item_file.read_text())
    document["properties"]["datetime"] = "not a date"
    item_file.write_text(json.dumps(document))
    site = centre_site(sim_catalog.items[0]["bbox"])
    with Workspace.init(tmp_path / "ws", sites=[site]) as ws:
        report = ingest_stac(ws, str(root / "catalog.json"))
        assert len(report.failed) == 1 and len(report.ingested) == len(sim_catalog.items) - 1
        message = report.failed[0].message
        assert broken in message and "malformed" in message and "datetime" in message, message
        assert not any(s.stac_item == broken for s in ws.scenes())


def test_an_asset_whose_size_is_understated_by_head_still_gives_its_true_pixels(
    sim_catalog: SimCatalog, served: RangeServer, tmp_path: Path,
) -> None:
    """GDAL takes the size from the ranged GETs' Content-Range, so a stale HEAD does no harm."""
    victim = sim_catalog.items[3]["id"]
    served.understated.add("/" + _relative(sim_catalog, victim))
    site = centre_site(sim_catalog.items[0]["bbox"])
    with Workspace.init(tmp_path / "ws", sites=[site]) as ws:
        report = ingest_stac(ws, served.url + "catalog.json")
        assert report.ok and len(report.ingested) == len(sim_catalog.items)
        observation = next(o for o in ws.observations() if ws.scene(o.scene_id).stac_item == victim)
        stored = read_chip(ws.chip_path(observation))
    local = extract_chip(sim_catalog.cogs[victim], site_grid(site), bands=("red", "green", "blue"))
    np.testing.assert_array_equal(stored.valid, local.valid)
    np.testing.assert_array_equal(stored.array[:, stored.valid], local.array[:, local.valid])


def test_an_asset_with_a_wrong_content_length_fails_naming_item_and_asset_and_the_batch_goes_on(
    sim_catalog: SimCatalog, served: RangeServer, tmp_path: Path,
) -> None:
    """The server announces a Content-Length and sends half of it (a transfer cut short)."""
    victim = sim_catalog.items[2]["id"]
    faulty = served.short_bodies
    faulty.add("/" + _relative(sim_catalog, victim))
    site = centre_site(sim_catalog.items[0]["bbox"])
    with Workspace.init(tmp_path / "ws", sites=[site]) as ws:
        report = ingest_stac(ws, served.url + "catalog.json")
        assert len(report.failed) == 1 and len(report.ingested) == len(sim_catalog.items) - 1
        failure = report.failed[0]
        assert f"STAC item {victim} in collection sim, asset image" in failure.message, failure.message
        assert str(failure.path).endswith(f"{victim}.tif")
        assert not any(s.stac_item == victim for s in ws.scenes())

        faulty.clear()  # the server is mended: the next run takes what was missed
        again = ingest_stac(ws, served.url + "catalog.json")
        assert len(again.ingested) == 1 and again.ok, [o.message for o in again.failed]
        assert any(s.stac_item == victim for s in ws.scenes())


def test_a_catalog_that_loops_is_detected(tmp_path: Path) -> None:
    root = pystac.Catalog(id="root", description="root")
    child = pystac.Catalog(id="child", description="child")
    root.add_child(child)
    root.normalize_hrefs(str(tmp_path / "loop"))
    root.save(pystac.CatalogType.SELF_CONTAINED)
    child_file = tmp_path / "loop" / "child" / "catalog.json"
    document = json.loads(child_file.read_text())
    document["links"].append({"rel": "child", "href": "../catalog.json", "type": "application/json"})
    child_file.write_text(json.dumps(document))
    loop = r"child/catalog\.json: its child link .*loop/catalog\.json leads back"
    with pytest.raises(StacLoopError, match=loop):
        list(stac_entries(str(tmp_path / "loop" / "catalog.json"), StacQuery()))


def test_a_broken_child_catalog_is_named_and_the_other_branches_are_walked(sim_catalog: SimCatalog,
                                                                            tmp_path: Path) -> None:
    root = _copy_catalog(sim_catalog, tmp_path / "catalog")
    document = json.loads((root / "catalog.json").read_text())
    document["links"].insert(0, {"rel": "child", "href": "./gone/collection.json",
                                 "type": "application/json"})
    (root / "catalog.json").write_text(json.dumps(document))
    entries = list(stac_entries(str(root / "catalog.json"), StacQuery()))
    problems = [e for e in entries if isinstance(e, StacProblem)]
    assert len(problems) == 1
    assert "gone/collection.json: the child catalog cannot be read" in problems[0].message
    assert len(entries) == len(sim_catalog.items) + 1


def test_an_unreadable_source_names_itself(tmp_path: Path) -> None:
    with pytest.raises(StacSourceError, match=r"nowhere\.json: the STAC source cannot be read"):
        list(stac_entries(str(tmp_path / "nowhere.json"), StacQuery()))
    (tmp_path / "points.json").write_text(json.dumps({"type": "Point", "coordinates": [0, 0]}))
    with pytest.raises(StacSourceError, match="not a STAC catalog, collection, API or ItemCollection"):
        list(stac_entries(str(tmp_path / "points.json"), StacQuery()))


def test_an_item_collection_file_is_a_source(sim_catalog: SimCatalog, tmp_path: Path) -> None:
    features = []
    for item in sim_catalog.items[:3]:
        document = json.loads(json.dumps(item))
        document["assets"]["image"]["href"] = str(sim_catalog.cogs[item["id"]])
        document["links"] = []
        features.append(document)
    source = tmp_path / "items.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    site = centre_site(sim_catalog.items[0]["bbox"])
    with Workspace.init(tmp_path / "ws", sites=[site]) as ws:
        report = ingest_stac(ws, str(source))
        assert report.ok and len(report.ingested) == 3
        assert {s.stac_item for s in ws.scenes()} == {f["id"] for f in features}


def test_cli_ingests_from_stac_with_filters_and_refuses_mixed_inputs(sim_catalog: SimCatalog,
                                                                     tmp_path: Path) -> None:
    items = _sim_items(sim_catalog)
    site = centre_site(items[0]["bbox"])
    root = tmp_path / "ws"
    Workspace.init(root, sites=[site]).close()
    clouds = sorted(i["properties"]["eo:cloud_cover"] for i in items)
    limit = clouds[len(clouds) // 2]
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", "--stac", str(sim_catalog.catalog), "--max-cloud", str(limit),
                                 "--site", site.id, "--collection", "sim", "--json", "-w", str(root)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    expected = sum(1 for i in items if i["properties"]["eo:cloud_cover"] <= limit)
    assert summary["ingested"] == expected and summary["failed"] == 0

    mixed = runner.invoke(app, ["ingest", "a.tif", "--stac", str(sim_catalog.catalog), "-w", str(root)])
    assert mixed.exit_code == 2 and "not both" in _unboxed(mixed.output)
    stray = runner.invoke(app, ["ingest", "a.tif", "--max-cloud", "10", "-w", str(root)])
    assert stray.exit_code == 2
    assert "--max-cloud filter STAC items; use them with --stac" in _unboxed(stray.output)


def _unboxed(output: str) -> str:
    """Typer's error box without its frame and line breaks."""
    return " ".join(output.replace("│", " ").replace("\n", " ").split())


def _item(item_id: str, footprint: list[float], when: datetime, assets: dict[str, pystac.Asset],
          properties: dict | None = None) -> pystac.Item:
    west, south, east, north = footprint
    geometry = json.loads(json.dumps(box(west, south, east, north).__geo_interface__))
    return pystac.Item(id=item_id, geometry=geometry, bbox=footprint, datetime=when,
                       properties=properties or {}, assets=assets)


@pytest.mark.shared_data
def test_real_rgbn_and_pan_geotiffs_over_http(shared_data: Path, tmp_path: Path) -> None:
    """NAIP (R, G, B, NIR; 4 bands, no visual asset) and a WorldView-2 pan GeoTIFF, real imagery."""
    naip = shared_data / "naip_north_dakota_timeseries" / "m_4709963_se_14_1_20190904.tif"
    pan = shared_data / "spacenet_atlanta_solaris_sample" / "sample_geotiff.tif"
    footprints = {}
    for name, path in (("naip", naip), ("wv2", pan)):
        with rasterio.open(path) as dataset:
            footprints[name] = list(transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds))
    tiff = "image/tiff; application=geotiff; profile=cloud-optimized"
    items = [
        _item("naip-20190904", footprints["naip"], datetime(2019, 9, 4, tzinfo=UTC), {
            "image": pystac.Asset(href=str(naip), media_type=tiff, roles=["data"], extra_fields={
                "eo:bands": [{"name": n.upper(), "common_name": n} for n in ("red", "green", "blue", "nir")],
            }),
            "thumbnail": pystac.Asset(href="thumb.png", media_type="image/png", roles=["thumbnail"]),
        }, {"platform": "naip", "gsd": 5.0}),
        _item("wv2-atlanta", footprints["wv2"], datetime(2009, 12, 22, tzinfo=UTC), {
            "image": pystac.Asset(href=str(pan), media_type=tiff, roles=["data"], extra_fields={
                "eo:bands": [{"name": "PAN", "common_name": "pan"}]}),
        }, {"platform": "worldview-2", "gsd": 0.5, "view:off_nadir": 21.5}),
    ]
    cogs = build_catalog(tmp_path / "catalog", items, {"naip-20190904": naip, "wv2-atlanta": pan},
                         collection_id="real")
    sites = [centre_site(footprints["naip"], "farm", 0.2, gsd=5.0),
             centre_site(footprints["wv2"], "block", 0.3, gsd=0.5)]
    with serving(tmp_path / "catalog") as server, Workspace.init(tmp_path / "ws", sites=sites) as ws:
        report = ingest_stac(ws, server.url + "catalog.json")
        assert report.ok and len(report.ingested) == 2, report.to_dict()
        scenes = {s.stac_item: s for s in ws.scenes()}
        assert scenes["naip-20190904"].bands == ("red", "green", "blue", "nir")
        assert scenes["wv2-atlanta"].bands == ("pan",) and scenes["wv2-atlanta"].off_nadir == 21.5
        assert scenes["naip-20190904"].license == "CC0-1.0"  # from the collection
        for item_id, cog in cogs.items():
            sent = server.served_bytes(cog.relative_to(tmp_path / "catalog").as_posix())
            print(f"{item_id}: {sent} of {cog.stat().st_size} bytes served")
            assert 0 < sent < 0.35 * cog.stat().st_size
        assert {o.site_id for o in ws.observations()} == {"farm", "block"}
        farm = ws.observations("farm")[0]
        assert ws.chip_path(farm).is_file() and farm.valid_fraction > 0.9


WV3_BANDS = ("coastal", "blue", "green", "yellow", "red", "rededge", "nir08", "nir09")
COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def _wv3_assets() -> dict[str, pystac.Asset]:
    """A WorldView-3 item's assets as Maxar's open-data catalog lays them out."""
    def bands(names: tuple[str, ...]) -> dict[str, object]:
        return {"eo:bands": [{"name": n.upper(), "common_name": n} for n in names]}
    return {
        "thumbnail": pystac.Asset(href="thumb.jpg", media_type="image/jpeg", roles=["thumbnail"]),
        "ms_analytic": pystac.Asset(href="ms.tif", media_type=COG, roles=["data"],
                                    extra_fields={**bands(WV3_BANDS), "gsd": 1.24}),
        "pan_analytic": pystac.Asset(href="pan.tif", media_type=COG, roles=["data"],
                                     extra_fields={**bands(("pan",)), "gsd": 0.31}),
        "pansharpened": pystac.Asset(href="ps.tif", media_type=COG, roles=["data"],
                                     extra_fields={**bands(("red", "green", "blue", "nir")), "gsd": 0.31}),
        "visual": pystac.Asset(href="visual.tif", media_type=COG, roles=["visual"],
                               extra_fields=bands(("red", "green", "blue"))),
        "cloud-mask": pystac.Asset(href="clouds.tif", media_type=COG, roles=["cloud"]),
        "metadata": pystac.Asset(href="meta.xml", media_type="application/xml", roles=["metadata"]),
    }


@pytest.mark.parametrize(("keep", "chosen", "bands"), [
    (None, "visual", ("red", "green", "blue")),
    (("ms_analytic", "pan_analytic", "pansharpened", "thumbnail"), "pansharpened",
     ("red", "green", "blue", "nir")),
    (("ms_analytic", "pan_analytic", "thumbnail"), "ms_analytic",
     ("coastal", "blue", "green", "yellow", "red", "rededge", "nir", "nir09")),
    (("pan_analytic", "cloud-mask", "metadata"), "pan_analytic", ("pan",)),
    (("thumbnail", "cloud-mask", "metadata"), None, None),
])
def test_the_asset_read_is_true_colour_then_pansharpened_then_multispectral_then_pan(
    keep: tuple[str, ...] | None, chosen: str | None, bands: tuple[str, ...] | None,
) -> None:
    assets = {k: a for k, a in _wv3_assets().items() if keep is None or k in keep}
    item = _item("wv3", [125.7, 39.0, 125.8, 39.1], datetime(2019, 2, 22, tzinfo=UTC), assets)
    choice = choose_asset(item)
    if chosen is None:
        assert choice is None
        return
    assert choice is not None and choice[0] == chosen and choice[2] == bands


def test_a_hung_server_fails_the_source_after_the_timeout_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket
    import time

    import sitewatch.imagery.stac as stac_module

    monkeypatch.setattr(stac_module, "STAC_TIMEOUT_S", 0.5)
    with socket.socket() as listener:  # accepts connections (the kernel's backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/catalog.json"
        started = time.monotonic()
        with pytest.raises(StacSourceError, match=r"no answer within 0\.5 s"):
            list(stac_entries(url, StacQuery()))
    assert time.monotonic() - started < 10


def test_the_simulators_items_as_they_lie_make_a_static_catalog(sim_catalog: SimCatalog) -> None:
    from sitewatch.imagery.simulate.writer import write_static_catalog

    simulated = sim_catalog.root.parent / "sim"  # where the fixture's simulate() wrote images and items
    catalog = write_static_catalog(simulated)
    entries = list(stac_entries(str(catalog), StacQuery()))
    assert not [e for e in entries if isinstance(e, StacProblem)]
    refs = sorted((e.item_id, Path(e.href)) for e in entries if not isinstance(e, StacProblem))
    assert [item_id for item_id, _ in refs] == sorted(item["id"] for item in sim_catalog.items)
    assert all(href.is_file() and href.is_relative_to(simulated) for _, href in refs)  # assets where they lie
