"""`sitewatch ingest --stac` against a real STAC API: stac-fastapi-pgstac over pgstac (the `stac_api`
fixture), its items made from the simulator's scenes (and a real NAIP GeoTIFF), their assets COGs on
the loopback Range server, which counts the bytes it sends."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac_client
import pytest
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping
from typer.testing import CliRunner

from range_server import RangeServer, serving
from sitewatch.app.cli import app
from sitewatch.imagery import stac
from sitewatch.imagery.simulate import load_scenario, simulate
from sitewatch.imagery.stac import StacQuery, search_parameters
from sitewatch.store import Workspace
from stac_api import StacApi
from test_stac_ingest import centre_site, write_cog

MAIN = "sim-vhr"
"""The simulator's nine scenes of the quick scenario, over the site."""
ARCHIVE = "sim-archive"
"""Two more items over the site: one that does not say its cloud cover, one at 2 m."""
BROKEN = "sim-broken"
"""Items pgstac accepts but sitewatch cannot use: one whose only asset has no href, one with only a
thumbnail."""
ELSEWHERE_SHIFT = 30.0
"""Degrees east: where the copies that are not over any site lie."""


@dataclass(frozen=True)
class ApiCatalog:
    api: StacApi
    server: RangeServer
    """Serves the assets; ``server.root`` holds them."""
    items: dict[str, dict[str, Any]]
    """Item id -> the item as loaded into the API."""
    site_bbox: list[float]

    def ids(self, collection: str) -> set[str]:
        return {i for i, item in self.items.items() if item["collection"] == collection}

    def asset_path(self, item_id: str) -> str:
        """The asset's path on the Range server."""
        href = self.items[item_id]["assets"]["image"]["href"]
        return href.removeprefix(self.server.url)

    def asset_size(self, item_id: str) -> int:
        return (self.server.root / self.asset_path(item_id)).stat().st_size


def _collection(collection_id: str, description: str) -> dict[str, Any]:
    return {
        "type": "Collection", "stac_version": "1.0.0", "id": collection_id, "description": description,
        "license": "CC0-1.0", "links": [],
        "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
                   "temporal": {"interval": [["2019-01-01T00:00:00Z", None]]}},
    }


def _shifted(geometry: dict[str, Any], degrees: float) -> dict[str, Any]:
    return {"type": geometry["type"],
            "coordinates": [[[x + degrees, y] for x, y in ring] for ring in geometry["coordinates"]]}


def _api_item(document: dict[str, Any], collection: str, item_id: str, asset_href: str) -> dict[str, Any]:
    item = copy.deepcopy(document)
    item.update(id=item_id, collection=collection, links=[])
    item["assets"]["image"]["href"] = asset_href
    return item


@pytest.fixture(scope="module")
def api_catalog(stac_api: StacApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiCatalog]:
    """The API emptied, then loaded: the quick scenario's scenes in ``sim-vhr``, copies of two of them
    30° east (over no site), two more over the site in ``sim-archive``, and a broken item."""
    work = tmp_path_factory.mktemp("stac-api-scenes")
    simulate(load_scenario("quick"), work / "sim", seed=5, gsd=1.0)
    scenes = [json.loads(path.read_text()) for path in sorted((work / "sim").rglob("*.json"))]
    scenes = [s for s in scenes if s.get("type") == "Feature"]
    assets = work / "assets"
    for scene in scenes:
        cog = write_cog(work / "sim" / scene["properties"]["sitewatch:site"] / f"{scene['id']}.tif",
                        assets / MAIN / f"{scene['id']}.tif")
        for copy_folder in ("elsewhere", ARCHIVE):
            (assets / copy_folder).mkdir(exist_ok=True)
            shutil.copyfile(cog, assets / copy_folder / cog.name)
    with serving(assets) as server:
        items: dict[str, dict[str, Any]] = {}
        for scene in scenes:
            name = f"{scene['id']}.tif"
            items[scene["id"]] = _api_item(scene, MAIN, scene["id"], f"{server.url}{MAIN}/{name}")
        for scene in scenes[:2]:
            far = _api_item(scene, MAIN, f"{scene['id']}-elsewhere",
                            f"{server.url}elsewhere/{scene['id']}.tif")
            far["geometry"] = _shifted(scene["geometry"], ELSEWHERE_SHIFT)
            west, south, east, north = scene["bbox"]
            far["bbox"] = [west + ELSEWHERE_SHIFT, south, east + ELSEWHERE_SHIFT, north]
            items[far["id"]] = far
        no_cloud, coarse = (_api_item(scene, ARCHIVE, f"{scene['id']}-archive",
                                      f"{server.url}{ARCHIVE}/{scene['id']}.tif") for scene in scenes[2:4])
        no_cloud["properties"].pop("eo:cloud_cover")
        coarse["properties"]["gsd"] = 2.0
        items[no_cloud["id"]], items[coarse["id"]] = no_cloud, coarse
        broken = _api_item(scenes[0], BROKEN, "no-href", "")
        broken["assets"]["image"].pop("href")
        thumbnail_only = _api_item(scenes[1], BROKEN, "thumbnail-only", f"{server.url}thumb.png")
        thumbnail_only["assets"]["image"].update(type="image/png", roles=["thumbnail"])
        items[broken["id"]], items[thumbnail_only["id"]] = broken, thumbnail_only

        stac_api.clear()
        stac_api.load(collections=[_collection(MAIN, "simulated scenes"),
                                   _collection(ARCHIVE, "an archive of the same place"),
                                   _collection(BROKEN, "items with faults")],
                      items=items.values())
        yield ApiCatalog(api=stac_api, server=server, items=items, site_bbox=scenes[0]["bbox"])


