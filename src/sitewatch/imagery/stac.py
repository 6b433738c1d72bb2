"""STAC sources: the items over the sites in a STAC API, a static catalog or an ItemCollection, and
which asset of each to read, with the band names and the provenance its scene keeps.

pystac-client searches APIs (conformance, paging, ``intersects``); pystac reads static catalogs and
items, local or over HTTP, and resolves their relative links. This module walks, filters and chooses;
reading pixels is :mod:`sitewatch.imagery.chips`' business (by range requests for URLs).

A source that cannot be read at all raises :class:`StacSourceError`; one bad item is a
:class:`StacProblem` in the results, naming it, so a batch goes on past it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pystac
import pystac_client
import urllib3
from pystac.stac_io import DefaultStacIO
from pystac.utils import make_absolute_href
from pystac_client.conformance import ConformanceClasses
from pystac_client.exceptions import APIError
from shapely import union_all
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from sitewatch.core.errors import ImageryError
from sitewatch.core.timeutil import ensure_utc
from sitewatch.imagery.acquisition import StacSidecar, item_metadata, parse_timestamp

log = logging.getLogger(__name__)

SEARCH_PAGE_SIZE = 100
"""Items asked per page of an API search."""
RASTER_MEDIA_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "image/jp2")
"""Media types (prefixes) of assets GDAL reads windows from."""
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")
"""Asset href endings taken as rasters when an asset has no media type."""
_SKIPPED_ROLES = frozenset({"thumbnail", "overview", "metadata", "cloud", "cloud-shadow", "snow-ice",
                            "water-mask", "land-water", "data-mask", "saturation", "iso-19139"})
_RGB = frozenset({"red", "green", "blue"})


STAC_TIMEOUT_S = 30.0
"""Seconds a STAC server may take to connect, and between two reads of an answer, before the request
fails: a hung server fails the source (retried later) instead of hanging an ingest or a watch cycle."""
_POOL = urllib3.PoolManager()


class TimedStacIO(DefaultStacIO):
    """pystac's reader with a timeout on HTTP(S) requests (its default has none); local files as before."""

    def read_text_from_href(self, href: str) -> str:
        if urlsplit(href).scheme not in ("http", "https"):
            return str(super().read_text_from_href(href))
        timeout = urllib3.Timeout(connect=STAC_TIMEOUT_S, read=STAC_TIMEOUT_S)
        try:
            response = _POOL.request("GET", href, headers={"User-Agent": f"pystac/{pystac.__version__}",
                                                           **self.headers}, timeout=timeout, retries=False)
        except urllib3.exceptions.HTTPError as error:  # not an OSError: made one, as urllib's are
            raise OSError(f"no answer within {STAC_TIMEOUT_S:g} s or the connection failed ({error})") \
                from error
        if response.status >= 400:
            raise OSError(f"HTTP Error {response.status}: {response.reason or 'error'}")
        return response.data.decode("utf-8")


class StacSourceError(ImageryError):
    """A STAC source cannot be read: missing, unreachable, not STAC, or a catalog that loops."""


class StacLoopError(StacSourceError):
    """A static catalog's child links lead back to a catalog already on the path from the root."""


@dataclass(frozen=True, slots=True)
class StacQuery:
    """Which items a source gives: each filter left None (or empty) lets every item through.

    Items that do not say a filtered property (no ``eo:cloud_cover``, say) pass that filter: the
    chip's own cloud mask still applies.
    """

    area: BaseGeometry | None = None
    """Lon/lat geometry each item's footprint must intersect (the sites' outlines)."""
    since: datetime | None = None
    until: datetime | None = None
    collections: tuple[str, ...] = ()
    max_cloud: float | None = None
    """Percent, as ``eo:cloud_cover``."""
    max_off_nadir: float | None = None
    """Degrees, as ``view:off_nadir``."""
    max_gsd: float | None = None
    """Metres, as ``gsd`` (the asset's where it says, else the item's)."""


