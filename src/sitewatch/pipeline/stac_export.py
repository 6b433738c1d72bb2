"""The workspace's chips as a static STAC catalog, for QGIS's STAC browser, odc-stac, stackstac, ...

Layout (self-contained, relative links, so the folder can be moved or served as is)::

    DIR/catalog.json
    DIR/<site>/collection.json            one collection per site
    DIR/<site>/<observation>/<observation>.json
    DIR/<site>/<observation>/<observation>.tif   the chip COG, copied

Each item is one observation: the chip's footprint and grid (``proj:``), its time, the scene's
sensor, GSD, angles, cloud cover, licence and providers, and a ``derived_from`` link to the STAC item
it was ingested from, where there was one. The chip asset's bands are named in ``eo:bands`` (with STAC
common names where they are ones) so odc-stac loads them by name.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pystac
from pyproj import Transformer
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.extensions.view import ViewExtension
from shapely.geometry import Polygon, mapping

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.types import Observation, Scene, Site
from sitewatch.imagery.chips import chip_grid
from sitewatch.imagery.grid import SiteGrid
from sitewatch.imagery.readers import open_image
from sitewatch.store.protocol import Store

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
STAC_COMMON_NAMES = frozenset({
    "pan", "coastal", "blue", "green", "red", "yellow", "rededge", "nir", "nir08", "nir09", "cirrus",
    "swir16", "swir22", "lwir", "lwir11", "lwir12",
})
"""``eo:common_name`` values STAC defines; other band names are kept as ``name`` only."""


@dataclass(frozen=True, slots=True)
class StacExport:
    """What :func:`export_stac` wrote."""

    catalog: Path
    """The root ``catalog.json``."""
    collections: int
    items: int

    def to_dict(self) -> dict[str, object]:
        return {"catalog": str(self.catalog), "collections": self.collections, "items": self.items}


def export_stac(workspace: Store, folder: Path, *, site_ids: Sequence[str] = (),
                title: str = "sitewatch chips") -> StacExport:
    """Write the chips of ``workspace`` (all sites, or ``site_ids``) as a static catalog in ``folder``.

    ``folder`` must be empty or absent: an export never mixes with other files. The catalog is read
    back with pystac before returning, so what is returned is what a reader will find.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UnsupportedInputError(f"{folder}: not an empty folder; give a new or empty folder for the "
                                    "STAC export (it writes catalog.json, one folder per site and the chips)")
    sites = [workspace.site(site_id) for site_id in site_ids] if site_ids else workspace.sites()
    catalog = pystac.Catalog(id="sitewatch", title=title,
                             description="Site chips from a sitewatch workspace: one collection per site, "
                                         "one item per observation, the chip as a Cloud Optimized GeoTIFF.")
    scenes: dict[str, Scene] = {}
    chips: list[tuple[pystac.Item, Path]] = []
    for site in sites:
        observations = workspace.observations(site.id)
        if not observations:
            continue
        items = []
        for observation in observations:
            if observation.scene_id not in scenes:
                scenes[observation.scene_id] = workspace.scene(observation.scene_id)
            chip = workspace.chip_path(observation)
            item = _item(observation, scenes[observation.scene_id], chip_grid(chip), _dtype(chip))
            items.append(item)
            chips.append((item, chip))
        collection = pystac.Collection(
            id=site.id, title=site.name, description=_describe(site), extent=_extent(items),
            license=_license([scenes[o.scene_id] for o in observations]),
        )
        collection.add_items(items)
        catalog.add_child(collection)
    folder.mkdir(parents=True, exist_ok=True)
    catalog.normalize_hrefs(str(folder.resolve()))
    for item, chip in chips:
        target = Path(item.get_self_href() or "").with_suffix(".tif")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chip, target)
        item.assets["image"].href = str(target)
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return read_back(folder / "catalog.json")


