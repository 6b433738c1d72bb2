"""Write rendered scenes as GeoTIFFs with a STAC item beside each, byte-identical on re-runs.

Files are written to a temporary name and renamed, so an interrupted run never leaves a
truncated image under a final name. Nothing time-dependent (creation time, host) goes in.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import rasterio
from pyproj import Transformer
from rasterio.enums import ColorInterp
from rasterio.transform import Affine

from sitewatch.imagery.simulate.render import RenderedScene
from sitewatch.imagery.simulate.scenario import Scenario

ATTRIBUTION = "simulated by sitewatch"
LICENSE = "CC0-1.0"
BANDS = ("red", "green", "blue")


def image_stem(scene: RenderedScene) -> str:
    """``<site>_<YYYYMMDDTHHMMSSZ>``: the date in the name lets any tool find the acquisition time."""
    return f"{scene.site_id}_{scene.conditions.when.strftime('%Y%m%dT%H%M%SZ')}"


def write_scene(scene: RenderedScene, folder: Path, scenario: Scenario) -> tuple[Path, Path]:
    """Write ``<stem>.tif`` and its STAC item ``<stem>.json`` into ``folder``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = image_stem(scene)
    tif = folder / f"{stem}.tif"
    stac = folder / f"{stem}.json"
    grid = scene.grid
    when = scene.conditions.when
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 3,
        "dtype": "uint8",
        "crs": f"EPSG:{grid.epsg}",
        "transform": Affine(*grid.transform),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "zlevel": 1,
        "predictor": 2,
        "photometric": "RGB",
        "interleave": "pixel",
    }
    partial = tif.with_name(tif.name + ".partial")
    with rasterio.open(partial, "w", **profile) as dataset:
        dataset.write(scene.image.transpose(2, 0, 1))
        dataset.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
        for index, name in enumerate(BANDS, start=1):
            dataset.set_band_description(index, name)
        dataset.update_tags(
            TIFFTAG_DATETIME=when.strftime("%Y:%m:%d %H:%M:%S"),
            TIFFTAG_SOFTWARE="sitewatch simulator",
            TIFFTAG_IMAGEDESCRIPTION=f"{ATTRIBUTION}: scenario {scenario.name}, site {scene.site_id}",
            ACQUISITIONDATETIME=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            SENSOR=scenario.sensor,
            CLOUD_COVER=f"{100.0 * scene.cloud_fraction:.2f}",  # percent, as Landsat and readers.py have it
        )
    os.replace(partial, tif)
    item = stac_item(scene, scenario, tif.name)
    partial_item = stac.with_name(stac.name + ".partial")
    partial_item.write_text(json.dumps(item, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial_item, stac)
    return tif, stac


def stac_item(scene: RenderedScene, scenario: Scenario, href: str) -> dict[str, Any]:
    grid = scene.grid
    west, south, east, north = grid.bounds
    to_lonlat = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
    ring = [
        to_lonlat.transform(x, y) for x, y in ((west, south), (east, south), (east, north), (west, north))
    ]
    ring = [(round(lon, 7), round(lat, 7)) for lon, lat in ring]
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    conditions = scene.conditions
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        ],
        "id": Path(href).stem,
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in [*ring, ring[0]]]]},
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {
            "datetime": conditions.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "platform": scenario.platform,
            "instruments": ["simulated-vhr"],
            "gsd": grid.gsd,
            "eo:cloud_cover": round(100.0 * scene.cloud_fraction, 2),
            "view:sun_elevation": round(conditions.sun.elevation, 3),
            "view:sun_azimuth": round(conditions.sun.azimuth, 3),
            "view:off_nadir": round(conditions.off_nadir, 3),
            "view:azimuth": round(conditions.view_azimuth, 3),
            "proj:epsg": grid.epsg,
            "proj:shape": [grid.height, grid.width],
            "proj:transform": list(grid.transform),
            "license": LICENSE,
            "attribution": ATTRIBUTION,
            "providers": [{"name": ATTRIBUTION, "roles": ["producer", "licensor"]}],
            "sitewatch:scenario": scenario.name,
            "sitewatch:site": scene.site_id,
        },
        "assets": {
            "image": {
                "href": href,
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "eo:bands": [{"name": name, "common_name": name} for name in BANDS],
            }
        },
        "links": [],
    }


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


CATALOG_FILE = "catalog.json"


def write_static_catalog(folder: Path, *, title: str = "sitewatch simulated scenes") -> Path:
    """A STAC ``catalog.json`` in ``folder`` linking every item the simulator wrote under it, as they
    lie (their assets stay beside them): the simulated run becomes a static catalog that
    ``sitewatch ingest --stac`` and ``sitewatch watch`` read. Returns its path."""
    links: list[dict[str, str]] = [{"rel": "root", "href": f"./{CATALOG_FILE}", "type": "application/json"}]
    for item in sorted(folder.rglob("*.json")):
        if item.parent == folder:
            continue  # the catalog itself and ground_truth.json
        try:
            document = json.loads(item.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and document.get("type") == "Feature":
            links.append({"rel": "item", "href": f"./{item.relative_to(folder).as_posix()}",
                          "type": "application/geo+json"})
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "sitewatch-simulated", "title": title,
               "description": "Scenes rendered by the sitewatch simulator, with their STAC items.",
               "links": links}
    path = folder / CATALOG_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(catalog, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
