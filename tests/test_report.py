"""The HTML report: per site a timeline and alerts with before/after chips and drawn evidence."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.warp import transform_bounds
from shapely.geometry import box
from typer.testing import CliRunner

from range_server import RangeServer
from sitewatch.app.cli import app
from sitewatch.app.report import build_report
from sitewatch.app.report.images import load_chip_picture, rgb_indexes
from sitewatch.core.types import Alert, Assessment, ChangeRegion, Detection, Site, Zone
from sitewatch.pipeline.ingest import ingest, ingest_stac
from sitewatch.store import Workspace

RGB = Path(__file__).resolve().parent / "data" / "RGB.byte.tif"


def _site_over(path: Path) -> Site:
    """A test site well inside the footprint of ``path``."""
    with rasterio.open(path) as dataset:
        west, south, east, north = transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
    cx, cy = (west + east) / 2, (south + north) / 2
    outline = box(cx - 0.02, cy - 0.015, cx + 0.02, cy + 0.015)
    zone = Zone("north", "North half", "other", box(cx - 0.02, cy, cx + 0.02, cy + 0.015))
    return Site("test-site", "Test site", "US", "test", outline, zones=(zone,), gsd=60.0)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    images = tmp_path / "images"
    images.mkdir()
    for day in ("2020-01-01", "2020-01-11"):
        shutil.copy(RGB, images / f"rgb_{day}.tif")
        # Make the copies differ so they are distinct scenes.
        with rasterio.open(images / f"rgb_{day}.tif", "r+") as dataset:
            dataset.update_tags(NOTE=day)
    ws = Workspace.init(tmp_path / "ws", sites=[_site_over(RGB)])
    report = ingest(ws, [images])
    assert report.ok, report.to_dict()
    yield ws
    ws.close()


def test_report_shows_alert_with_before_and_after(workspace: Workspace, tmp_path: Path) -> None:
    observations = workspace.observations("test-site")
    assert len(observations) == 2
    before, after = observations
    with rasterio.open(workspace.chip_path(after)) as chip:
        left, bottom, right, top = chip.bounds
    centre_x, centre_y = (left + right) / 2, (bottom + top) / 2
    region = box(centre_x - 600, centre_y - 600, centre_x + 600, centre_y + 600)
    workspace.replace_change_regions(after.id, [ChangeRegion(
        after.id, before.id, region, area_m2=region.area, mean_probability=0.9, zone_id="north")])
    workspace.replace_detections(after.id, [Detection(
        after.id, "large_vehicle", 0.8, box(centre_x, centre_y, centre_x + 120, centre_y + 60))])
    alert = Alert(
        id="a1", site_id="test-site", observation_id=after.id, acquired=after.acquired,
        created=datetime(2020, 1, 12, tzinfo=UTC), indicator="changed_area_m2", value=1.44e6,
        baseline=0.0, score=9.0, p_value=0.01, zone_id="north",
        explanation="Changed area in zone north is far above its usual level.",
    )
    workspace.upsert_alerts([alert])
    workspace.add_assessment(Assessment(
        "a1", "analyst-1", datetime(2020, 1, 13, tzinfo=UTC), "likely", "moderate",
        text="Looks like construction.", hypotheses=("construction", "seasonal change")))

    result = build_report(workspace, tmp_path / "out")

    html = result.path.read_text(encoding="utf-8")
    assert result.alerts == 1 and result.per_site == {"test-site": 1}
    assert "Changed area in zone north is far above its usual level." in html
    assert "analyst-1" in html and "likely" in html
    # words, not machine names: the zone's name, the indicator's label, the area to 10 m², p in 2 digits
    assert "North half" in html and "<td>changed area</td>" in html and "1,440,000 m²" in html
    assert "changed_area_m2" not in html and "<td>0.01</td>" in html
    assert 'alt="before"' in html and 'alt="after"' in html
    # one file: the chips are embedded at full resolution, after the alert list and before the charts
    assert not (tmp_path / "out" / "assets").exists()
    sources = re.findall(r'<img src="data:image/jpeg;base64,([^"]+)" alt="(before|after)"', html)
    assert [alt for _, alt in sources] == ["before", "after"]
    with Image.open(io.BytesIO(base64.b64decode(sources[1][0]))) as picture:
        pixels = np.asarray(picture.convert("RGB"), float)
    with rasterio.open(workspace.chip_path(after)) as chip:
        assert pixels.shape[:2] == (chip.height, chip.width)
    # The change region is outlined in red somewhere in the picture (JPEG: near the outline colour).
    assert (np.linalg.norm(pixels - (255, 40, 40), axis=-1) < 40).any()
    assert html.index("#alert-a1") < html.index('alt="after"') < html.index('class="timeline"')


def test_report_cli_json(workspace: Workspace, tmp_path: Path) -> None:
    workspace.close()
    result = CliRunner().invoke(app, ["report", "-w", str(workspace.root), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["sites"] == 1 and payload["observations"] == 2 and payload["alerts"] == 0
    assert Path(payload["path"]).is_file()


def test_report_of_missing_workspace_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "-w", str(tmp_path / "nowhere")])
    assert result.exit_code != 0


def test_report_shows_the_stac_provenance_of_scenes(tmp_path: Path) -> None:
    """Scenes ingested from STAC carry their item, collection, angles and licence into the evidence."""
    with rasterio.open(RGB) as dataset:
        west, south, east, north = transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
    features = []
    server = RangeServer(tmp_path)
    for day, sun in (("2020-01-01", 31.5), ("2020-01-11", 33.25)):
        image = tmp_path / f"rgb_{day}.tif"
        shutil.copy(RGB, image)
        features.append({
            "type": "Feature", "stac_version": "1.0.0", "id": f"LE07-{day}", "collection": "landsat-7-rgb",
            "geometry": box(west, south, east, north).__geo_interface__, "bbox": [west, south, east, north],
            "properties": {"datetime": f"{day}T15:30:00Z", "platform": "landsat-7", "instruments": ["etm+"],
                           "view:off_nadir": 0.0, "view:sun_elevation": sun, "license": "CC0-1.0"},
            "links": [{"rel": "self", "href": f"{server.url}items/LE07-{day}.json"}],
            "assets": {"visual": {"href": f"../{image.name}", "type": "image/tiff; application=geotiff",
                                  "roles": ["visual"]}},
        })
    source = tmp_path / "items.json"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    server.start()
    try:
        with Workspace.init(tmp_path / "ws", sites=[_site_over(RGB)]) as ws:
            assert ingest_stac(ws, str(source)).ok
            html = _report_with_alert(ws, tmp_path / "out")
    finally:
        server.stop()
    assert "STAC item <code>LE07-2020-01-11</code> of landsat-7-rgb" in html
    assert f"(<code>{server.url}items/LE07-2020-01-11.json</code>)" in html
    assert f"<code>{server.url}rgb_2020-01-11.tif</code>" in html
    assert "STAC item <code>LE07-2020-01-01</code>" in html  # the before image too
    assert "sun 33.2° up" in html and "0.0° off nadir" in html and "licence: CC0-1.0" in html
    assert "landsat-7/etm+" in html


def _report_with_alert(ws: Workspace, out: Path) -> str:
    """The report's HTML after an alert on the site's latest observation."""
    _, after = ws.observations("test-site")
    ws.upsert_alerts([Alert(
        id="a2", site_id="test-site", observation_id=after.id, acquired=after.acquired,
        created=datetime(2020, 1, 12, tzinfo=UTC), indicator="changed_area_m2", value=1.0e5,
        baseline=0.0, score=5.0, p_value=0.02, zone_id="north", explanation="More change than usual.")])
    return build_report(ws, out).path.read_text(encoding="utf-8")


def test_chip_pictures_show_the_bands_named_red_green_blue(tmp_path: Path) -> None:
    """A chip stored blue, green, red (as many sensors order them) is still drawn in true colour."""
    path = tmp_path / "bgr.tif"
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 4, "dtype": "uint8", "crs": "EPSG:32651",
               "transform": rasterio.transform.from_origin(500000, 4400000, 1, 1)}
    with rasterio.open(path, "w", **profile) as sink:
        bands = (("blue", 10), ("green", 20), ("red", 30), ("nir", 40))
        for index, (name, value) in enumerate(bands, start=1):
            sink.write(np.full((4, 4), value, np.uint8), index)
            sink.set_band_description(index, name)
    picture = load_chip_picture(path)
    assert picture.rgb[0, 0].tolist() == [30.0, 20.0, 10.0]
    assert rgb_indexes(("B4", "B3", "B2"), 3) == (1, 2, 3)
    assert rgb_indexes(("nir", "x", "y"), 3) == (1, 2, 3)  # unnamed: the first three
    assert rgb_indexes(("pan",), 1) == (1,)