def _ingest(root: Path, *arguments: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["ingest", "-w", str(root), "--json", *arguments])
    assert result.exit_code in (0, 5), result.output
    return json.loads(result.output)


def _items_of(summary: dict[str, Any], status: str) -> set[str]:
    """Item ids of the files with ``status`` (their messages start 'STAC item ID ...')."""
    return {entry["message"].split()[2] for entry in summary["files"] if entry["status"] == status}


def test_api_ingest_takes_only_items_over_the_site_reads_windows_and_reruns_take_nothing(
    api_catalog: ApiCatalog, tmp_path: Path,
) -> None:
    site = centre_site(api_catalog.site_bbox)
    root = tmp_path / "ws"
    Workspace.init(root, sites=[site]).close()
    server = api_catalog.server
    server.reset()

    # Pages of 4: the search must follow pgstac's `next` links to find the 13 items over the site.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stac, "SEARCH_PAGE_SIZE", 4)
        summary = _ingest(root, "--stac", api_catalog.api.url)
    over_site = api_catalog.ids(MAIN) - {i for i in api_catalog.items if i.endswith("-elsewhere")}
    assert _items_of(summary, "ingested") == over_site | api_catalog.ids(ARCHIVE), summary
    failed = [entry["message"] for entry in summary["files"] if entry["status"] == "failed"]
    no_href, thumbnail_only = sorted(failed)
    named = f"STAC item no-href ({api_catalog.api.url}collections/{BROKEN}/items/no-href): malformed"
    assert len(failed) == 2 and no_href.startswith(named), failed
    assert "required field 'href' is missing" in no_href and "fix the item" in no_href
    named = f"STAC item thumbnail-only ({api_catalog.api.url}collections/{BROKEN}/items/thumbnail-only)"
    assert thumbnail_only.startswith(f"{named}: no asset sitewatch can read windows from (assets image: "
                                     "image/png, roles thumbnail)"), thumbnail_only

    ingested = sorted(_items_of(summary, "ingested"))
    sent = {i: server.served_bytes(api_catalog.asset_path(i)) for i in ingested}
    sizes = {i: api_catalog.asset_size(i) for i in ingested}
    figures = ", ".join(f"{i}: {sent[i]}/{sizes[i]}" for i in ingested)
    message = f"bytes served / asset size: {figures}; in all {sum(sent.values())}/{sum(sizes.values())}"
    print(message)
    assert all(0 < sent[i] < 0.35 * sizes[i] for i in ingested), message
    assert sum(sent.values()) < 0.3 * sum(sizes.values()), message
    assert not any(path.startswith("/elsewhere/") for _, path, _ in server.requests), server.requests
    assert not any(method == "GET" and byte_range is None for method, _, byte_range in server.requests)

    with Workspace.open(root) as ws:
        scenes = {scene.stac_item: scene for scene in ws.scenes()}
        first = sorted(over_site)[0]
        assert scenes[first].stac_href == f"{api_catalog.api.url}collections/{MAIN}/items/{first}"
        assert scenes[first].stac_collection == MAIN and scenes[first].license == "CC0-1.0"
        assert len(ws.observations(site.id)) == len(ingested)

    server.reset()
    again = _ingest(root, "--stac", api_catalog.api.url)
    assert again["ingested"] == 0 and again["skipped"] == len(ingested) and again["failed"] == 2, again
    assert not server.requests, "a second run opened an asset"


def _expected(catalog: ApiCatalog, collections: set[str], *, since: datetime, until: datetime,
              max_cloud: float, max_off_nadir: float, max_gsd: float) -> set[str]:
    """The items over the site that pass, from their properties (a missing one passes)."""
    chosen = set()
    for item_id, item in catalog.items.items():
        props = item["properties"]
        when = datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
        if (item["collection"] in collections and not item_id.endswith("-elsewhere")
                and since <= when <= until and props.get("eo:cloud_cover", 0.0) <= max_cloud
                and props.get("view:off_nadir", 0.0) <= max_off_nadir and props.get("gsd", 0.0) <= max_gsd):
            chosen.add(item_id)
    return chosen


