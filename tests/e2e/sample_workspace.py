"""A small real workspace for the web tests: one site, four observations with real COG chips,
detections, change regions, indicators, alerts, and one user of each role.

Everything goes through the store's public Workspace API, so the web layer is tested
against the real store and real files (no mocks). Chips are synthetic and seeded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box

from sitewatch.core.types import (
    Alert,
    AlertState,
    ChangeRegion,
    Detection,
    Hypothesis,
    IndicatorValue,
    Observation,
    Scene,
    Site,
    Zone,
    ZoneKind,
)
from sitewatch.store.users import user_store
from sitewatch.store.workspace import Workspace

SITE_ID = "testport"
LON, LAT = 124.705, 39.66
GSD = 2.0
SIZE = 128  # pixels per side of the site grid
PASSWORD = "correct-horse-battery"
START = datetime(2019, 2, 1, 2, 30, tzinfo=UTC)
OBSERVATION_COUNT = 4
MASKED_ROWS, MASKED_COLS = slice(100, SIZE), slice(0, 64)
"""Pixels the last image did not see (a cloud over the south-west of the site): masked in its chip."""


@dataclass(frozen=True)
class SampleWorkspace:
    root: Path
    site_id: str
    observation_ids: list[str]
    alert_ids: list[str]
    tokens: dict[str, str]
    """role name -> API token of that role's user (users are named after their role)."""


def _utm_box() -> tuple[float, float, float, float]:
    to_utm = Transformer.from_crs(4326, 32651, always_xy=True)
    x, y = to_utm.transform(LON, LAT)
    x0, y0 = round(x) - SIZE * GSD / 2, round(y) - SIZE * GSD / 2
    return x0, y0, x0 + SIZE * GSD, y0 + SIZE * GSD


def _lonlat(geometry_bounds: tuple[float, float, float, float]) -> Polygon:
    to_lonlat = Transformer.from_crs(32651, 4326, always_xy=True)
    minx, miny, maxx, maxy = geometry_bounds
    corners = [to_lonlat.transform(x, y) for x, y in ((minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy))]
    return Polygon(corners)


def sample_site() -> Site:
    minx, miny, maxx, maxy = _utm_box()
    outline = _lonlat((minx - 20, miny - 20, maxx + 20, maxy + 20))
    pad = _lonlat((minx + 10, miny + 10, minx + 120, miny + 120))
    yard = _lonlat((minx + 130, miny + 130, maxx - 10, maxy - 10))
    return Site(
        id=SITE_ID,
        name="Test Port",
        country="XX",
        category="space_launch",
        geometry=outline,
        zones=(
            Zone("pad", "Launch pad", ZoneKind.LAUNCH_PAD, pad),
            Zone("yard", "Rail yard", ZoneKind.RAIL_YARD, yard),
        ),
        aliases=("Testport Station",),
        gsd=GSD,
        approximate=True,
    )


def _write_chip(path: Path, seed: int, trucks: int, *, masked: bool = False) -> float:
    """Write a chip; returns its valid fraction."""
    rng = np.random.default_rng(seed)
    ground = rng.normal(110, 12, size=(3, SIZE, SIZE)).clip(0, 255)
    for index in range(trucks):
        row, col = 20 + 9 * index, 24 + 5 * index
        ground[:, row : row + 4, col : col + 8] = 240
    minx, _, _, maxy = _utm_box()
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32651",
        "transform": Affine(GSD, 0.0, minx, 0.0, -GSD, maxy),
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "compress": "deflate",
    }
    valid = np.ones((SIZE, SIZE), bool)
    if masked:
        valid[MASKED_ROWS, MASKED_COLS] = False
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as sink:
        sink.write(ground.astype(np.uint8))
        sink.write_mask(np.where(valid, 255, 0).astype(np.uint8))
    return float(valid.mean())