@dataclass(frozen=True, slots=True)
class StacAssetRef:
    """One asset of one item, chosen for reading, with what the item says about it."""

    item_id: str
    collection: str | None
    item_href: str | None
    """The item's self link (absolute), where known."""
    asset_key: str
    href: str
    """Absolute URL or path of the asset."""
    bands: tuple[str, ...] | None
    """Band names in file order (``eo:bands`` common names), None when the item does not say."""
    footprint: Polygon | MultiPolygon
    metadata: StacSidecar

    @property
    def label(self) -> str:
        """How messages name it: item, collection and asset."""
        where = f" in collection {self.collection}" if self.collection else ""
        return f"STAC item {self.item_id}{where}, asset {self.asset_key} ({self.href})"

    @property
    def key_digest(self) -> str:
        """SHA-256 of (collection, item id, asset href): the same asset of the same item is one scene."""
        text = "\n".join((self.collection or "", self.item_id, self.href))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class StacProblem:
    """An item that cannot be used; ``label`` names it (id and href where known)."""

    label: str
    message: str


StacEntry = StacAssetRef | StacProblem


def stac_entries(source: str, query: StacQuery) -> Iterator[StacEntry]:
    """The assets to read from ``source`` (API URL, ``catalog.json`` or ItemCollection, local or
    HTTP) that pass ``query``, and a :class:`StacProblem` for each item that cannot be used.

    Raises :class:`StacSourceError` when ``source`` itself cannot be read.
    """
    root = _read_json(source, what="STAC source")
    kind = root.get("type")
    if kind == "FeatureCollection":
        for index, feature in enumerate(_features(root, source)):
            yield from _entry(feature, base=source, query=query, fallback_label=f"{source} feature {index}")
    elif kind == "Feature":
        yield from _entry(root, base=source, query=query, fallback_label=source)
    elif kind in ("Catalog", "Collection"):
        if _is_search_api(root):
            yield from _search(source, query)
        else:
            yield from _walk(source, root, query)
    else:
        raise StacSourceError(
            f"{source}: not a STAC catalog, collection, API or ItemCollection (type is {kind!r}); give a "
            "STAC API URL, a catalog.json or an ItemCollection file"
        )


def _read_json(href: str, *, what: str) -> dict[str, Any]:
    try:
        document = TimedStacIO().read_json(href)
    except (OSError, ValueError) as error:
        raise StacSourceError(f"{href}: the {what} cannot be read ({error}); check the path or URL and "
                              "that the server is up") from error
    if not isinstance(document, dict):
        raise StacSourceError(f"{href}: the {what} is not a JSON object; give a STAC document")
    return document


def _features(collection: Mapping[str, Any], source: str) -> list[Any]:
    features = collection.get("features")
    if not isinstance(features, list):
        raise StacSourceError(f"{source}: the ItemCollection has no 'features' list; check the file")
    return features


def _is_search_api(root: Mapping[str, Any]) -> bool:
    conforms = root.get("conformsTo")
    if isinstance(conforms, list) and any(isinstance(c, str) and "item-search" in c for c in conforms):
        return True
    links = root.get("links")
    return isinstance(links, list) and any(isinstance(link, dict) and link.get("rel") == "search"
                                           for link in links)


def _search(url: str, query: StacQuery) -> Iterator[StacEntry]:
    try:
        client = pystac_client.Client.open(url, timeout=STAC_TIMEOUT_S)
        filters = client.conforms_to(ConformanceClasses.FILTER)
        search = client.search(**search_parameters(query, filters=filters))
        collections: dict[str, dict[str, Any]] = {}
        for feature in search.items_as_dicts():
            defaults = _collection_fields(client, feature.get("collection"), collections)
            yield from _entry(feature, base=url, query=query, defaults=defaults,
                              fallback_label=f"{url} search result")
    except (APIError, OSError) as error:
        raise StacSourceError(f"{url}: the STAC API search failed ({error}); check the URL and that the "
                              "server is up, then run again (stored items are skipped)") from error


