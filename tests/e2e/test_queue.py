"""The home page is the analyst's morning queue, in headless Chromium: the untriaged alerts with their
site, zone, date and a thumbnail; "new since your last visit" that changes after a visit; and the
overview map's offline basemap (Natural Earth borders and coastlines drawn as SVG paths), with no
request leaving 127.0.0.1. Runs on its own sample workspace, since the dashboard flow triages the
shared one's alert."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sitewatch.core.types import Alert
from sitewatch.store.workspace import Workspace

from .conftest import screenshot, serve
from .sample_workspace import SITE_ID, START, SampleWorkspace, build_sample_workspace
from .test_dashboard import log_in, only_local_requests


@pytest.fixture(scope="module")
def queue_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWorkspace:
    return build_sample_workspace(tmp_path_factory.mktemp("queue") / "ws")


@pytest.fixture(scope="module")
def queue_url(queue_sample: SampleWorkspace) -> Iterator[str]:
    with serve(queue_sample.root) as url:
        yield url


@pytest.fixture
def queue_page(browser: Any, queue_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=queue_url, viewport={"width": 1280, "height": 1000})
    opened = context.new_page()
    opened.requested = []
    opened.on("request", lambda request: opened.requested.append(request.url))
    opened.console_errors = []
    opened.on("console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None)
    yield opened
    context.close()


def queued(page: Any) -> list[tuple[str, bool]]:
    """(alert id, marked new) of each queue entry, top to bottom."""
    items = page.locator("[data-testid=queue] li")
    return [
        (items.nth(i).get_attribute("data-alert-id"), "is-new" in (items.nth(i).get_attribute("class") or ""))
        for i in range(items.count())
    ]


def test_queue_marks_what_is_new_since_the_last_visit(
    queue_page: Any, queue_url: str, queue_sample: SampleWorkspace
) -> None:
    page = queue_page
    log_in(page, "analyst")  # lands on the home page: the first visit
    assert "first visit" in page.text_content("[data-testid=last-visit]")
    assert queued(page) == [("alert-trucks", True)]  # the benign one was triaged already
    entry = page.text_content("[data-testid=queue] li")
    assert "Test Port" in entry and "Launch pad" in entry and "2019-02-22 02:30 UTC" in entry
    thumb = page.locator("[data-testid=queue] img.thumb")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert "2019-02-22 02:30 UTC" in page.text_content("[data-testid=last-image]")
    site_row = page.text_content("[data-testid=site-list] tbody tr")
    assert "new" in site_row and "1" in site_row

    page.reload()  # the second visit: nothing arrived since the first
    assert "Your last visit" in page.text_content("[data-testid=last-visit]")
    assert queued(page) == [("alert-trucks", False)]
    assert page.locator("[data-testid=new-badge]").count() == 0

    # the monitor raises an alert on an older image while the analyst is away
    with Workspace.open(queue_sample.root) as ws:
        ws.upsert_alerts([Alert(
            id="alert-late", site_id=SITE_ID, observation_id=queue_sample.observation_ids[2],
            acquired=START + timedelta(days=14), created=datetime.now(UTC), indicator="changed_objects",
            value=6.0, baseline=1.0, score=4.0, explanation="six patches of change on the rail yard",
            zone_id="yard", p_value=0.0123456,
        )])
    page.reload()
    assert queued(page) == [("alert-trucks", False), ("alert-late", True)]  # newest image first
    assert "1 alert new" in page.text_content("[data-testid=last-visit]")
    late = page.text_content("[data-testid=queue] li >> nth=1")
    assert "Rail yard" in late and "p = 0.012" in late and "objects that came or went" in late
    assert "changed_objects" not in late
    screenshot(page, "05-queue")

    # the API says the same, and only reads: it marks from a given time without recording a visit
    answer = page.request.get(f"{queue_url}/api/queue?since=2019-01-01T00:00:00Z").json()
    assert [(i["id"], i["new"]) for i in answer["items"]] == [("alert-trucks", True), ("alert-late", True)]
    assert page.request.get(f"{queue_url}/api/queue").json()["new_count"] == 0

    page.click("[data-testid=queue] li >> nth=0 >> a")  # one click from the queue to the alert
    page.wait_for_url("**/alerts/alert-trucks")
    only_local_requests(page, queue_url)
    assert not page.console_errors, page.console_errors


def test_overview_map_draws_the_offline_basemap(queue_page: Any, queue_url: str) -> None:
    page = queue_page
    log_in(page, "viewer")
    page.wait_for_selector("#site-map[data-ready=true]", timeout=20_000)
    coasts = page.locator("#site-map .leaflet-basemap-pane path.basemap-coast")
    borders = page.locator("#site-map .leaflet-basemap-pane path.basemap-border")
    assert coasts.count() >= 1 and borders.count() >= 1
    # the coastline is really drawn in the view around the site (Korea's west coast), not empty
    assert (coasts.first.get_attribute("d") or "").count("L") >= 20
    assert page.locator("#site-map .leaflet-interactive").count() >= 2  # the site above it
    assert "Natural Earth" in page.text_content("#site-map .leaflet-control-attribution")
    screenshot(page, "06-basemap")
    only_local_requests(page, queue_url)
    assert not page.console_errors, page.console_errors