def build_sample_workspace(root: Path) -> SampleWorkspace:
    site = sample_site()
    minx, miny, maxx, maxy = _utm_box()
    observation_ids: list[str] = []
    alert_ids: list[str] = []
    with Workspace.init(root, sites=[site]) as ws:
        for index in range(OBSERVATION_COUNT):
            acquired = START + timedelta(days=7 * index)
            trucks = 2 if index < OBSERVATION_COUNT - 1 else 9
            staged = ws.staging_dir() / f"chip-{index}.tif"
            valid_fraction = _write_chip(staged, seed=index, trucks=trucks,
                                         masked=index == OBSERVATION_COUNT - 1)
            checksum = hashlib.sha256(staged.read_bytes()).hexdigest()
            scene = Scene(
                id=checksum[:16],
                uri=f"file:///imagery/test-{index}.tif",
                sensor="synthetic",
                acquired=acquired,
                gsd=GSD,
                crs="EPSG:32651",
                footprint=_lonlat((minx, miny, maxx, maxy)),
                bands=("red", "green", "blue"),
                width=SIZE,
                height=SIZE,
                checksum=checksum,
                cloud_cover=0.0,  # as a provider may say of a scene whose chip over the site is masked
                off_nadir=12.5 + index,
                license="CC0-1.0",
                attribution="synthetic test image",
                stac_item=f"test-{index}",
                stac_collection="synthetic-rgb",
                stac_href=f"https://stac.example.org/collections/synthetic-rgb/items/test-{index}",
            )
            observation_id = f"{SITE_ID}-{scene.id}"
            observation = Observation(
                id=observation_id,
                site_id=SITE_ID,
                scene_id=scene.id,
                acquired=acquired,
                chip_path=f"chips/{SITE_ID}/{observation_id}.tif",
                valid_fraction=valid_fraction,
            )
            ws.add_scene(scene, [(observation, staged)])
            observation_ids.append(observation_id)
            detections = [
                Detection(
                    observation_id,
                    "vehicle",
                    0.9,
                    box(
                        minx + (24 + 5 * t) * GSD,
                        maxy - (24 + 9 * t) * GSD,
                        minx + (32 + 5 * t) * GSD,
                        maxy - (20 + 9 * t) * GSD,
                    ),
                    zone_id="pad",
                    detector="test",
                )
                for t in range(trucks)
            ]
            ws.replace_detections(observation_id, detections)
            ws.replace_indicators(
                observation_id,
                [
                    IndicatorValue(
                        observation_id, SITE_ID, "pad", "vehicle_count", float(trucks), 1.0, acquired
                    ),
                    # the yard was under cloud in the second image: not observed, which is not zero
                    IndicatorValue(
                        observation_id,
                        SITE_ID,
                        "yard",
                        "vehicle_count",
                        None if index == 1 else 0.0,
                        0.0 if index == 1 else 1.0,
                        acquired,
                    ),
                ],
            )
            if index > 0:
                ws.replace_change_regions(
                    observation_id,
                    [
                        ChangeRegion(
                            observation_id,
                            observation_ids[index - 1],
                            box(minx + 20 * GSD, maxy - 110 * GSD, minx + 70 * GSD, maxy - 15 * GSD),
                            area_m2=50 * 95 * GSD * GSD,
                            mean_probability=0.8,
                            zone_id="pad",
                            detector="test",
                        )
                    ],
                )
        created = START + timedelta(days=30)
        alerts = [
            Alert(
                id="alert-quiet",
                site_id=SITE_ID,
                observation_id=observation_ids[1],
                acquired=START + timedelta(days=7),
                created=created,
                indicator="vehicle_count",
                value=2.0,
                baseline=2.0,
                score=1.0,
                explanation="earlier alert, judged benign",
                zone_id="pad",
                p_value=0.2,
            ),
            Alert(
                id="alert-trucks",
                site_id=SITE_ID,
                observation_id=observation_ids[-1],
                acquired=START + timedelta(days=21),
                created=created,
                indicator="vehicle_count",
                value=9.0,
                baseline=2.0,
                score=7.5,
                explanation="9 vehicles on the launch pad where 2 are usual",
                zone_id="pad",
                p_value=0.01,
                hypotheses=(Hypothesis("launch_preparation", "launch or test preparation", False, 120.0, 0.8),
                            Hypothesis("routine_delivery", "routine delivery", True, 30.0, 0.2)),
            ),
        ]
        ws.upsert_alerts(alerts)
        ws.set_alert_state("alert-quiet", AlertState.BENIGN, who="seed", comment="routine")
        alert_ids = [a.id for a in alerts]
        users = user_store(ws)
        tokens = {}
        for role in ("admin", "analyst", "viewer"):
            users.ensure_user(role, PASSWORD, role)
            tokens[role] = users.issue_token(role, "tests")
    return SampleWorkspace(
        root=root, site_id=SITE_ID, observation_ids=observation_ids, alert_ids=alert_ids, tokens=tokens
    )