def search_parameters(query: StacQuery, *, filters: bool) -> dict[str, Any]:
    """pystac-client ``search`` arguments for ``query``: the area, time and collections always; with
    ``filters`` (the API conforms to the Filter extension) a CQL2-JSON filter on cloud cover and
    off-nadir angle too, so the server leaves those items out instead of sending them.

    ``gsd`` stays a client-side filter: it is the chosen asset's where it says, which the server does not
    know (a WorldView item at 1.24 m has a 0.31 m pan-sharpened asset). The server's answer is filtered
    again item by item anyway, for APIs that ignore a parameter.
    """
    parameters: dict[str, Any] = {
        "intersects": mapping(query.area) if query.area is not None else None,
        "datetime": _interval(query),
        "collections": list(query.collections) or None,
        "limit": SEARCH_PAGE_SIZE,
    }
    # An item that does not say a property passes its filter, as in _passes.
    limits = (("eo:cloud_cover", query.max_cloud), ("view:off_nadir", query.max_off_nadir))
    clauses = [{"op": "or", "args": [{"op": "isNull", "args": [{"property": name}]},
                                     {"op": "<=", "args": [{"property": name}, limit]}]}
               for name, limit in limits if limit is not None]
    if filters and clauses:
        parameters["filter"] = clauses[0] if len(clauses) == 1 else {"op": "and", "args": clauses}
        parameters["filter_lang"] = "cql2-json"
    return parameters


