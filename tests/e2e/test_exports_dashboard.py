"""Exports from the dashboard in headless Chromium: the alert page's briefing figure and the site
page's KMZ download, opened as a reader would (the PDF rendered with PyMuPDF, the KMZ's KML
validated against the KML 2.2 schema)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pymupdf

from test_exports import NS, valid_kml

from .conftest import screenshot
from .sample_workspace import SampleWorkspace
from .test_dashboard import log_in, only_local_requests


def _download(page: Any, link_text: str, folder: Path) -> Path:
    with page.expect_download() as started:
        page.click(f"text={link_text}")
    download = started.value
    target = folder / download.suggested_filename
    download.save_as(str(target))
    return target


def test_brief_and_kmz_download_from_the_pages(
    page: Any, base_url: str, e2e_sample: SampleWorkspace, tmp_path: Path
) -> None:
    log_in(page, "viewer")
    page.goto("/alerts/alert-trucks")
    exports = page.locator("[data-testid=exports] a")
    assert exports.count() == 5
    screenshot(page, "05-alert-exports")
    pdf = _download(page, "Briefing figure (PDF)", tmp_path)
    assert pdf.name == "brief-alert-trucks.pdf"
    with pymupdf.open(pdf) as document:
        text = document[0].get_text()
    assert "vehicles" in text and "BEFORE" in text and "AFTER" in text

    page.goto(f"/sites/{e2e_sample.site_id}")
    kmz = _download(page, "Google Earth (KMZ)", tmp_path)
    with zipfile.ZipFile(kmz) as archive:
        root = valid_kml(archive.read("doc.kml"))
    overlays = root.findall(".//k:GroundOverlay", NS)
    assert len(overlays) == len(e2e_sample.observation_ids)
    assert all(o.find("k:TimeSpan/k:begin", NS) is not None for o in overlays)
    stamped = [p for p in root.iterfind(".//k:Placemark", NS) if p.find("k:TimeStamp/k:when", NS) is not None]
    assert len(stamped) == len(e2e_sample.alert_ids)
    only_local_requests(page, base_url)
