"""Training frames from web-map tiles (XYZ: ``<x>-<y>-<z>`` in the file name) and labels drawn over them.

OpenAerialMap serves drone and aircraft orthophotos as 256-pixel web-mercator tiles. A folder of
such tiles is joined into one mosaic per connected group of tiles at the chosen zoom, and the
boxes of a GeoJSON file (polygons in longitude/latitude, ``class`` property: a detector class or
``ignore``) are mapped onto it. The project labelled the vehicles of the Kampala tiles in
``../shared/data`` this way (``configs/labels/kampala_oam_vehicles.geojson``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.training.data import IGNORE_CLASS, TrainingFrame

TILE = 256
EQUATOR_METRES_PER_PIXEL = 2 * math.pi * 6378137.0 / TILE
"""Web-mercator metres per pixel at zoom 0 on the equator."""
_TILE_NAME = re.compile(r"(\d+)-(\d+)-(\d+)$")


def tile_gsd(zoom: int, latitude: float) -> float:
    """Ground metres per pixel of a web-mercator tile at ``zoom`` and ``latitude`` degrees."""
    return EQUATOR_METRES_PER_PIXEL * math.cos(math.radians(latitude)) / 2**zoom


def lonlat_to_pixel(lon: float, lat: float, zoom: int) -> tuple[float, float]:
    """Global web-mercator pixel (x, y) of a longitude/latitude at ``zoom``."""
    size = TILE * 2**zoom
    x = (lon + 180.0) / 360.0 * size
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * size
    return x, y


def pixel_to_latitude(y: float, zoom: int) -> float:
    size = TILE * 2**zoom
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / size))))


def _tiles(folder: Path, zoom: int) -> dict[tuple[int, int], Path]:
    found = {}
    for path in sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg")):
        match = _TILE_NAME.search(path.stem)
        if match and int(match.group(3)) == zoom:
            found[(int(match.group(1)), int(match.group(2)))] = path
    return found


def _groups(tiles: Sequence[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Connected groups of tiles (edge neighbours), each sorted, largest first."""
    left = set(tiles)
    groups = []
    while left:
        stack = [min(left)]
        left.discard(stack[0])
        group = []
        while stack:
            x, y = stack.pop()
            group.append((x, y))
            for neighbour in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if neighbour in left:
                    left.discard(neighbour)
                    stack.append(neighbour)
        groups.append(sorted(group))
    return sorted(groups, key=lambda g: (-len(g), g[0]))


@dataclass(frozen=True, slots=True)
class Mosaic:
    """One connected group of tiles joined into an image."""

    name: str
    image: Image.Image
    origin: tuple[int, int]
    """Global web-mercator pixel (x, y) of the image's top-left corner at its zoom."""
    zoom: int
    missing: tuple[tuple[int, int, int, int], ...]
    """Boxes (image pixels) of tiles missing inside the group's rectangle (black)."""

    @property
    def gsd(self) -> float:
        return tile_gsd(self.zoom, pixel_to_latitude(self.origin[1] + self.image.height / 2, self.zoom))


def tile_mosaics(folder: Path, zoom: int) -> list[Mosaic]:
    """The folder's tiles at ``zoom`` joined into one image per connected group, largest first."""
    tiles = _tiles(folder, zoom)
    if not tiles:
        raise UnsupportedInputError(f"{folder}: no web-map tiles named '<x>-<y>-{zoom}.png' found")
    mosaics = []
    for group in _groups(list(tiles)):
        xs, ys = [t[0] for t in group], [t[1] for t in group]
        x0, y0 = min(xs), min(ys)
        image = Image.new("RGB", ((max(xs) - x0 + 1) * TILE, (max(ys) - y0 + 1) * TILE))
        present = set(group)
        missing = []
        for tx in range(x0, max(xs) + 1):
            for ty in range(y0, max(ys) + 1):
                left, top = (tx - x0) * TILE, (ty - y0) * TILE
                if (tx, ty) in present:
                    with Image.open(tiles[(tx, ty)]) as tile:
                        image.paste(tile.convert("RGB"), (left, top))
                else:
                    missing.append((left, top, left + TILE, top + TILE))
        mosaics.append(Mosaic(f"{folder.name}-z{zoom}-{x0}-{y0}", image, (x0 * TILE, y0 * TILE), zoom,
                              tuple(missing)))
    return mosaics


def read_polygons(path: Path, zoom: int, *, class_property: str | None = "class"
                  ) -> list[tuple[str, NDArray[np.float64]]]:
    """(class, outer ring as (n, 2) global pixel x, y at ``zoom``) of every polygon of a GeoJSON file
    in longitude/latitude. ``class_property`` None reads outlines without a class (class ``""``)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        features = document["features"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UnsupportedInputError(
            f"tile labels {path}: not a GeoJSON FeatureCollection ({error}); give polygons in "
            "longitude/latitude with a 'class' property") from None
    polygons = []
    for number, feature in enumerate(features):
        try:
            name = str(feature["properties"][class_property]) if class_property else ""
            ring = feature["geometry"]["coordinates"][0]
            points = np.array([lonlat_to_pixel(float(lon), float(lat), zoom) for lon, lat in ring])
        except (KeyError, TypeError, ValueError, IndexError):
            raise UnsupportedInputError(
                f"tile labels {path}: feature {number} needs a Polygon geometry and a '{class_property}' "
                "property") from None
        polygons.append((name, points))
    return polygons


def read_tile_mosaics(folder: Path, *, zoom: int, labels: Path | None, classes: Sequence[str],
                      rotatable: bool = False) -> list[TrainingFrame]:
    """One training frame per connected group of the folder's tiles at ``zoom``, with the labels on it.

    Labels of classes not in ``classes`` are left out; ``ignore`` labels become ignore regions.
    Missing tiles inside a group's rectangle are black and ignored. ``rotatable`` is False by
    default: hand-drawn boxes are axis-aligned around vehicles at any heading.
    """
    found = read_polygons(labels, zoom) if labels is not None else []
    frames = []
    for mosaic in tile_mosaics(folder, zoom):
        width, height = mosaic.image.size
        ignore = [(float(a), float(b), float(c), float(d)) for a, b, c, d in mosaic.missing]
        boxes, indices = [], []
        for name, ring in found:
            x0, y0 = ring.min(axis=0) - mosaic.origin
            x1, y1 = ring.max(axis=0) - mosaic.origin
            box = (float(x0), float(y0), float(x1), float(y1))
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            if not (0 <= centre[0] < width and 0 <= centre[1] < height):
                continue
            if name == IGNORE_CLASS:
                ignore.append(box)
            elif name in classes:
                boxes.append(box)
                indices.append(list(classes).index(name))
        frames.append(TrainingFrame(
            name=mosaic.name, image=mosaic.image, gsd=mosaic.gsd,
            boxes=np.asarray(boxes, np.float32).reshape(-1, 4), classes=np.asarray(indices, np.int64),
            ignore=np.asarray(ignore, np.float32).reshape(-1, 4), rotatable=rotatable,
        ))
    return frames
