"""The HTML report in headless Chromium: it opens with the alert list, each alert's before and after stand
side by side at full chip resolution, embedded (one file), zoom together, and the after chip's unseen
pixels are the hatch; the charts come after the imagery."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sitewatch.app.report import build_report
from sitewatch.app.report.images import HATCH_COLOURS
from sitewatch.store.workspace import Workspace

from .conftest import screenshot
from .sample_workspace import MASKED_COLS, MASKED_ROWS, SIZE, SampleWorkspace


def _embedded(source: str) -> np.ndarray:
    assert source.startswith("data:image/jpeg;base64,"), source[:40]
    with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as picture:
        return np.asarray(picture.convert("RGB"), float)


def test_report_opens_with_alerts_and_zooms_full_resolution_pairs(
    browser: Any, e2e_sample: SampleWorkspace, tmp_path: Path
) -> None:
    with Workspace.open(e2e_sample.root) as ws:
        path = build_report(ws, tmp_path / "report").path
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]  # one file, nothing beside it
    html = path.read_text(encoding="utf-8")
    assert html.index('data-testid="alert-list"') < html.index('alt="after"') < html.index("<svg")

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(path.as_uri())
        links = page.locator("[data-testid=alert-list] a")
        assert links.count() == 2
        assert links.first.get_attribute("href") == "#alert-alert-trucks"  # newest first
        links.first.click()
        pair = page.locator("#alert-alert-trucks [data-testid=zoompair]")
        after = pair.locator("img[alt=after]")
        assert after.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [SIZE, SIZE]
        pixels = _embedded(after.get_attribute("src"))
        # the masked block below the change region's outline (drawn into the picture down to row 111)
        rows = slice(MASKED_ROWS.start + 13, MASKED_ROWS.stop - 1)
        hole = pixels[rows, MASKED_COLS.start + 1 : MASKED_COLS.stop - 2]
        magenta, grey = (np.linalg.norm(hole - np.array(c), axis=-1) < 60 for c in HATCH_COLOURS)
        assert (magenta | grey).mean() > 0.95 and magenta.mean() > 0.3 and grey.mean() > 0.3

        width = after.evaluate("img => img.getBoundingClientRect().width")
        pair.locator("[data-zoom=in]").click()
        pair.locator("[data-zoom=in]").click()
        assert float(pair.get_attribute("data-scale")) > 2
        before = pair.locator("img[alt=before]")
        assert after.evaluate("img => img.getBoundingClientRect().width") > 2 * width
        assert before.evaluate("i => i.style.transform") == after.evaluate("i => i.style.transform")
        screenshot(page, "07-report-zoomed")
    finally:
        context.close()
    assert all(url.startswith(("file:", "data:")) for url in requested), requested
