"""Refusals: no credentials (401), wrong role (403), CSRF, path traversal, oversized bodies, bad input
(400) — and every error, ours or the framework's, in the one JSON shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from e2e.sample_workspace import PASSWORD, SampleWorkspace, build_sample_workspace
from sitewatch.app.web import create_app
from sitewatch.app.web.routes.tiles import chip_file
from sitewatch.core.errors import NotFoundError, WorkspaceNotFoundError
from sitewatch.store.users import user_store
from sitewatch.store.workspace import Workspace


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWorkspace:
    return build_sample_workspace(tmp_path_factory.mktemp("web-security") / "ws")


@pytest.fixture(scope="module")
def client(sample: SampleWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(sample.root)) as test_client:
        yield test_client


def bearer(sample: SampleWorkspace, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sample.tokens[role]}"}


def assert_error(response: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """The one error shape: {"error": {"status", "type", "message", "detail"}}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"status", "type", "message", "detail"}
    assert error["status"] == status and isinstance(error["message"], str) and error["message"]
    assert isinstance(error["detail"], list)
    if type_ is not None:
        assert error["type"] == type_
    return error


READ_ROUTES = [
    "/api/sites",
    "/api/sites/testport",
    "/api/sites/testport/timeline",
    "/api/scenes",
    "/api/observations",
    "/api/detections?site=testport",
    "/api/change-regions?site=testport",
    "/api/indicators?site=testport",
    "/api/alerts",
    "/api/alerts/alert-trucks",
    "/api/exports/alerts.geojson",
    "/api/auth/me",
    "/api/users",
]


@pytest.mark.parametrize("url", READ_ROUTES)
def test_reads_need_credentials(client: TestClient, url: str) -> None:
    error = assert_error(client.get(url), 401, "unauthenticated")
    assert "Bearer" in error["message"]


def test_bad_credentials_are_401(client: TestClient) -> None:
    assert_error(client.get("/api/sites", headers={"Authorization": "Bearer swt_nope"}), 401)
    assert_error(client.get("/api/sites", headers={"Authorization": "Basic abc"}), 401)
    forged = TestClient(client.app, cookies={"sitewatch_session": "forged"})
    assert_error(forged.get("/api/sites"), 401)
    assert_error(client.post("/api/auth/login", json={"name": "analyst", "password": "wrong-one"}), 401)


WRITES = [
    ("/api/alerts/alert-trucks/state", {"state": "confirmed"}),
    ("/api/alerts/alert-trucks/assessments", {"judgement": "likely", "confidence": "low"}),
]


@pytest.mark.parametrize(("url", "body"), WRITES)
def test_viewer_token_cannot_write(
    client: TestClient, sample: SampleWorkspace, url: str, body: dict[str, Any]
) -> None:
    error = assert_error(client.post(url, json=body, headers=bearer(sample, "viewer")), 403, "forbidden")
    assert "analyst" in error["message"]
    assert (
        client.get("/api/alerts/alert-trucks", headers=bearer(sample, "viewer")).json()["alert"]["state"]
        != "confirmed"
    )


@pytest.mark.parametrize(("url", "body"), WRITES)
def test_anonymous_cannot_write(client: TestClient, url: str, body: dict[str, Any]) -> None:
    assert_error(client.post(url, json=body), 401)


def test_analyst_cannot_manage_users(client: TestClient, sample: SampleWorkspace) -> None:
    assert_error(client.get("/api/users", headers=bearer(sample, "analyst")), 403, "forbidden")
    assert_error(
        client.post(
            "/api/users",
            headers=bearer(sample, "analyst"),
            json={"name": "mallory", "password": "long-enough", "role": "admin"},
        ),
        403,
    )


