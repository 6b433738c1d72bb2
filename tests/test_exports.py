"""KML/KMZ and GeoJSON exports for Google Earth and GIS, through the API and the CLI, over a real
sample workspace; every KML document is validated against the OGC KML 2.2 schema (the copy that
the fastkml package ships, read offline with lxml)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastkml
import numpy as np
import pytest
from affine import Affine
from fastapi.testclient import TestClient
from lxml import etree
from PIL import Image
from rasterio.crs import CRS
from typer.testing import CliRunner

from e2e.sample_workspace import LAT, LON, START, SampleWorkspace, build_sample_workspace
from sitewatch.app.cli import app
from sitewatch.app.report.images import MASKED_COLOUR, ChipPicture
from sitewatch.app.web import create_app
from sitewatch.app.web.kmz import KMZ_DOCUMENT, lonlat_overlay
from sitewatch.core.types import Assessment, Confidence, Likelihood
from sitewatch.store.workspace import Workspace

NS = {"k": "http://www.opengis.net/kml/2.2"}
SCHEMA = etree.XMLSchema(etree.parse(str(Path(fastkml.__file__).parent / "schema" / "ogckml22.xsd")))
WEEK = timedelta(days=7)


def valid_kml(data: bytes) -> etree._Element:
    """The parsed document, after checking it against the KML 2.2 schema (the error names the line)."""
    root = etree.fromstring(data)
    if not SCHEMA.validate(root):
        raise AssertionError(f"KML is not valid KML 2.2: {SCHEMA.error_log}")
    return root


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWorkspace:
    built = build_sample_workspace(tmp_path_factory.mktemp("exports") / "ws")
    with Workspace.open(built.root) as ws:
        ws.add_assessment(Assessment(
            "alert-trucks", "analyst-a", START + 4 * WEEK, Likelihood.LIKELY, Confidence.MODERATE,
            "trucks & cranes <like> a build-up", ("rocket assembly", "routine maintenance"),
        ))
    return built


@pytest.fixture(scope="module")
def client(sample: SampleWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(sample.root)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {sample.tokens['viewer']}"
        yield test_client


def _decimals(coordinates: str) -> int:
    return max(len(number.split(".")[1]) if "." in number else 0
               for number in re.split(r"[ ,]+", coordinates.strip()))


def test_alert_kml_is_time_stamped_styled_described_and_links_back(client: TestClient) -> None:
    answer = client.get("/api/exports/alerts.kml")
    assert answer.status_code == 200, answer.text
    root = valid_kml(answer.content)
    styles = {s.get("id") for s in root.iterfind(".//k:Style", NS)}
    placemarks = {p.findtext("k:ExtendedData/k:Data[@name='id']/k:value", namespaces=NS): p
                  for p in root.iterfind(".//k:Placemark", NS)}
    assert set(placemarks) == {"alert-trucks", "alert-quiet"}
    trucks, quiet = placemarks["alert-trucks"], placemarks["alert-quiet"]
    assert trucks.findtext("k:TimeStamp/k:when", namespaces=NS) == "2019-02-22T02:30:00Z"
    assert quiet.findtext("k:TimeStamp/k:when", namespaces=NS) == "2019-02-08T02:30:00Z"
    assert trucks.findtext("k:styleUrl", namespaces=NS) == "#alert-new"
    assert quiet.findtext("k:styleUrl", namespaces=NS) == "#alert-benign"
    assert {"alert-new", "alert-benign", "alert-false_alarm"} <= styles
    assert trucks.findtext("k:name", namespaces=NS) == "2019-02-22 Test Port: vehicle count, Launch pad"
    description = trucks.findtext("k:description", namespaces=NS)
    assert "9 vehicles on the launch pad where 2 are usual" in description
    assert "analyst-a" in description and "likely (moderate confidence)" in description
    assert "trucks &amp; cranes &lt;like&gt; a build-up" in description  # the analyst's text, escaped once
    assert '<a href="http://testserver/alerts/alert-trucks">' in description
    assert "No assessments yet." in quiet.findtext("k:description", namespaces=NS)
    # the zone's outline, and a point at its centre for the icon; degrees to 6 places (~0.1 m)
    geometry = trucks.find("k:MultiGeometry", NS)
    assert geometry.find("k:Point", NS) is not None and geometry.find("k:Polygon", NS) is not None
    for coordinates in trucks.iterfind(".//k:coordinates", NS):
        assert _decimals(coordinates.text) <= 6


def test_alert_geojson_carries_the_assessments(client: TestClient) -> None:
    collection = client.get("/api/exports/alerts.geojson").json()
    by_id = {f["properties"]["id"]: f for f in collection["features"]}
    [assessment] = by_id["alert-trucks"]["properties"]["assessments"]
    assert assessment["author"] == "analyst-a" and assessment["judgement"] == "likely"
    assert assessment["hypotheses"] == ["rocket assembly", "routine maintenance"]
    assert by_id["alert-quiet"]["properties"]["assessments"] == []
    assert by_id["alert-trucks"]["properties"]["url"] == "http://testserver/alerts/alert-trucks"
    ring = by_id["alert-trucks"]["geometry"]["coordinates"][0]
    assert all(round(x, 6) == x and round(y, 6) == y for x, y in ring)


def test_detection_kml_spans_each_image_until_the_next(client: TestClient, sample: SampleWorkspace) -> None:
    root = valid_kml(client.get(f"/api/exports/detections.kml?site={sample.site_id}").content)
    spans = {(p.findtext("k:TimeSpan/k:begin", namespaces=NS), p.findtext("k:TimeSpan/k:end", namespaces=NS))
             for p in root.iterfind(".//k:Placemark", NS)}
    assert spans == {
        ("2019-02-01T02:30:00Z", "2019-02-08T02:30:00Z"),
        ("2019-02-08T02:30:00Z", "2019-02-15T02:30:00Z"),
        ("2019-02-15T02:30:00Z", "2019-02-22T02:30:00Z"),
        ("2019-02-22T02:30:00Z", None),  # the latest look lasts until further notice
    }
    names = [p.findtext("k:name", namespaces=NS) for p in root.iterfind(".//k:Placemark", NS)]
    assert "vehicle 0.90, 2019-02-22" in names


def _kmz(data: bytes) -> tuple[zipfile.ZipFile, etree._Element]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.namelist()[0] == KMZ_DOCUMENT  # Google Earth opens the first KML
    return archive, valid_kml(archive.read(KMZ_DOCUMENT))


def test_site_kmz_plays_the_history_on_the_time_slider(client: TestClient, sample: SampleWorkspace) -> None:
    answer = client.get(f"/api/exports/sites/{sample.site_id}.kmz")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.google-earth.kmz"
    archive, root = _kmz(answer.content)
    overlays = root.findall(".//k:GroundOverlay", NS)
    begins = [o.findtext("k:TimeSpan/k:begin", namespaces=NS) for o in overlays]
    ends = [o.findtext("k:TimeSpan/k:end", namespaces=NS) for o in overlays]
    assert begins == [f"{START + i * WEEK:%Y-%m-%dT%H:%M:%SZ}" for i in range(4)]
    assert ends == [*begins[1:], None]
    for overlay in overlays:
        box = {side: float(overlay.findtext(f"k:LatLonBox/k:{side}", namespaces=NS))
               for side in ("north", "south", "east", "west")}
        assert box["west"] < LON < box["east"] and box["south"] < LAT < box["north"]
        # 128 px of 2 m: about 256 m, in degrees at 39.66° N
        assert 0.0022 < box["north"] - box["south"] < 0.0025
        assert 0.0029 < box["east"] - box["west"] < 0.0032
        image = Image.open(io.BytesIO(archive.read(overlay.findtext("k:Icon/k:href", namespaces=NS))))
        assert image.format == "JPEG" and image.mode == "RGB" and max(image.size) >= 128
        assert "synthetic test image" in overlay.findtext("k:description", namespaces=NS)  # the credit
    alerts = [p for p in root.iterfind(".//k:Placemark", NS) if p.find("k:TimeStamp", NS) is not None]
    assert len(alerts) == 2
    detections = [p for p in root.iterfind(".//k:Placemark", NS) if p.find("k:TimeSpan", NS) is not None]
    assert len(detections) == 2 + 2 + 2 + 9


def test_site_kmz_time_filter_is_inclusive(client: TestClient, sample: SampleWorkspace) -> None:
    answer = client.get(f"/api/exports/sites/{sample.site_id}.kmz?since=2019-02-22&until=2019-02-22")
    _, root = _kmz(answer.content)
    [overlay] = root.findall(".//k:GroundOverlay", NS)
    assert overlay.findtext("k:TimeSpan/k:begin", namespaces=NS) == "2019-02-22T02:30:00Z"
    assert client.get("/api/exports/sites/nowhere.kmz").status_code == 404


@pytest.mark.parametrize("url", ["/api/exports/sites/testport.kmz", "/api/exports/alerts.kml",
                                 "/api/exports/briefs/alert-trucks.pdf"])
def test_exports_need_credentials(sample: SampleWorkspace, url: str) -> None:
    with TestClient(create_app(sample.root)) as anonymous:
        assert anonymous.get(url).status_code == 401


def test_unseen_pixels_are_opaque_grey_inside_and_beyond_the_chip() -> None:
    size, gsd = 64, 2.0
    to_utm = Affine(gsd, 0, 300_000.0, 0, -gsd, 4_390_000.0)  # 200 km west of the central meridian
    rgb = np.full((size, size, 3), 200.0, np.float32)
    valid = np.ones((size, size), bool)
    valid[:, size // 2 :] = False  # the chip's eastern half is under cloud
    picture = ChipPicture(rgb, valid, to_utm, CRS.from_epsg(32651))
    overlay = lonlat_overlay(picture, (np.zeros(3, np.float32), np.full(3, 255.0, np.float32)))
    pixels = np.asarray(overlay.image)
    height, width = pixels.shape[:2]
    centre_row = height // 2
    west_inside = pixels[centre_row, width // 4]
    east_inside = pixels[centre_row, 3 * width // 4]
    assert tuple(west_inside) == (200, 200, 200)
    assert tuple(east_inside) == MASKED_COLOUR  # masked: flat grey, opaque, nothing shows through
    # a UTM square is a little turned in longitude/latitude: the slivers beyond it are grey too
    assert tuple(pixels[0, 0]) == MASKED_COLOUR or tuple(pixels[0, -1]) == MASKED_COLOUR
    west_half = pixels[:, : width // 2]
    assert 0 < (west_half == MASKED_COLOUR).all(axis=-1).mean() < 0.1
    assert overlay.west < overlay.east and overlay.south < overlay.north


def test_cli_exports_kmz_and_alerts(sample: SampleWorkspace, tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "site.kmz"
    result = runner.invoke(app, ["export", "kmz", sample.site_id, str(target), "-w", str(sample.root),
                                 "--base-url", "https://sitewatch.example.org", "--until", "2019-02-15",
                                 "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["overlays"] == 3 and summary["alerts"] == 1 and summary["detections"] == 6
    assert summary["last"] == "2019-02-15T02:30:00+00:00"  # the whole of the --until day
    _, root = _kmz(target.read_bytes())
    [alert] = [p for p in root.iterfind(".//k:Placemark", NS) if p.find("k:TimeStamp", NS) is not None]
    link = 'href="https://sitewatch.example.org/alerts/alert-quiet"'
    assert link in alert.findtext("k:description", namespaces=NS)

    kml = tmp_path / "alerts.kml"
    result = runner.invoke(app, ["export", "alerts", str(kml), "-w", str(sample.root), "--state", "new"])
    assert result.exit_code == 0, result.output
    assert len(valid_kml(kml.read_bytes()).findall(".//k:Placemark", NS)) == 1
    geojson = tmp_path / "alerts.geojson"
    result = runner.invoke(app, ["export", "alerts", str(geojson), "-w", str(sample.root)])
    assert result.exit_code == 0, result.output
    features = json.loads(geojson.read_text())["features"]
    assert {len(f["properties"]["assessments"]) for f in features} == {0, 1}

    wrong = runner.invoke(app, ["export", "alerts", str(tmp_path / "alerts.shp"), "-w", str(sample.root)])
    assert wrong.exit_code == 2 and "neither .kml nor .geojson" in wrong.output
    bad_date = runner.invoke(app, ["export", "kmz", sample.site_id, str(target), "-w", str(sample.root),
                                   "--until", "22/02/2019"])
    assert bad_date.exit_code == 2 and "ISO 8601" in bad_date.output


def test_kml_times_are_utc_to_the_second() -> None:
    from sitewatch.app.web.exports import kml_time_span, kml_time_stamp

    moment = datetime(2019, 2, 22, 2, 20, 31, 123456, tzinfo=UTC)
    assert kml_time_stamp(moment) == "<TimeStamp><when>2019-02-22T02:20:31Z</when></TimeStamp>"
    assert kml_time_span(moment, None) == "<TimeSpan><begin>2019-02-22T02:20:31Z</begin></TimeSpan>"