def _collection_fields(client: pystac_client.Client, collection_id: object,
                       cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The collection's licence and providers (items often leave them to it); empty when unknown."""
    if not isinstance(collection_id, str):
        return {}
    if collection_id not in cache:
        try:
            collection = client.get_collection(collection_id)
            if collection is None:
                raise KeyError(collection_id)
            cache[collection_id] = {"license": collection.license,
                                    "providers": [p.to_dict() for p in collection.providers or []]}
        except (APIError, OSError, ValueError, KeyError) as error:
            log.info("collection %s of the STAC API cannot be read (%s); items keep their own fields",
                     collection_id, error)
            cache[collection_id] = {}
    return cache[collection_id]


def _interval(query: StacQuery) -> str | None:
    if query.since is None and query.until is None:
        return None
    start = query.since.isoformat().replace("+00:00", "Z") if query.since else ".."
    end = query.until.isoformat().replace("+00:00", "Z") if query.until else ".."
    return f"{start}/{end}"


def _walk(root_href: str, root: dict[str, Any], query: StacQuery) -> Iterator[StacEntry]:
    """Depth first through child links; a child already on the path from the root is a loop."""
    seen_items: set[str] = set()
    stack: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [(make_absolute_href(root_href), root, ())]
    while stack:
        href, document, path = stack.pop()
        path = (*path, href)
        defaults = {"license": document.get("license"), "providers": document.get("providers")}
        children: list[tuple[str, dict[str, Any], tuple[str, ...]]] = []
        for rel, target in _links(document, href):
            if rel == "child":
                if target in path:
                    raise StacLoopError(
                        f"{href}: its child link {target} leads back to a catalog on the path from the root "
                        f"({' -> '.join(path)}); the catalog loops, fix that link"
                    )
                try:
                    child = _read_json(target, what="child catalog")
                except StacSourceError as error:  # one broken branch: its items are missed, not the others
                    yield StacProblem(target, f"{error} (linked from {href})")
                    continue
                children.append((target, child, path))
            elif rel == "item" and target not in seen_items:
                seen_items.add(target)
                yield from _linked_item(target, query, defaults)
        stack.extend(reversed(children))  # children in link order


def _links(document: Mapping[str, Any], href: str) -> Iterator[tuple[str, str]]:
    links = document.get("links")
    for link in links if isinstance(links, list) else []:
        if (isinstance(link, dict) and link.get("rel") in ("child", "item")
                and isinstance(link.get("href"), str)):
            yield str(link["rel"]), make_absolute_href(link["href"], href)


def _linked_item(href: str, query: StacQuery, defaults: Mapping[str, Any]) -> Iterator[StacEntry]:
    try:
        document = TimedStacIO().read_json(href)
    except (OSError, ValueError) as error:
        yield StacProblem(href, f"STAC item {href}: cannot be read ({error}); fix or remove it")
        return
    yield from _entry(document, base=href, query=query, defaults=defaults, fallback_label=href,
                      self_href=href)


def _entry(document: object, *, base: str, query: StacQuery, fallback_label: str,
           defaults: Mapping[str, Any] | None = None, self_href: str | None = None) -> Iterator[StacEntry]:
    """The chosen asset of the item ``document`` when it passes ``query``; a problem naming it when bad."""
    item_id = document.get("id") if isinstance(document, dict) else None
    where = self_href or _self_link(document) or fallback_label
    label = f"STAC item {item_id} ({where})" if isinstance(item_id, str) else f"STAC item at {where}"
    try:
        if not isinstance(document, dict):
            raise ValueError("it is not a JSON object")
        _check_time_fields(document)
        item = pystac.Item.from_dict(dict(document), href=self_href)
        footprint, metadata = _item_fields(item, document, defaults)
        ref = _asset_ref(item, footprint, metadata, base)
    except (pystac.STACError, ValueError, TypeError, KeyError, AttributeError) as error:
        text = str(error) or type(error).__name__
        if isinstance(error, KeyError):
            text = f"required field {text} is missing"
        yield StacProblem(label, f"{label}: malformed ({text}); fix the item or ask its provider")
        return
    if ref is None:
        # Wanted (over the sites, in the filters) but unreadable: said, not dropped in silence.
        if _passes(footprint, item.collection_id, metadata, query):
            yield StacProblem(label, f"{label}: {_NO_RASTER} ({_asset_list(item)}); {_READABLE}")
        return
    if _passes(ref.footprint, ref.collection, ref.metadata, query):
        yield ref


_NO_RASTER = "no asset sitewatch can read windows from"
_READABLE = ("it reads GeoTIFF/COG and JPEG2000 assets (media type image/tiff or image/jp2, or a .tif, .tiff "
             "or .jp2 href) that are not thumbnails, overviews, metadata or masks: add one to the item or "
             "ask its provider")


def _asset_list(item: pystac.Item) -> str:
    listed = [f"{key}: {asset.media_type or 'no media type'}, roles {', '.join(asset.roles or []) or 'none'}"
              for key, asset in item.assets.items()]
    return "assets " + "; ".join(listed) if listed else "it has no assets"


def _self_link(document: object) -> str | None:
    """The item's own ``self`` link (an API's items carry one), to name a bad item where it can be found."""
    links = document.get("links") if isinstance(document, dict) else None
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("rel") == "self" and isinstance(link.get("href"), str):
            return str(link["href"])
    return None


def _check_time_fields(document: Mapping[str, Any]) -> None:
    """Say which time field is bad (pystac's own message does not name it)."""
    properties = document.get("properties")
    if not isinstance(properties, dict):
        raise ValueError("it has no 'properties' object")
    for key in ("datetime", "start_datetime", "end_datetime"):
        value = properties.get(key)
        if value is not None and (not isinstance(value, str) or parse_timestamp(value) is None):
            raise ValueError(f"properties.{key} {value!r} is not an ISO 8601 time")
    if properties.get("datetime") is None and properties.get("start_datetime") is None:
        raise ValueError("properties.datetime is null and there is no start_datetime")


def _item_fields(item: pystac.Item, document: Mapping[str, Any],
                 defaults: Mapping[str, Any] | None) -> tuple[Polygon | MultiPolygon, StacSidecar]:
    """The item's footprint and what it says of its acquisition; ValueError naming what is missing."""
    if item.geometry is None:
        raise ValueError("it has no geometry, so it cannot be matched to sites")
    footprint = shape(item.geometry)
    if not isinstance(footprint, Polygon | MultiPolygon) or footprint.is_empty:
        raise ValueError(f"its geometry is a {footprint.geom_type}, not an area")
    metadata = item_metadata(document, item.get_self_href() or item.id, defaults)
    if metadata is None or metadata.acquired is None:
        raise ValueError("it has no datetime or start_datetime")
    return footprint, metadata


def _asset_ref(item: pystac.Item, footprint: Polygon | MultiPolygon, metadata: StacSidecar,
               base: str) -> StacAssetRef | None:
    """The asset to read, or None when the item has none sitewatch can read."""
    self_href = item.get_self_href()
    choice = choose_asset(item)
    if choice is None:
        return None
    key, asset, bands = choice
    href = make_absolute_href(asset.href, self_href or base)
    asset_gsd = asset.extra_fields.get("gsd")
    if isinstance(asset_gsd, int | float) and not isinstance(asset_gsd, bool) and asset_gsd > 0:
        metadata = replace(metadata, gsd=float(asset_gsd))
    return StacAssetRef(item_id=item.id, collection=item.collection_id, item_href=self_href, asset_key=key,
                        href=href, bands=bands, footprint=footprint, metadata=metadata)


def _passes(footprint: BaseGeometry, collection: str | None, meta: StacSidecar, query: StacQuery) -> bool:
    acquired = meta.acquired
    if query.area is not None and not footprint.intersects(query.area):
        return False
    if acquired is not None and query.since is not None and acquired < ensure_utc(query.since):
        return False
    if acquired is not None and query.until is not None and acquired > ensure_utc(query.until):
        return False
    if query.collections and collection not in query.collections:
        return False
    if query.max_cloud is not None and meta.cloud_cover is not None \
            and meta.cloud_cover * 100.0 > query.max_cloud + 1e-9:
        return False
    if (query.max_off_nadir is not None and meta.off_nadir is not None
            and meta.off_nadir > query.max_off_nadir):
        return False
    return not (query.max_gsd is not None and meta.gsd is not None and meta.gsd > query.max_gsd)


def asset_bands(asset: pystac.Asset) -> tuple[str, ...] | None:
    """Band names of ``asset`` from ``eo:bands`` (STAC 1.0) or ``bands`` (1.1): common name, else name.

    STAC's ``nir08`` is called ``nir`` when no band is called that, so vegetation indices find it
    in WorldView's 8 bands as in NAIP's 4.
    """
    return _band_names(asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands"))


def _band_names(entries: object) -> tuple[str, ...] | None:
    if not isinstance(entries, list) or not entries:
        return None
    names: list[str] = []
    for index, entry in enumerate(entries, start=1):
        name = None
        if isinstance(entry, dict):
            name = entry.get("common_name") or entry.get("eo:common_name") or entry.get("name")
        names.append(name.strip().lower() if isinstance(name, str) and name.strip() else f"b{index}")
    if "nir" not in names and "nir08" in names:
        names[names.index("nir08")] = "nir"
    return tuple(names)


def _is_raster(asset: pystac.Asset) -> bool:
    media = (asset.media_type or "").lower()
    if media:
        return media.startswith(RASTER_MEDIA_TYPES)
    return asset.href.lower().split("?")[0].endswith(RASTER_SUFFIXES)


def _rank(key: str, asset: pystac.Asset, bands: tuple[str, ...] | None) -> int:
    """0 a true-colour product, 1 pan-sharpened or multispectral with RGB, 2 panchromatic, 3 other."""
    roles = set(asset.roles or [])
    if "visual" in roles or key.lower() in ("visual", "rgb", "tci"):
        return 0
    if bands is not None and set(bands) >= _RGB:
        return 1
    if (bands is not None and bands == ("pan",)) or "pan" in key.lower().replace("pansharp", ""):
        return 2
    return 3


def choose_asset(item: pystac.Item) -> tuple[str, pystac.Asset, tuple[str, ...] | None] | None:
    """The asset to read from ``item``: a true-colour (``visual``) product first, then one with red,
    green and blue bands (the finest ``gsd`` among them: pan-sharpened before multispectral), then
    panchromatic, then any other raster; thumbnails, overviews, metadata and masks never. None when
    the item has no raster asset.
    """
    rasters = [(key, asset) for key, asset in item.assets.items()
               if _is_raster(asset) and not (set(asset.roles or []) & _SKIPPED_ROLES
                                             and not set(asset.roles or []) & {"data", "visual"})]
    # Item-level band names (STAC 1.0 allowed them) can only be an asset's when it is the only raster.
    item_bands = _band_names(item.properties.get("eo:bands")) if len(rasters) == 1 else None
    candidates: list[tuple[int, float, int, str, pystac.Asset, tuple[str, ...] | None]] = []
    for position, (key, asset) in enumerate(rasters):
        bands = asset_bands(asset) or item_bands
        gsd = asset.extra_fields.get("gsd")
        fineness = float(gsd) if isinstance(gsd, int | float) and not isinstance(gsd, bool) else float("inf")
        candidates.append((_rank(key, asset, bands), fineness, position, key, asset, bands))
    if not candidates:
        return None
    _, _, _, key, asset, bands = min(candidates, key=lambda c: c[:3])
    return key, asset, bands


def union_area(geometries: Sequence[BaseGeometry]) -> BaseGeometry | None:
    """One geometry covering ``geometries`` (the sites), for the search's ``intersects``."""
    if not geometries:
        return None
    return union_all(list(geometries))
