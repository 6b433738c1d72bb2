"""Imagery of observations: Web Mercator XYZ tiles for the map, a whole-chip preview, and the
evidence picture of the viewer (every chip pixel, unseen pixels hatched).

There is no internet basemap: the site's own chips are the map. Only chips that
resolve inside the workspace's ``chips/`` folder are ever opened, so no request can
make the server read a file elsewhere.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.models import ImageData

from sitewatch.app.report.images import load_chip_picture, render_picture, rgb_indexes, shared_stretch
from sitewatch.app.web.auth import Caller, reader
from sitewatch.app.web.deps import WorkspaceDep
from sitewatch.app.web.errors import BadRequestError
from sitewatch.core.errors import ImageryError, NotFoundError
from sitewatch.core.types import Observation
from sitewatch.store.protocol import Store

router = APIRouter(prefix="/api/observations", tags=["imagery"])
ReaderDep = Annotated[Caller, Depends(reader)]
_PNG = "image/png"
_CACHE_HEADERS = {"Cache-Control": "private, max-age=3600"}


def chip_file(ws: Store, observation: Observation) -> Path:
    """The chip of ``observation``, refusing any path that leaves the workspace's chips folder."""
    chips = (ws.root / "chips").resolve()
    path = ws.chip_path(observation).resolve()
    if not path.is_relative_to(chips):
        raise NotFoundError(
            f"observation {observation.id!r} points outside the workspace's chips folder; re-ingest it"
        )
    if not path.is_file():
        raise NotFoundError(
            f"the chip of observation {observation.id!r} is missing ({path.name}); re-ingest it"
        )
    return path


class _Stretch:
    """Per-chip display stretch (2nd-98th percentile per band), computed once per observation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, list[tuple[float, float]]] = {}

    def ranges(
        self, observation_id: str, source: Reader, indexes: tuple[int, ...]
    ) -> list[tuple[float, float]]:
        with self._lock:
            if observation_id in self._known:
                return self._known[observation_id]
        preview = source.preview(indexes=indexes, max_size=512)
        ranges = []
        for band in range(preview.count):
            valid = (
                preview.array[band].compressed() if np.ma.isMaskedArray(preview.array) else preview.data[band]
            )
            low, high = np.percentile(valid, (2, 98)) if valid.size else (0.0, 1.0)
            ranges.append((float(low), float(high) if high > low else float(low) + 1.0))
        with self._lock:
            self._known[observation_id] = ranges
        return ranges


_stretch = _Stretch()


def _band_indexes(ws: Store, observation: Observation, count: int) -> tuple[int, ...]:
    try:
        names: tuple[str, ...] = ws.scene(observation.scene_id).bands
    except NotFoundError:
        names = ()
    return rgb_indexes(names, count)


def _render(image: ImageData, observation_id: str, source: Reader, indexes: tuple[int, ...]) -> bytes:
    if image.data.dtype != np.uint8:
        image.rescale(in_range=_stretch.ranges(observation_id, source, indexes))
    return image.render(img_format="PNG")


def _open(ws: Store, observation_id: str) -> tuple[Observation, Path]:
    observation = ws.observation(observation_id)
    return observation, chip_file(ws, observation)


@router.get(
    "/{observation_id}/tiles/{z}/{x}/{y}.png",
    response_class=Response,
    responses={200: {"content": {_PNG: {}}}},
    summary="A Web Mercator tile of an observation's chip",
)
def tile(
    observation_id: str,
    ws: WorkspaceDep,
    _: ReaderDep,
    z: Annotated[int, PathParam(ge=0, le=24)],
    x: Annotated[int, PathParam(ge=0)],
    y: Annotated[int, PathParam(ge=0)],
) -> Response:
    observation, path = _open(ws, observation_id)
    try:
        with Reader(str(path)) as source:
            indexes = _band_indexes(ws, observation, source.dataset.count)
            image = source.tile(x, y, z, indexes=indexes)
            return Response(
                _render(image, observation.id, source, indexes), media_type=_PNG, headers=_CACHE_HEADERS
            )
    except TileOutsideBounds:
        raise NotFoundError(f"tile {z}/{x}/{y} lies outside observation {observation_id!r}") from None
    except OSError as error:
        raise ImageryError(f"cannot read the chip of observation {observation_id!r}: {error}") from None


@router.get(
    "/{observation_id}/preview.png",
    response_class=Response,
    responses={200: {"content": {_PNG: {}}}},
    summary="The whole chip on its site grid (north up), for the before/after view",
)
def preview(observation_id: str, ws: WorkspaceDep, _: ReaderDep) -> Response:
    observation, path = _open(ws, observation_id)
    try:
        with Reader(str(path)) as source:
            indexes = _band_indexes(ws, observation, source.dataset.count)
            image = source.preview(indexes=indexes, max_size=1024)
            return Response(
                _render(image, observation.id, source, indexes), media_type=_PNG, headers=_CACHE_HEADERS
            )
    except OSError as error:
        raise ImageryError(f"cannot read the chip of observation {observation_id!r}: {error}") from None


@router.get(
    "/{observation_id}/evidence.png",
    response_class=Response,
    responses={200: {"content": {_PNG: {}}}},
    summary="Every pixel of the chip on its site grid, pixels the image did not see hatched (the viewer)",
)
def evidence(
    observation_id: str,
    ws: WorkspaceDep,
    _: ReaderDep,
    stretch_with: Annotated[
        str | None,
        Query(max_length=200, description="another observation of the site: the two share one contrast "
              "stretch, so a change of brightness between them shows as one"),
    ] = None,
) -> Response:
    """Opaque everywhere: a masked pixel is the hatch, never transparent, so no layer beneath
    (another date) can show through it in the evidence viewer."""
    observation, path = _open(ws, observation_id)
    paths = [path]
    if stretch_with is not None and stretch_with != observation.id:
        other, other_path = _open(ws, stretch_with)
        if other.site_id != observation.site_id:
            raise BadRequestError(
                f"stretch_with={stretch_with!r} is an observation of site {other.site_id!r}, not of "
                f"{observation.site_id!r}; pass an observation of the same site"
            )
        paths.append(other_path)
    try:
        pictures = [load_chip_picture(p) for p in paths]
    except OSError as error:
        raise ImageryError(f"cannot read the chip of observation {observation_id!r}: {error}") from None
    image = render_picture(pictures[0], shared_stretch(pictures), max_size=None, hatched=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return Response(buffer.getvalue(), media_type=_PNG, headers=_CACHE_HEADERS)


@router.get(
    "/{observation_id}/grid",
    summary="The chip's grid: size, bounds in the site CRS and in longitude/latitude, EPSG code",
)
def grid(observation_id: str, ws: WorkspaceDep, _: ReaderDep) -> dict[str, Any]:
    path = _open(ws, observation_id)[1]
    try:
        with Reader(str(path)) as source:
            dataset = source.dataset
            return {
                "width": dataset.width,
                "height": dataset.height,
                "bounds": list(dataset.bounds),
                "epsg": dataset.crs.to_epsg() if dataset.crs else None,
                "lonlat_bounds": list(transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)),
            }
    except OSError as error:
        raise ImageryError(f"cannot read the chip of observation {observation_id!r}: {error}") from None


THUMBNAIL_SIZE = 160
"""Pixels on the longer side of a queue thumbnail."""
_THUMBNAIL_PAD = 0.15
"""Share of the zone's size shown around it, so the zone is seen with its surroundings."""