def test_the_api_does_the_filtering_and_the_cli_honours_every_filter(api_catalog: ApiCatalog,
                                                                      tmp_path: Path) -> None:
    items = [item for item in api_catalog.items.values() if item["collection"] == MAIN]
    times = sorted(datetime.fromisoformat(i["properties"]["datetime"].replace("Z", "+00:00")) for i in items)
    since, until = times[1], times[-2]
    limits = {"max_cloud": 25.0, "max_off_nadir": 8.0, "max_gsd": 1.5}
    site = centre_site(api_catalog.site_bbox)
    both = {MAIN, ARCHIVE}
    expected = _expected(api_catalog, both, since=since, until=until, **limits)
    assert api_catalog.ids(ARCHIVE) - expected == {i for i in api_catalog.ids(ARCHIVE)
                                                   if api_catalog.items[i]["properties"]["gsd"] == 2.0}
    assert 2 < len(expected) < len(items)

    # The server's own answer (no client-side filtering): intersects, datetime, collections and CQL2.
    client = pystac_client.Client.open(api_catalog.api.url)
    query = StacQuery(area=site.geometry, since=since, until=until, collections=tuple(sorted(both)),
                      max_cloud=limits["max_cloud"], max_off_nadir=limits["max_off_nadir"])
    parameters = search_parameters(query, filters=True)
    assert "filter" in parameters
    answered = {item["id"] for item in client.search(**parameters).items_as_dicts()}
    assert answered == _expected(api_catalog, both, since=since, until=until, max_gsd=float("inf"),
                                 max_cloud=limits["max_cloud"], max_off_nadir=limits["max_off_nadir"])
    unfiltered = {item["id"] for item in client.search(**search_parameters(query, filters=False))
                  .items_as_dicts()}
    assert answered < unfiltered, "the CQL2 filter left nothing out"
    far = StacQuery(area=box(0.0, 0.0, 0.01, 0.01))
    assert not list(client.search(**search_parameters(far, filters=True)).items_as_dicts())

    root = tmp_path / "ws"
    Workspace.init(root, sites=[site]).close()
    summary = _ingest(root, "--stac", api_catalog.api.url, "--since", since.isoformat(),
                      "--until", until.isoformat(), "--collection", MAIN, "--collection", ARCHIVE,
                      "--max-cloud", str(limits["max_cloud"]), "--max-gsd", str(limits["max_gsd"]),
                      "--max-off-nadir", str(limits["max_off_nadir"]), "--site", site.id)
    assert summary["failed"] == 0 and _items_of(summary, "ingested") == expected, summary

    only_archive = _ingest(tmp_path / "ws", "--stac", api_catalog.api.url, "--collection", ARCHIVE)
    assert _items_of(only_archive, "ingested") == api_catalog.ids(ARCHIVE) - expected, only_archive
    assert only_archive["skipped"] == len(api_catalog.ids(ARCHIVE) & expected)


@pytest.mark.shared_data
def test_a_real_naip_geotiff_in_the_api_is_read_by_windows(api_catalog: ApiCatalog, shared_data: Path,
                                                           tmp_path: Path) -> None:
    naip = shared_data / "naip_north_dakota_timeseries" / "m_4709963_se_14_1_20190904.tif"
    with rasterio.open(naip) as dataset:
        footprint = list(transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds))
    cog = write_cog(naip, api_catalog.server.root / "naip" / "m_4709963_se_14_1_20190904.tif")
    bands = [{"name": name.upper(), "common_name": name} for name in ("red", "green", "blue", "nir")]
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "naip-20190904", "collection": "naip-real",
        "geometry": mapping(box(*footprint)), "bbox": footprint, "links": [],
        "properties": {"datetime": "2019-09-04T17:00:00Z", "platform": "naip", "gsd": 1.0},
        "assets": {
            "image": {"href": f"{api_catalog.server.url}naip/{cog.name}", "roles": ["data"],
                      "eo:bands": bands, "type": "image/tiff; application=geotiff; profile=cloud-optimized"},
            "thumbnail": {"href": f"{api_catalog.server.url}naip/thumb.png", "type": "image/png",
                          "roles": ["thumbnail"]},
        },
    }
    api_catalog.api.load(collections=[_collection("naip-real", "NAIP, USDA (public domain)")], items=[item])
    site = centre_site(footprint, "farm", 0.2, gsd=5.0)
    root = tmp_path / "ws"
    Workspace.init(root, sites=[site]).close()
    api_catalog.server.reset()

    summary = _ingest(root, "--stac", api_catalog.api.url)
    assert summary["failed"] == 0 and _items_of(summary, "ingested") == {"naip-20190904"}, summary
    sent, size = api_catalog.server.served_bytes(f"naip/{cog.name}"), cog.stat().st_size
    print(f"naip-20190904: bytes served / asset size: {sent}/{size}")
    assert 0 < sent < 0.35 * size, f"bytes served / asset size: {sent}/{size}"
    assert not any("thumb" in path or MAIN in path for _, path, _ in api_catalog.server.requests)
    with Workspace.open(root) as ws:
        (scene,) = ws.scenes()
        assert scene.bands == ("red", "green", "blue", "nir") and scene.acquired == datetime(
            2019, 9, 4, 17, tzinfo=UTC)
