"""The analyst's flow in headless Chromium: log in, open a site, move the before/after slider,
triage an alert, record an assessment, reload and see it; a viewer cannot triage; nothing leaves
the machine. Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import re
from typing import Any

from .conftest import screenshot
from .sample_workspace import PASSWORD, SampleWorkspace


def log_in(page: Any, name: str) -> None:
    page.goto("/")
    page.wait_for_url("**/login?next=/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def only_local_requests(page: Any, base_url: str) -> None:
    outside = [url for url in page.requested if not url.startswith((base_url, "data:", "blob:"))]
    assert not outside, f"the dashboard reached outside the machine: {outside}"


def test_analyst_flow(page: Any, base_url: str, e2e_sample: SampleWorkspace) -> None:
    log_in(page, "analyst")
    assert page.text_content("[data-testid=who]").startswith("analyst")
    page.wait_for_selector("#site-map[data-ready=true]")
    assert page.locator(".leaflet-interactive").count() >= 2  # outline and marker of the site
    screenshot(page, "01-map")

    page.click("[data-testid=site-list] >> text=Test Port")  # the queue above names the site too
    page.wait_for_url(f"**/sites/{e2e_sample.site_id}")
    page.wait_for_selector("#timelines[data-ready=true]")
    page.wait_for_selector("#compare[data-ready=true]")
    page.wait_for_selector("#site-map[data-ready=true]")
    assert page.locator("#timelines svg.chart").count() == 2
    assert page.locator("#timelines circle.alert").count() >= 1
    tooltip = page.text_content("#timelines circle.point >> nth=0 >> title")
    # to the minute, the value rounded to what it means
    assert re.fullmatch(r"2019-02-01 02:30 UTC: \d+(\.\d{1,2})?( m²| %)? \(click: open this date\)",
                        tooltip), tooltip
    assert page.locator("#compare path.detection").count() == 9
    assert page.locator("#compare path.change").count() == 1

    page.fill("#compare-slider", "20")
    assert page.get_attribute("#compare", "data-slider") == "20"
    assert "rect(" in page.eval_on_selector(".leaflet-after-pane", "node => node.style.clip")
    page.uncheck("#show-detections")
    assert page.locator("#compare path.detection").count() == 0
    page.check("#show-detections")
    screenshot(page, "02-site")

    page.click("[data-testid=alert-list] a >> nth=0")
    page.wait_for_url("**/alerts/alert-trucks")
    page.wait_for_selector("#compare[data-ready=true]")
    assert "CC0-1.0" in page.text_content("[data-testid=provenance]")
    page.fill("input[name=comment]", "checked against the pad history")
    page.click("button[value=confirmed]")
    page.wait_for_url("**/alerts/alert-trucks")
    assert "confirmed" in page.text_content("[data-testid=alert-state]")
    assert "by analyst" in page.text_content("[data-testid=history]")

    # nothing is preselected: an unchosen likelihood is not recorded as "almost no chance"
    assert page.input_value("select[name=judgement]") == ""
    assert page.input_value("select[name=confidence]") == ""
    page.click("text=Record assessment")  # the browser refuses the form until both are chosen
    assert "No assessments yet" in page.text_content("[data-testid=assessments]")
    page.select_option("select[name=judgement]", "very likely")
    page.select_option("select[name=confidence]", "moderate")
    page.fill("textarea[name=hypotheses]", "rocket assembly\nroutine maintenance")
    page.fill("textarea[name=text]", "Nine vehicles by the pad, two cranes.")
    page.click("text=Record assessment")
    page.wait_for_url("**/alerts/alert-trucks#assessments")
    page.reload()
    kept = page.text_content("[data-testid=assessments]")
    assert "very likely" in kept and "Nine vehicles by the pad" in kept and "analyst" in kept
    assert "rocket assembly; routine maintenance" in kept
    screenshot(page, "03-alert")

    only_local_requests(page, base_url)
    assert not page.console_errors, page.console_errors


def test_viewer_sees_no_triage(page: Any, base_url: str) -> None:
    log_in(page, "viewer")
    page.goto("/alerts/alert-quiet")
    assert page.locator("button[name=state]").count() == 0
    assert "may read but not triage" in page.text_content("main")
    screenshot(page, "04-viewer")
    only_local_requests(page, base_url)


def test_wrong_password_is_refused(page: Any) -> None:
    page.goto("/login")
    page.fill("input[name=name]", "analyst")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/login?failed=1**")
    assert "Wrong user name or password" in page.text_content("main")


def test_api_docs_render_offline(page: Any, base_url: str, e2e_sample: SampleWorkspace) -> None:
    """/docs draws the API's operations with Swagger UI served by the app: nothing from a CDN."""
    del e2e_sample
    log_in(page, "viewer")
    page.goto("/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # Swagger UI ran and read the schema
    assert "/api/alerts" in page.text_content("#swagger-ui")
    only_local_requests(page, base_url)