class _Thumbnails:
    """Rendered thumbnails, kept per (chip file, its modification time, zone): the morning queue
    shows the same few on every visit, and reading a chip window each time would be wasted work."""

    def __init__(self, max_entries: int = 512) -> None:
        self._lock = threading.Lock()
        self._max = max_entries
        self._known: OrderedDict[tuple[str, int, str | None], bytes] = OrderedDict()

    def get(self, key: tuple[str, int, str | None]) -> bytes | None:
        with self._lock:
            found = self._known.get(key)
            if found is not None:
                self._known.move_to_end(key)
            return found

    def put(self, key: tuple[str, int, str | None], png: bytes) -> None:
        with self._lock:
            self._known[key] = png
            while len(self._known) > self._max:
                self._known.popitem(last=False)


_thumbnails = _Thumbnails()


@router.get(
    "/{observation_id}/thumbnail.png",
    response_class=Response,
    responses={200: {"content": {_PNG: {}}}},
    summary="A small crop of the chip around one zone (the whole chip without a zone), for the queue",
)
def thumbnail(
    observation_id: str,
    ws: WorkspaceDep,
    _: ReaderDep,
    zone: Annotated[str | None, Query(max_length=64, description="zone id of the observation's site")] = None,
) -> Response:
    observation, path = _open(ws, observation_id)
    key = (str(path), path.stat().st_mtime_ns, zone)
    png = _thumbnails.get(key)
    if png is None:
        area = None
        if zone is not None:
            site = ws.site(observation.site_id)
            found = next((z for z in site.zones if z.id == zone), None)
            if found is None:
                known = ", ".join(z.id for z in site.zones) or "none"
                raise NotFoundError(f"site {site.id!r} has no zone {zone!r}; its zones: {known}")
            area = found.geometry.bounds
        try:
            with Reader(str(path)) as source:
                indexes = _band_indexes(ws, observation, source.dataset.count)
                if area is None:
                    image = source.preview(indexes=indexes, max_size=THUMBNAIL_SIZE)
                else:
                    west, south, east, north = area
                    pad_x, pad_y = (east - west) * _THUMBNAIL_PAD, (north - south) * _THUMBNAIL_PAD
                    image = source.part(
                        (west - pad_x, south - pad_y, east + pad_x, north + pad_y),
                        dst_crs=source.crs,
                        bounds_crs=CRS.from_epsg(4326),
                        indexes=indexes,
                        max_size=THUMBNAIL_SIZE,
                    )
                png = _render(image, observation.id, source, indexes)
        except OSError as error:
            raise ImageryError(f"cannot read the chip of observation {observation_id!r}: {error}") from None
        _thumbnails.put(key, png)
    return Response(png, media_type=_PNG, headers=_CACHE_HEADERS)