def read_back(catalog_file: Path) -> StacExport:
    """Read a written catalog with pystac's object model: every collection, item and asset must parse
    and every asset file exist. (Schema validation needs jsonschema and the schemas from the web.)"""
    catalog = pystac.Catalog.from_file(str(catalog_file))
    collections = list(catalog.get_children())
    items = 0
    for collection in collections:
        for item in collection.get_items():
            pystac.Item.from_dict(item.to_dict(include_self_link=False))
            for key, asset in item.assets.items():
                href = asset.get_absolute_href()
                if href is None or not Path(href).is_file():
                    raise UnsupportedInputError(
                        f"{catalog_file}: item {item.id} asset {key} points at {href}, which is missing; "
                        "export again into an empty folder")
            items += 1
    return StacExport(catalog=catalog_file, collections=len(collections), items=items)


def _describe(site: Site) -> str:
    return f"Chips of site {site.name} ({site.id}, {site.country}, {site.category}) on its {site.gsd} m grid."


def _dtype(chip: Path) -> str:
    with open_image(chip) as dataset:
        return str(dataset.dtypes[0])


def _license(scenes: Sequence[Scene]) -> str:
    """The one licence all scenes share, else ``other`` (each item says its own)."""
    licences = {scene.license for scene in scenes}
    only = licences.pop() if len(licences) == 1 else None
    return only or "other"


def _footprint(grid: SiteGrid) -> Polygon:
    west, south, east, north = grid.bounds
    to_lonlat = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
    corners = ((west, south), (east, south), (east, north), (west, north))
    return Polygon([to_lonlat.transform(x, y) for x, y in corners])


def _item(observation: Observation, scene: Scene, grid: SiteGrid, dtype: str) -> pystac.Item:
    footprint = _footprint(grid)
    properties: dict[str, object] = {
        "gsd": grid.gsd,
        "instruments": [scene.sensor],
        "sitewatch:site": observation.site_id,
        "sitewatch:scene": scene.id,
        "sitewatch:scene_uri": scene.uri,
        "sitewatch:source_gsd": scene.gsd,
        "sitewatch:valid_fraction": round(observation.valid_fraction, 6),
    }
    if scene.license:
        properties["license"] = scene.license
    if scene.cloud_cover is not None:
        properties["eo:cloud_cover"] = round(100.0 * scene.cloud_cover, 3)
    item = pystac.Item(id=observation.id, geometry=mapping(footprint), bbox=list(footprint.bounds),
                       datetime=observation.acquired, properties=properties)
    if scene.attribution:
        item.common_metadata.providers = [pystac.Provider(name=scene.attribution, roles=[
            pystac.ProviderRole.PRODUCER, pystac.ProviderRole.LICENSOR])]
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    projection.epsg = grid.epsg
    projection.shape = [grid.height, grid.width]
    projection.transform = list(grid.transform)[:6]
    view = ViewExtension.ext(item, add_if_missing=True)
    view.off_nadir = scene.off_nadir
    view.sun_elevation = scene.sun_elevation
    view.sun_azimuth = scene.sun_azimuth
    asset = pystac.Asset(href=f"./{observation.id}.tif", media_type=COG_MEDIA_TYPE, roles=["data"],
                         title=f"{observation.site_id} chip of scene {scene.id}")
    item.add_asset("image", asset)
    EOExtension.ext(asset, add_if_missing=True).bands = [
        Band.create(name=name, common_name=name if name in STAC_COMMON_NAMES else None)
        for name in scene.bands
    ]
    # raster:bands tells readers (odc-stac) the asset holds several bands, and their type.
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(data_type=DataType(dtype), spatial_resolution=grid.gsd) for _ in scene.bands
    ]
    if scene.stac_href:
        item.add_link(pystac.Link(rel="derived_from", target=scene.stac_href,
                                  media_type="application/geo+json"))
    return item


def _extent(items: Sequence[pystac.Item]) -> pystac.Extent:
    wests, souths, easts, norths = zip(*(item.bbox or [] for item in items), strict=True)
    times = sorted(item.datetime for item in items if item.datetime is not None)
    return pystac.Extent(
        pystac.SpatialExtent([[min(wests), min(souths), max(easts), max(norths)]]),
        pystac.TemporalExtent([[times[0], times[-1]]]),
    )
