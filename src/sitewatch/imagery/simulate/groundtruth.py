"""Ground truth of a simulated run: every object of every image, and every event interval.

Written as one ``ground_truth.json`` beside the site folders (schema in docs/simulator.md) and
read back into frozen values by :func:`load_ground_truth`, so evaluations never parse JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import Polygon

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.timeutil import parse_utc
from sitewatch.imagery.simulate.activity import SceneObject
from sitewatch.imagery.simulate.layout import Grid, rectangle
from sitewatch.imagery.simulate.painters import drawn_box, footprint_corners, top_corners
from sitewatch.imagery.simulate.render import RenderedScene
from sitewatch.imagery.simulate.scenario import Event

GROUND_TRUTH_FILE = "ground_truth.json"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class TruthObject:
    id: str
    object_class: str
    """car, large_vehicle, tanker_truck, rail_car, crane or structure."""
    zone: str | None
    polygon: Polygon
    """Rotated box on the ground in map coordinates of the image CRS (true position, no misregistration)."""
    pixel_box: tuple[float, float, float, float]
    """(col_min, row_min, col_max, row_max) where the object appears in the image file, pixel edges."""
    pixel_corners: tuple[tuple[float, float], ...]
    """Rotated box corners (col, row) as they appear in the image file (shift included)."""
    length: float
    width: float
    angle: float
    height: float
    variant: str
    progress: float = 1.0


@dataclass(frozen=True, slots=True)
class ImageTruth:
    site_id: str
    acquired: datetime
    file: str
    """Image path relative to the run folder."""
    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    gsd: float
    shift_px: tuple[int, int]
    """True misregistration (rows, cols): a ground feature at nominal pixel (r, c) appears at (r+dy, c+dx)."""
    shift_m: tuple[float, float]
    """The same shift as a map offset (east, north) in metres."""
    cloud_fraction: float
    sun_elevation: float
    sun_azimuth: float
    off_nadir: float
    view_azimuth: float
    objects: tuple[TruthObject, ...]

    def count(self, object_class: str, zone: str | None = None) -> int:
        return sum(
            1 for o in self.objects if o.object_class == object_class and (zone is None or o.zone == zone)
        )


@dataclass(frozen=True, slots=True)
class EventTruth:
    site_id: str
    id: str
    zone: str
    zones: tuple[str, ...]
    kind: str
    start: date
    end: date
    """Inclusive."""
    alert_expected: bool
    description: str

    def covers(self, when: date | datetime) -> bool:
        day = when.date() if isinstance(when, datetime) else when
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class GroundTruth:
    scenario: str
    seed: int
    checksum: str
    images: tuple[ImageTruth, ...]
    events: tuple[EventTruth, ...]

    def images_of(self, site_id: str) -> tuple[ImageTruth, ...]:
        return tuple(i for i in self.images if i.site_id == site_id)

    def events_of(self, site_id: str, zone: str | None = None) -> tuple[EventTruth, ...]:
        return tuple(e for e in self.events if e.site_id == site_id and (zone is None or zone in e.zones))


def truth_objects(scene: RenderedScene) -> tuple[TruthObject, ...]:
    """Ground truth of the objects of a rendered scene, in map and image pixel coordinates."""
    grid = scene.grid
    lean = scene.conditions.lean
    dy, dx = scene.conditions.shift
    found = []
    for obj in scene.objects:
        ground = footprint_corners(obj)
        seen = _visible_corners(obj, lean)
        pixels = _to_image_pixels(grid, seen, dy, dx)
        box_pixels = _to_image_pixels(
            grid, ground if obj.object_class not in ("crane", "structure") else seen, dy, dx
        )
        length, width, height = drawn_box(obj)
        found.append(
            TruthObject(
                id=obj.id,
                object_class=obj.object_class,
                zone=obj.zone,
                polygon=Polygon(ground),
                pixel_box=(
                    float(pixels[:, 0].min()),
                    float(pixels[:, 1].min()),
                    float(pixels[:, 0].max()),
                    float(pixels[:, 1].max()),
                ),
                pixel_corners=tuple((float(c), float(r)) for c, r in box_pixels[:4]),
                length=float(length),
                width=float(width),
                angle=float(obj.angle),
                height=float(height),
                variant=obj.variant,
                progress=float(obj.progress),
            )
        )
    return tuple(found)


def _visible_corners(obj: SceneObject, lean: tuple[float, float]) -> np.ndarray:
    """Map points spanning what the sensor sees of the object (tall things lean)."""
    if obj.object_class == "crane":
        top = top_corners(obj, lean)
        mast = obj.mast if obj.mast is not None else (obj.cx, obj.cy)
        return np.vstack([top, rectangle(mast[0], mast[1], 2.2, 2.2, obj.angle)])
    if obj.object_class == "structure":
        return np.vstack([top_corners(obj, lean), footprint_corners(obj)])
    return footprint_corners(obj)


def _to_image_pixels(grid: Grid, xy: np.ndarray, dy: int, dx: int) -> np.ndarray:
    cols = (xy[:, 0] - grid.west) / grid.gsd + dx
    rows = (grid.north - xy[:, 1]) / grid.gsd + dy
    return np.stack([cols, rows], axis=1)


# --- JSON -----------------------------------------------------------------------------------


def image_to_json(image: ImageTruth) -> dict[str, Any]:
    return {
        "site": image.site_id,
        "datetime": image.acquired.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "file": image.file,
        "crs": image.crs,
        "transform": list(image.transform),
        "width": image.width,
        "height": image.height,
        "gsd": image.gsd,
        "shift_px": list(image.shift_px),
        "shift_m": [round(v, 3) for v in image.shift_m],
        "cloud_fraction": round(image.cloud_fraction, 4),
        "sun_elevation": round(image.sun_elevation, 3),
        "sun_azimuth": round(image.sun_azimuth, 3),
        "off_nadir": round(image.off_nadir, 3),
        "view_azimuth": round(image.view_azimuth, 3),
        "objects": [_object_to_json(o) for o in image.objects],
    }


def _object_to_json(obj: TruthObject) -> dict[str, Any]:
    return {
        "id": obj.id,
        "class": obj.object_class,
        "zone": obj.zone,
        "polygon": [[round(x, 3), round(y, 3)] for x, y in obj.polygon.exterior.coords],
        "pixel_box": [round(v, 2) for v in obj.pixel_box],
        "pixel_corners": [[round(c, 2), round(r, 2)] for c, r in obj.pixel_corners],
        "length": round(obj.length, 3),
        "width": round(obj.width, 3),
        "angle": round(obj.angle, 3),
        "height": round(obj.height, 3),
        "variant": obj.variant,
        "progress": round(obj.progress, 4),
    }


def event_truth(site_id: str, event: Event) -> EventTruth:
    return EventTruth(
        site_id=site_id,
        id=event.id,
        zone=event.zone,
        zones=event.zones,
        kind=event.kind,
        start=event.start,
        end=event.end,
        alert_expected=event.alert_expected,
        description=" ".join(event.description.split()),
    )


def event_to_json(event: EventTruth) -> dict[str, Any]:
    return {
        "site": event.site_id,
        "id": event.id,
        "zone": event.zone,
        "zones": list(event.zones),
        "kind": event.kind,
        "start": event.start.isoformat(),
        "end": event.end.isoformat(),
        "alert_expected": event.alert_expected,
        "description": event.description,
    }


def load_ground_truth(folder: str | Path) -> GroundTruth:
    """Read ``ground_truth.json`` of a simulated run in ``folder`` into typed values."""
    path = Path(folder) / GROUND_TRUTH_FILE
    if not path.is_file():
        raise UnsupportedInputError(
            f"{path} not found: {folder} is not a simulator output folder; "
            f"run `sitewatch simulate --out {folder}`"
        )
    try:
        document = json.loads(path.read_text("utf-8"))
        return GroundTruth(
            scenario=document["scenario"],
            seed=int(document["seed"]),
            checksum=document["checksum"],
            images=tuple(_image_from_json(i) for i in document["images"]),
            events=tuple(
                EventTruth(
                    site_id=e["site"],
                    id=e["id"],
                    zone=e["zone"],
                    zones=tuple(e["zones"]),
                    kind=e["kind"],
                    start=date.fromisoformat(e["start"]),
                    end=date.fromisoformat(e["end"]),
                    alert_expected=bool(e["alert_expected"]),
                    description=e["description"],
                )
                for e in document["events"]
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UnsupportedInputError(
            f"{path} is not a valid sitewatch ground truth file ({type(error).__name__}: {error}); "
            "re-run `sitewatch simulate` to regenerate it"
        ) from None


def _image_from_json(raw: dict[str, Any]) -> ImageTruth:
    return ImageTruth(
        site_id=raw["site"],
        acquired=parse_utc(raw["datetime"]),
        file=raw["file"],
        crs=raw["crs"],
        transform=_six(raw["transform"]),
        width=int(raw["width"]),
        height=int(raw["height"]),
        gsd=float(raw["gsd"]),
        shift_px=(int(raw["shift_px"][0]), int(raw["shift_px"][1])),
        shift_m=(float(raw["shift_m"][0]), float(raw["shift_m"][1])),
        cloud_fraction=float(raw["cloud_fraction"]),
        sun_elevation=float(raw["sun_elevation"]),
        sun_azimuth=float(raw["sun_azimuth"]),
        off_nadir=float(raw["off_nadir"]),
        view_azimuth=float(raw["view_azimuth"]),
        objects=tuple(
            TruthObject(
                id=o["id"],
                object_class=o["class"],
                zone=o["zone"],
                polygon=Polygon(o["polygon"]),
                pixel_box=_four(o["pixel_box"]),
                pixel_corners=tuple((c, r) for c, r in o["pixel_corners"]),
                length=o["length"],
                width=o["width"],
                angle=o["angle"],
                height=o["height"],
                variant=o["variant"],
                progress=o["progress"],
            )
            for o in raw["objects"]
        ),
    )


def _six(values: list[float]) -> tuple[float, float, float, float, float, float]:
    a, b, c, d, e, f = (float(v) for v in values)
    return a, b, c, d, e, f


def _four(values: list[float]) -> tuple[float, float, float, float]:
    a, b, c, d = (float(v) for v in values)
    return a, b, c, d
