"""The evidence viewer in headless Chromium: pixels the after image did not see are the hatch, never the
before image; zooming changes the map's scale; the date strip (mouse and keyboard) and a click on an
indicator chart open a date; every image is captioned. Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from sitewatch.app.report.images import HATCH_COLOURS

from .conftest import screenshot
from .sample_workspace import MASKED_COLS, MASKED_ROWS, SIZE, SampleWorkspace
from .test_dashboard import log_in, only_local_requests

_HATCH = np.array(HATCH_COLOURS, float)


def _hatch_distance(pixels: np.ndarray) -> np.ndarray:
    """Distance (RGB units) of each pixel from the segment between the two hatch colours: a stripe or
    the blend of the two that a stripe's edge may become on screen."""
    a, b = _HATCH
    t = np.clip(((pixels - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
    return np.asarray(np.linalg.norm(pixels - (a + t[:, None] * (b - a)), axis=1))


def _show(page: Any, slider: int) -> None:
    page.fill("#compare-slider", str(slider))
    page.wait_for_function("(s) => document.querySelector('#compare').dataset.slider === s", arg=str(slider))


def _wait_after(page: Any, observation_id: str) -> None:
    page.wait_for_function("(id) => document.querySelector('#compare').dataset.after === id",
                           arg=observation_id)
    page.wait_for_selector("#compare[data-ready=true]")


def _image_rect(page: Any) -> list[float]:
    """left, top, width, height on screen of the after date's picture."""
    rect: list[float] = page.evaluate(
        "() => { const r = document.querySelector('.leaflet-after-pane img.evidence')"
        ".getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }"
    )
    return rect


def _masked_area_pixels(page: Any) -> np.ndarray:
    """Screen pixels over the after chip's masked block, read from a screenshot of the viewport."""
    left, top, width, height = rect = _image_rect(page)
    view = page.evaluate("() => { const r = document.querySelector('#viewer-map').getBoundingClientRect();"
                         " return [r.left, r.top, r.right, r.bottom]; }")
    points = []
    for row in np.linspace(MASKED_ROWS.start + 2, MASKED_ROWS.stop - 3, 7):
        for col in np.linspace(MASKED_COLS.start + 2, MASKED_COLS.stop - 3, 7):
            x = left + (col + 0.5) / SIZE * width
            y = top + (row + 0.5) / SIZE * height
            if view[0] + 2 < x < view[2] - 2 and view[1] + 2 < y < view[3] - 2:  # visible in the map
                points.append((x, y))
    # leave out points under the map's controls (zoom buttons, scale bar)
    covered = page.evaluate("(points) => points.map(([x, y]) => !!document.elementFromPoint(x, y)"
                            ".closest('.leaflet-control-container'))", points)
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), float)
    samples = [shot[int(y), int(x)] for (x, y), hidden in zip(points, covered, strict=True) if not hidden]
    assert len(samples) >= 10, f"the masked block is not on screen (image at {rect}, map at {view})"
    return np.array(samples)


def _no_other_date(page: Any) -> None:
    """The after date's masked block shows the hatch, and not what the before date shows there
    (the vector layers, drawn over the pictures, are hidden while the pixels are read)."""
    page.uncheck("#show-changes")
    page.uncheck("#show-detections")
    _show(page, 0)  # the after date over the whole map
    after = _masked_area_pixels(page)
    _show(page, 100)  # the before date over the whole map: what a hole would let through
    before = _masked_area_pixels(page)
    assert np.all(_hatch_distance(after) < 40), "a masked pixel of the after date is not the hatch"
    # the check has power: most of what the before date shows there is far from the hatch
    assert np.mean(_hatch_distance(before) < 40) < 0.25, "the before image itself looks like the hatch"
    page.check("#show-changes")
    page.check("#show-detections")


def test_masked_pixels_are_hatched_never_the_other_date(
    page: Any, base_url: str, e2e_sample: SampleWorkspace
) -> None:
    log_in(page, "viewer")
    page.goto("/alerts/alert-trucks")
    page.wait_for_selector("#compare[data-ready=true]")
    page.locator("#viewer-map").scroll_into_view_if_needed()
    assert page.get_attribute("#compare", "data-after") == e2e_sample.observation_ids[-1]
    # the scene says 0 % cloud; the site was not all seen, and the page says so
    assert "89 % of the site seen" in page.text_content("[data-testid=provenance]")
    assert "89 % of the site seen" in page.text_content("[data-testid=caption-after]")
    zone = page.text_content("[data-testid=zone-seen]")  # the cloud covers part of the launch pad
    assert zone.startswith("Launch pad: ") and int(zone.split(": ")[1].split(" %")[0]) < 80, zone
    assert "(100 % in the before image)" in page.text_content("[data-testid=provenance]")

    _no_other_date(page)

    zoom = float(page.get_attribute("#compare", "data-zoom"))
    width = _image_rect(page)[2]
    scale = page.text_content(".leaflet-control-scale-line")
    for _ in range(4):  # double clicks on the cloud keep it in view while zooming in on it
        left, top, w, h = _image_rect(page)
        centre_row = (MASKED_ROWS.start + MASKED_ROWS.stop) / 2
        centre_col = (MASKED_COLS.start + MASKED_COLS.stop) / 2
        page.mouse.dblclick(left + centre_col / SIZE * w, top + centre_row / SIZE * h)
        page.wait_for_function("(z) => Number(document.querySelector('#compare').dataset.zoom) > z", arg=zoom)
        zoom = float(page.get_attribute("#compare", "data-zoom"))
    page.wait_for_timeout(400)  # the end of the zoom animation
    assert _image_rect(page)[2] > 3.5 * width, "zooming in did not enlarge the evidence"
    assert page.text_content(".leaflet-control-scale-line") != scale
    _no_other_date(page)  # zoomed in, the hole is still the hatch
    _show(page, 50)
    screenshot(page, "05-viewer-zoomed")
    only_local_requests(page, base_url)
    assert not page.console_errors, page.console_errors


def test_date_strip_chart_click_and_captions(page: Any, e2e_sample: SampleWorkspace) -> None:
    ids = e2e_sample.observation_ids
    log_in(page, "viewer")
    page.goto(f"/sites/{e2e_sample.site_id}")
    page.wait_for_selector("#compare[data-ready=true]")
    page.wait_for_selector("#timelines[data-ready=true]")
    assert page.get_attribute("#compare", "data-after") == ids[-1]
    assert page.get_attribute("#compare", "data-before") == ids[-2]
    after = page.text_content("[data-testid=caption-after]")
    for part in ("2019-02-22 02:30 UTC", "synthetic", "2 m GSD", "15.5° off nadir", "89 % of the site seen"):
        assert part in after, (part, after)
    assert "2019-02-15 02:30 UTC" in page.text_content("[data-testid=caption-before]")
    assert page.locator("#date-strip button").count() == len(ids)

    page.focus("#date-strip")
    page.keyboard.press("ArrowLeft")
    _wait_after(page, ids[-2])
    assert "2019-02-15 02:30 UTC" in page.text_content("[data-testid=caption-after]")
    assert "100 % of the site seen" in page.text_content("[data-testid=caption-after]")
    assert page.locator(".leaflet-afterVectors-pane path.detection").count() == 2
    # the site map follows the viewer's date
    page.wait_for_function("(id) => document.querySelector('#site-map').dataset.observation === id",
                           arg=ids[-2])

    page.click(f"#date-strip button[data-id='{ids[-1]}']")
    _wait_after(page, ids[-1])
    assert page.locator(".leaflet-afterVectors-pane path.detection").count() == 9
    page.uncheck("#show-detections")
    assert page.locator(".leaflet-afterVectors-pane path.detection").count() == 0
    page.check("#show-detections")

    point = page.locator(f"#timelines circle.point[data-observation='{ids[1]}']").first
    assert "UTC: 2 " in point.locator("title").text_content()  # a count, to the unit
    point.click()
    _wait_after(page, ids[1])
    assert "2019-02-08 02:30 UTC" in page.text_content("[data-testid=caption-after]")
    assert page.get_attribute(f"#date-strip button[data-id='{ids[1]}']", "aria-pressed") == "true"
    screenshot(page, "06-viewer-site")
    assert not page.console_errors, page.console_errors