def _session(client: TestClient, name: str) -> tuple[TestClient, str]:
    browser = TestClient(client.app)
    answer = browser.post("/api/auth/login", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200
    return browser, answer.json()["csrf_token"]


def test_cookie_writes_need_the_csrf_token(client: TestClient) -> None:
    browser, csrf = _session(client, "analyst")
    body = {"judgement": "unlikely", "confidence": "high"}
    assert_error(browser.post("/api/alerts/alert-trucks/assessments", json=body), 403, "csrf")
    assert_error(
        browser.post(
            "/api/alerts/alert-trucks/assessments", json=body, headers={"X-CSRF-Token": "not-the-token"}
        ),
        403,
        "csrf",
    )
    ok = browser.post("/api/alerts/alert-trucks/assessments", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    # browser form without its hidden token is refused too
    form = browser.post("/alerts/alert-trucks/state", data={"state": "confirmed"}, follow_redirects=False)
    assert form.status_code == 403
    form = browser.post(
        "/alerts/alert-trucks/state",
        data={"state": "acknowledged", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert form.status_code == 303


def test_login_form_needs_its_csrf_cookie(client: TestClient) -> None:
    browser = TestClient(client.app)
    forged = browser.post(
        "/login", data={"name": "analyst", "password": PASSWORD, "csrf_token": "x"}, follow_redirects=False
    )
    assert forged.status_code == 403
    page = browser.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    done = browser.post(
        "/login",
        data={"name": "analyst", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/"  # no open redirect
    assert "sitewatch_session" in browser.cookies


def test_viewer_session_form_is_forbidden(client: TestClient) -> None:
    browser, csrf = _session(client, "viewer")
    answer = browser.post(
        "/alerts/alert-trucks/state", data={"state": "confirmed", "csrf_token": csrf}, follow_redirects=False
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "/static/../sitewatch.db",
        "/static/%2e%2e/sitewatch.db",
        "/static/..%2fsitewatch.db",
        "/static/%2e%2e%2f%2e%2e%2fetc/passwd",
        "/api/observations/..%2F..%2Fsitewatch.db/preview.png",
        "/api/observations/%2e%2e/grid",
        "/static/vendor/../../../../store/users.py",
    ],
)
def test_no_route_serves_files_outside(client: TestClient, sample: SampleWorkspace, url: str) -> None:
    response = client.get(url, headers=bearer(sample, "viewer"))
    assert response.status_code in (400, 404), (url, response.status_code)
    assert b"SQLite format" not in response.content and b"root:" not in response.content
    assert b"UserStore" not in response.content


def test_chip_paths_outside_the_workspace_are_refused(sample: SampleWorkspace, tmp_path: Path) -> None:
    secret = tmp_path / "secret.tif"
    secret.write_bytes(b"not yours")
    with Workspace.open(sample.root) as ws:
        observation = ws.observation(sample.observation_ids[0])
        escaped = type(observation)(
            **{
                **{f: getattr(observation, f) for f in observation.__slots__},
                "chip_path": f"chips/../../{secret.relative_to(tmp_path.anchor)}",
            }
        )
        with pytest.raises(NotFoundError, match="outside the workspace"):
            chip_file(ws, escaped)
        assert chip_file(ws, observation).is_file()


def test_oversized_bodies_are_refused(client: TestClient, sample: SampleWorkspace) -> None:
    big = {"judgement": "likely", "confidence": "low", "text": "x" * 100_000}
    assert_error(
        client.post("/api/alerts/alert-trucks/assessments", json=big, headers=bearer(sample, "analyst")),
        413,
        "payload_too_large",
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        for _ in range(100):
            yield b"a" * 1024

    streamed = client.post(
        "/api/alerts/alert-trucks/assessments",
        content=chunks(),
        headers={**bearer(sample, "analyst"), "Content-Type": "application/json"},
    )
    assert_error(streamed, 413)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/sites?limit=0", None),
        ("GET", "/api/sites?limit=5000", None),
        ("GET", "/api/sites?offset=-1", None),
        ("GET", "/api/observations?since=yesterday", None),
        ("GET", "/api/observations?since=2019-03-01&until=2019-01-01", None),
        ("GET", "/api/alerts?state=resolved", None),
        ("GET", "/api/detections", None),
        ("GET", "/api/detections?site=testport&min_score=2", None),
        ("GET", "/api/detections?site=testport&crs=epsg4326", None),
        ("GET", "/api/indicators?site=testport&zone=nowhere", None),
        ("GET", "/api/observations/x/tiles/99/0/0.png", None),
        # offsets past the database's 64-bit integers, and times that leave years 1-9999 in UTC (issue 17)
        ("GET", "/api/alerts?offset=9223372036854775808", None),
        ("GET", "/api/scenes?offset=9223372036854775807", None),
        ("GET", "/api/detections?site=testport&offset=99999999999999999999", None),
        ("GET", "/api/alerts?since=0001-01-01T00:00:00%2B14:00", None),
        ("GET", "/api/alerts?until=9999-12-31T23:59:59-14:00", None),
        ("GET", "/api/observations?since=0001-01-01T00:00:00%2B14:00", None),
        ("GET", "/api/exports/alerts.geojson?until=9999-12-31T23:59:59-14:00", None),
        ("GET", "/api/exports/detections.kml?site=testport&since=0001-01-01T00:00:00%2B14:00", None),
        ("GET", "/api/exports/alerts.shp", None),
        ("POST", "/api/alerts/alert-trucks/state", {"state": "closed"}),
        ("POST", "/api/alerts/alert-trucks/state", {"state": "benign", "extra": 1}),
        ("POST", "/api/alerts/alert-trucks/assessments", {"judgement": "probably", "confidence": "low"}),
        ("POST", "/api/alerts/alert-trucks/assessments", {"judgement": "likely"}),
        ("POST", "/api/alerts/alert-trucks/assessments", "not json"),
    ],
)
def test_bad_input_is_400(
    client: TestClient, sample: SampleWorkspace, method: str, url: str, body: Any
) -> None:
    kwargs: dict[str, Any] = {"headers": bearer(sample, "analyst")}
    if isinstance(body, str):
        kwargs["content"] = body
        kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    error = assert_error(client.request(method, url, **kwargs), 400, "bad_request")
    assert len(error["message"]) > 20  # says what is wrong, not just "bad request"


@pytest.mark.parametrize(
    "url",
    [
        "/api/sites/nowhere",
        "/api/alerts/nope",
        "/api/observations/nope",
        "/api/scenes/nope",
        "/api/no-such-route",
        "/api/observations/nope/preview.png",
    ],
)
def test_unknown_things_are_404(client: TestClient, sample: SampleWorkspace, url: str) -> None:
    error = assert_error(client.get(url, headers=bearer(sample, "viewer")), 404, "not_found")
    # the server's folders are nobody's business: the workspace is named, never its path
    for folder in (sample.root.parent, sample.root.resolve().parent):
        assert str(folder) not in error["message"]


def test_error_pages_show_no_workspace_path(client: TestClient, sample: SampleWorkspace) -> None:
    browser, _ = _session(client, "viewer")
    page = browser.get("/sites/nowhere", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "no site &#39;nowhere&#39; in workspace" in page.text
    assert str(sample.root.resolve().parent) not in page.text


@pytest.mark.parametrize("url", ["/openapi.json", "/docs", "/redoc"])
def test_api_docs_need_log_in_like_everything_but_login(
    client: TestClient, sample: SampleWorkspace, url: str
) -> None:
    anonymous = TestClient(client.app)
    answer = anonymous.get(url, follow_redirects=False)
    if url == "/openapi.json":
        assert_error(answer, 401, "unauthenticated")
    else:
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={url}"
    allowed = client.get(url, headers=bearer(sample, "viewer"))
    assert allowed.status_code == 200
    if url == "/openapi.json":
        assert "/api/alerts" in allowed.json()["paths"]
    browser, _ = _session(client, "viewer")
    assert browser.get(url).status_code == 200


def test_api_docs_work_offline(client: TestClient, sample: SampleWorkspace) -> None:
    """/docs loads Swagger UI from the package (no CDN: analysts' networks are often closed)."""
    page = client.get("/docs", headers=bearer(sample, "viewer")).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/static/vendor/swagger-ui/") or a == "/openapi.json" for a in assets)
    assert "cdn." not in page and "https://" not in page.replace("https://fastapi.tiangolo.com", "")
    for asset in assets:
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset
    moved = client.get("/redoc", headers=bearer(sample, "viewer"), follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "/docs"


def test_wrong_method_has_the_error_shape(client: TestClient, sample: SampleWorkspace) -> None:
    assert_error(client.delete("/api/sites", headers=bearer(sample, "admin")), 405)


def test_pages_redirect_to_login(client: TestClient) -> None:
    answer = TestClient(client.app).get("/sites/testport", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/sites/testport"


def test_security_headers(client: TestClient) -> None:
    headers = client.get("/login").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"


def test_missing_workspace_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFoundError, match="sitewatch init"):
        create_app(tmp_path / "absent")


def test_revoked_token_is_refused_at_once(client: TestClient, sample: SampleWorkspace) -> None:
    with Workspace.open(sample.root) as ws:
        users = user_store(ws)
        secret = users.issue_token("viewer", "short-lived")
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/sites", headers=headers).status_code == 200
        assert client.get("/api/sites", headers=headers).status_code == 200  # remembered
        users.revoke_token(next(t.id for t in users.tokens("viewer") if t.label == "short-lived"))
    assert_error(client.get("/api/sites", headers=headers), 401)


def test_browsers_get_error_pages_and_the_api_json(client: TestClient) -> None:
    browser, _ = _session(client, "viewer")
    page = browser.get("/sites/nowhere", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "nowhere" in page.text and "Back to the map" in page.text
    api = browser.get("/api/sites/nowhere", headers={"Accept": "text/html"})
    assert_error(api, 404, "not_found")


def test_user_text_is_escaped_in_pages(client: TestClient, sample: SampleWorkspace) -> None:
    hostile = "<script>alert('x')</script>"
    created = client.post(
        "/api/alerts/alert-trucks/assessments",
        headers=bearer(sample, "analyst"),
        json={"judgement": "unlikely", "confidence": "low", "text": hostile, "hypotheses": [hostile]},
    )
    assert created.status_code == 201
    browser, _ = _session(client, "viewer")
    page = browser.get("/alerts/alert-trucks").text
    assert hostile not in page and "&lt;script&gt;" in page



def test_alert_page_and_api_rank_the_hypotheses(client: TestClient, sample: SampleWorkspace) -> None:
    shown = client.get("/api/alerts/alert-trucks", headers=bearer(sample, "viewer")).json()["alert"]
    assert [h["pattern"] for h in shown["hypotheses"]] == ["launch_preparation", "routine_delivery"]
    assert shown["hypotheses"][0]["text"] == "very likely launch or test preparation (LR ≈ 120)"
    browser, _ = _session(client, "viewer")
    page = browser.get("/alerts/alert-trucks").text
    assert 'data-testid="hypotheses"' in page and "very likely launch or test preparation (LR ≈ 120)" in page
    assert "unlikely routine delivery (LR ≈ 30)" in page
