"""Briefing figures (``sitewatch brief`` and its web route) over a real sample workspace: the PDF is
rendered to pixels and read back as text with PyMuPDF, so the callouts, dates, scale bar, north
arrow and credit are checked where a reader would see them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from fastapi.testclient import TestClient
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from typer.testing import CliRunner

from e2e.sample_workspace import SampleWorkspace, build_sample_workspace
from sitewatch.app.cli import app
from sitewatch.app.report.brief import (
    MASK_FACE,
    MASK_HATCH_COLOUR,
    Side,
    draw_panel,
    panel_pixels,
    view_bounds,
)
from sitewatch.app.report.images import load_chip_picture
from sitewatch.app.web import create_app
from sitewatch.store.workspace import Workspace


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWorkspace:
    return build_sample_workspace(tmp_path_factory.mktemp("brief") / "ws")


@pytest.fixture(scope="module")
def client(sample: SampleWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(sample.root)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {sample.tokens['viewer']}"
        yield test_client


def _pdf_page(data: bytes) -> tuple[str, np.ndarray]:
    """The text of the PDF's one page and its pixels rendered at 100 dpi."""
    with pymupdf.open(stream=data, filetype="pdf") as document:
        assert document.page_count == 1
        page = document[0]
        text = page.get_text()
        pixmap = page.get_pixmap(dpi=100)
        pixels = np.frombuffer(pixmap.samples, np.uint8).reshape(pixmap.height, pixmap.width, pixmap.n)
    return text, pixels[..., :3]


def test_brief_pdf_renders_with_callouts_dates_scale_north_and_credit(
    sample: SampleWorkspace, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["brief", "alert-trucks", "-w", str(sample.root), "-o", str(tmp_path / "fig.pdf"), "--json"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    # six of the nine trucks stand on the launch pad and its margin; the rest are out of view
    assert written["callouts"] == ["6 vehicles"]
    assert written["png"] == str(tmp_path / "fig.png") and written["pdf"] == str(tmp_path / "fig.pdf")
    text, pixels = _pdf_page((tmp_path / "fig.pdf").read_bytes())
    for words in ("Test Port: Launch pad", "vehicle count · 2019-02-22",
                  "9 vehicles on the launch pad where 2 are usual",
                  "BEFORE", "2019-02-15 02:30 UTC", "AFTER", "2019-02-22 02:30 UTC", "6 vehicles",
                  "20 m", "N", "synthetic, 2 m", "Imagery: synthetic test image (CC0-1.0)", "alert-trucks",
                  "Hypotheses: very likely launch or test preparation (LR ≈ 120); unlikely routine delivery"):
        assert words in text, words
    height, width = pixels.shape[:2]
    assert width > height  # two panels side by side
    middle = pixels[height // 3 : 2 * height // 3]
    before, after = middle[:, width // 20 : width * 9 // 20], middle[:, width * 11 // 20 : width * 19 // 20]
    for panel in (before, after):
        assert panel.std() > 20  # imagery, not a blank page
    with Image.open(tmp_path / "fig.png") as png:
        assert png.width > png.height and png.width >= 1500


def test_masked_pixels_show_the_hatch_never_the_other_date(sample: SampleWorkspace) -> None:
    with Workspace.open(sample.root) as ws:
        site = ws.site(sample.site_id)
        alert = ws.alert("alert-trucks")
        after = ws.observation(alert.observation_id)
        scene = ws.scene(after.scene_id)
        picture = load_chip_picture(ws.chip_path(after))
    # the after image's western half lost to cloud: each panel draws only its own date, over the hatch
    valid = picture.valid.copy()
    valid[:, : valid.shape[1] // 2] = False
    clouded = replace(picture, valid=valid)
    bounds = view_bounds(site, alert, clouded, margin=10.0)  # the whole chip
    stretch = (np.zeros(3, np.float32), np.full(3, 255.0, np.float32))
    pixels, seen, _ = panel_pixels(clouded, stretch, bounds)
    half = seen.shape[1] // 2
    assert not seen[:, :half].any() and seen[:, half:].all()
    face, line = (
        np.array([int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)]) for c in (MASK_FACE, MASK_HATCH_COLOUR)
    )
    hatched = pixels[:, :half].reshape(-1, 3)
    is_face, is_line = (np.abs(hatched - c).sum(axis=-1) < 1e-6 for c in (face, line))
    assert (is_face | is_line).all() and is_face.mean() > 0.6 and is_line.mean() > 0.1  # only hatch
    expected = np.clip(picture.rgb[:, half:] / 255.0, 0, 1)
    assert np.allclose(pixels[:, half:], expected, atol=1e-6)  # the seen half is the image itself

    figure = Figure(figsize=(4, 4), dpi=100)
    axes = figure.add_axes((0, 0, 1, 1))
    draw_panel(axes, Side("AFTER", after, scene, clouded, ()), site, None, stretch, bounds)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    west = pixels[150:250, 40:160]
    hatch_face = np.array([int(MASK_FACE[i : i + 2], 16) for i in (1, 3, 5)])
    # the masked half is the flat grey face with lighter hatch lines: no image pixel, from either date
    share_face = (np.abs(west - hatch_face).sum(axis=-1) < 10).mean()
    assert share_face > 0.5
    assert west.max() < 200  # the white trucks and the bright noise are nowhere in it
    east = pixels[150:250, 240:360]
    assert east.std() > 8 and np.abs(east.mean(axis=(0, 1)) - hatch_face).sum() > 60  # the seen half: image


def test_brief_web_route_answers_png_and_pdf(client: TestClient) -> None:
    pdf = client.get("/api/exports/briefs/alert-trucks.pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert 'filename="brief-alert-trucks.pdf"' in pdf.headers["content-disposition"]
    text, _ = _pdf_page(pdf.content)
    assert "6 vehicles" in text
    png = client.get("/api/exports/briefs/alert-trucks.png")
    assert png.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(png.content)) as picture:
        assert picture.format == "PNG"
    missing = client.get("/api/exports/briefs/no-such-alert.pdf")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
