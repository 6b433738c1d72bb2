"""Every route of the JSON API over a real sample workspace: answers, filters, pagination, bad input."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from e2e.sample_workspace import MASKED_COLS, MASKED_ROWS, SIZE, SampleWorkspace, build_sample_workspace
from sitewatch.app.report.images import HATCH_COLOURS
from sitewatch.app.web import create_app
from sitewatch.core.types import AlertState
from sitewatch.store.workspace import Workspace

KML = "{http://www.opengis.net/kml/2.2}"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWorkspace:
    return build_sample_workspace(tmp_path_factory.mktemp("web") / "ws")


@pytest.fixture(scope="module")
def client(sample: SampleWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(sample.root)) as test_client:
        yield test_client


def bearer(sample: SampleWorkspace, role: str = "viewer") -> dict[str, str]:
    return {"Authorization": f"Bearer {sample.tokens[role]}"}


def get(client: TestClient, sample: SampleWorkspace, url: str, role: str = "viewer") -> Any:
    response = client.get(url, headers=bearer(sample, role))
    assert response.status_code == 200, response.text
    return response.json()


def test_sites_list_and_lookup_by_alias(client: TestClient, sample: SampleWorkspace) -> None:
    page = get(client, sample, "/api/sites")
    assert page["total"] == 1 and page["next"] is None
    [site] = page["items"]
    assert site["id"] == sample.site_id and site["utm_epsg"] == 32651
    assert site["alert_state"] == "new" and site["open_alerts"] == 1
    assert get(client, sample, "/api/sites/Testport%20Station")["id"] == sample.site_id
    zones = get(client, sample, f"/api/sites/{sample.site_id}/zones")
    assert {z["id"] for z in zones} == {"pad", "yard"}


def test_timeline_has_series_with_baseline_and_alerts(client: TestClient, sample: SampleWorkspace) -> None:
    timeline = get(client, sample, f"/api/sites/{sample.site_id}/timeline")
    assert [o["id"] for o in timeline["observations"]] == sample.observation_ids
    pad = next(s for s in timeline["series"] if s["zone_id"] == "pad")
    assert pad["value"] == [2.0, 2.0, 2.0, 9.0] and pad["observation"] == [0, 1, 2, 3]
    assert pad["baseline"]["centre"] == 2.0
    yard = next(s for s in timeline["series"] if s["zone_id"] == "yard")
    assert yard["value"][1] is None and yard["quality"][1] == 0.0  # not observed is not zero
    assert {a["id"] for a in timeline["alerts"]} == set(sample.alert_ids)
    assert "1 benign" in timeline["track_record"]["summary"]


def test_scenes_and_observations_with_time_filters(client: TestClient, sample: SampleWorkspace) -> None:
    scenes = get(client, sample, f"/api/scenes?site={sample.site_id}")
    assert scenes["total"] == 4
    scene = get(client, sample, f"/api/scenes/{scenes['items'][0]['id']}")
    assert scene["bands"] == ["red", "green", "blue"] and scene["license"] == "CC0-1.0"
    later = get(client, sample, f"/api/observations?site={sample.site_id}&since=2019-02-10")
    assert [o["id"] for o in later["items"]] == sample.observation_ids[2:]
    window = get(client, sample, "/api/scenes?since=2019-02-01&until=2019-02-09")
    assert window["total"] == 2
    # a date alone means the whole day: the last image, 2019-02-22 02:30, is inside until=2019-02-22
    last_day = get(client, sample, f"/api/observations?site={sample.site_id}&until=2019-02-22")
    assert [o["id"] for o in last_day["items"]] == sample.observation_ids
    one_day = get(client, sample, "/api/alerts?since=2019-02-22&until=2019-02-22")
    assert [a["id"] for a in one_day["items"]] == ["alert-trucks"]
    one = get(client, sample, f"/api/observations/{sample.observation_ids[0]}")
    assert one["site_id"] == sample.site_id and one["tiles"].endswith("{z}/{x}/{y}.png")


def test_pagination_links_the_next_page(client: TestClient, sample: SampleWorkspace) -> None:
    first = get(client, sample, f"/api/observations?site={sample.site_id}&limit=3")
    assert len(first["items"]) == 3 and first["total"] == 4
    second = get(client, sample, first["next"].replace("http://testserver", ""))
    assert [o["id"] for o in second["items"]] == sample.observation_ids[3:] and second["next"] is None


def test_detections_filters_pages_and_crs(client: TestClient, sample: SampleWorkspace) -> None:
    site_wide = get(client, sample, f"/api/detections?site={sample.site_id}")
    assert site_wide["total"] == 2 + 2 + 2 + 9
    last = sample.observation_ids[-1]
    page = get(client, sample, f"/api/detections?observation={last}&limit=4&offset=4")
    assert page["total"] == 9 and len(page["items"]) == 4 and page["offset"] == 4
    lon, lat = page["items"][0]["geometry"]["coordinates"][0][0]
    assert 124.6 < lon < 124.8 and 39.6 < lat < 39.7
    grid = get(client, sample, f"/api/detections?observation={last}&crs=grid&limit=1")
    x, y = grid["items"][0]["geometry"]["coordinates"][0][0]
    assert x > 100_000 and y > 4_000_000  # UTM metres
    assert get(client, sample, f"/api/detections?site={sample.site_id}&class_name=crane")["total"] == 0
    recent = get(client, sample, f"/api/detections?site={sample.site_id}&since=2019-02-20")
    assert recent["total"] == 9


def test_change_regions_and_indicators(client: TestClient, sample: SampleWorkspace) -> None:
    regions = get(client, sample, f"/api/change-regions?site={sample.site_id}")
    assert regions["total"] == 3
    assert regions["items"][0]["reference_observation_id"] in sample.observation_ids
    values = get(client, sample, f"/api/indicators?site={sample.site_id}&zone=pad&name=vehicle_count")
    assert values["total"] == 4
    assert get(client, sample, f"/api/indicators?site={sample.site_id}&until=2019-02-02")["total"] == 2


def test_alerts_filters_and_detail(client: TestClient, sample: SampleWorkspace) -> None:
    everything = get(client, sample, "/api/alerts")
    assert [a["id"] for a in everything["items"]] == ["alert-trucks", "alert-quiet"]  # newest first
    benign = get(client, sample, f"/api/alerts?site={sample.site_id}&state=benign")
    assert [a["id"] for a in benign["items"]] == ["alert-quiet"]
    detail = get(client, sample, "/api/alerts/alert-trucks")
    assert detail["observation"]["id"] == sample.observation_ids[-1]
    assert detail["reference"]["id"] == sample.observation_ids[-2]
    assert detail["scene"]["license"] == "CC0-1.0" and detail["scene"]["sensor"] == "synthetic"
    assert detail["track_record"]["by_state"]["benign"] == 1 and detail["track_record"]["total"] == 1
    history = get(client, sample, "/api/alerts/alert-quiet/history")
    assert history[-1]["state"] == "benign" and history[-1]["who"] == "seed"


def test_analyst_triages_and_assessments_accumulate(client: TestClient, sample: SampleWorkspace) -> None:
    answer = client.post(
        "/api/alerts/alert-trucks/state",
        headers=bearer(sample, "analyst"),
        json={"state": "acknowledged", "comment": "looking"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "acknowledged"
    for author, judgement in (("analyst", "likely"), ("admin", "unlikely")):
        created = client.post(
            "/api/alerts/alert-trucks/assessments",
            headers=bearer(sample, author),
            json={
                "judgement": judgement,
                "confidence": "moderate",
                "hypotheses": ["rocket assembly", "routine maintenance"],
                "text": "trucks massing by the pad",
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["author"] == author
    kept = get(client, sample, "/api/alerts/alert-trucks/assessments")
    assert [(a["author"], a["judgement"]) for a in kept][-2:] == [
        ("analyst", "likely"),
        ("admin", "unlikely"),
    ]
    timeline = get(client, sample, f"/api/sites/{sample.site_id}/timeline")  # the cache sees the change
    assert next(a for a in timeline["alerts"] if a["id"] == "alert-trucks")["state"] == "acknowledged"


def test_each_analysts_hypothesis_pick_is_shown(client: TestClient, sample: SampleWorkspace) -> None:
    for author, pick in (("analyst", "launch_preparation"), ("admin", "routine_delivery")):
        created = client.post("/api/alerts/alert-trucks/assessments", headers=bearer(sample, author),
                              json={"judgement": "likely", "confidence": "low", "pick": pick})
        assert created.status_code == 201, created.text
        assert created.json()["pick"] == pick
    refused = client.post("/api/alerts/alert-trucks/assessments", headers=bearer(sample, "analyst"),
                          json={"judgement": "likely", "confidence": "low", "pick": "parade"})
    assert refused.status_code == 400 and "launch_preparation" in refused.text
    detail = get(client, sample, "/api/alerts/alert-trucks")
    assert detail["picks"] == {"admin": "routine_delivery", "analyst": "launch_preparation"}
    page = client.get("/alerts/alert-trucks", headers=bearer(sample, "analyst"))
    assert page.status_code == 200 and "Analysts disagree" in page.text and 'name="pick"' in page.text
    # where the image came from: its STAC item, linked, beside its licence
    assert ('STAC item <a href="https://stac.example.org/collections/synthetic-rgb/items/test-' in page.text
            and "of synthetic-rgb" in page.text and "CC0-1.0" in page.text)


def test_tiles_preview_and_grid(client: TestClient, sample: SampleWorkspace) -> None:
    observation = sample.observation_ids[-1]
    grid = get(client, sample, f"/api/observations/{observation}/grid")
    assert grid["width"] == 128 and grid["epsg"] == 32651
    preview = client.get(f"/api/observations/{observation}/preview.png", headers=bearer(sample))
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
    # the Web Mercator tile holding the site at zoom 16
    tile = client.get(f"/api/observations/{observation}/tiles/16/55469/24891.png", headers=bearer(sample))
    assert tile.status_code == 200, tile.text
    assert tile.content.startswith(b"\x89PNG")
    outside = client.get(f"/api/observations/{observation}/tiles/16/0/0.png", headers=bearer(sample))
    assert outside.status_code == 404 and outside.json()["error"]["type"] == "not_found"


def test_evidence_picture_is_opaque_and_hatched_where_unseen(
    client: TestClient, sample: SampleWorkspace
) -> None:
    """The viewer's picture: every chip pixel, no alpha, the masked block the hatch and nothing else."""
    after, before = sample.observation_ids[-1], sample.observation_ids[-2]
    url = f"/api/observations/{after}/evidence.png"
    alone, shared = (
        client.get(url + query, headers=bearer(sample)) for query in ("", f"?stretch_with={before}")
    )
    for answer in (alone, shared):
        assert answer.status_code == 200, answer.text
        with Image.open(io.BytesIO(answer.content)) as picture:
            assert picture.mode == "RGB" and picture.size == (SIZE, SIZE)  # opaque, full resolution
            pixels = np.asarray(picture)
        hole = pixels[MASKED_ROWS, MASKED_COLS].reshape(-1, 3)
        is_hatch = [(hole == colour).all(axis=1) for colour in HATCH_COLOURS]
        assert (is_hatch[0] | is_hatch[1]).all() and is_hatch[0].any() and is_hatch[1].any()
        seen = np.ones((SIZE, SIZE), bool)
        seen[MASKED_ROWS, MASKED_COLS] = False
        assert not (pixels[seen] == HATCH_COLOURS[0]).all(axis=1).any()  # no seen pixel is magenta
    assert alone.content != shared.content  # the stretch shared with the before date differs
    other_site = client.get(url + "?stretch_with=nowhere", headers=bearer(sample))
    assert other_site.status_code == 404


def test_geojson_and_kml_exports(client: TestClient, sample: SampleWorkspace) -> None:
    alerts = client.get("/api/exports/alerts.geojson", headers=bearer(sample))
    assert alerts.headers["content-type"].startswith("application/geo+json")
    collection = alerts.json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 2
    assert {f["properties"]["id"] for f in collection["features"]} == set(sample.alert_ids)
    detections = client.get(
        f"/api/exports/detections.geojson?site={sample.site_id}&min_score=0.5", headers=bearer(sample)
    ).json()
    assert len(detections["features"]) == 15
    lon, lat = detections["features"][0]["geometry"]["coordinates"][0][0]
    assert 124.6 < lon < 124.8 and 39.6 < lat < 39.7
    kml = client.get(
        f"/api/exports/detections.kml?observation={sample.observation_ids[-1]}", headers=bearer(sample)
    )
    assert kml.headers["content-type"].startswith("application/vnd.google-earth.kml+xml")
    placemarks = ET.fromstring(kml.content).findall(f".//{KML}Placemark")
    assert len(placemarks) == 9 and placemarks[0].find(f".//{KML}coordinates") is not None
    alert_kml = ET.fromstring(client.get("/api/exports/alerts.kml", headers=bearer(sample)).content)
    assert len(alert_kml.findall(f".//{KML}Placemark")) == 2


def test_login_session_and_me(client: TestClient, sample: SampleWorkspace) -> None:
    from e2e.sample_workspace import PASSWORD

    with TestClient(client.app) as browser:
        answer = browser.post("/api/auth/login", json={"name": "analyst", "password": PASSWORD})
        assert answer.status_code == 200 and answer.json()["role"] == "analyst"
        assert browser.get("/api/auth/me").json()["name"] == "analyst"
        csrf = answer.json()["csrf_token"]
        assert browser.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert browser.get("/api/auth/me").status_code == 401


def test_admin_manages_users(client: TestClient, sample: SampleWorkspace) -> None:
    created = client.post(
        "/api/users",
        headers=bearer(sample, "admin"),
        json={"name": "newcomer", "password": "long-enough", "role": "viewer"},
    )
    assert created.status_code == 201, created.text
    token = client.post("/api/users/newcomer/tokens", headers=bearer(sample, "admin"), json={"label": "ci"})
    assert token.status_code == 201
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token.json()['token']}"})
    assert me.json() == {
        "name": "newcomer",
        "role": "viewer",
        "created": me.json()["created"],
        "disabled": False,
    }
    assert "newcomer" in {u["name"] for u in get(client, sample, "/api/users", role="admin")}


def test_openapi_describes_every_api_route(client: TestClient, sample: SampleWorkspace) -> None:
    schema = get(client, sample, "/openapi.json")
    paths = set(schema["paths"])
    for route in (
        "/api/sites",
        "/api/sites/{site}/timeline",
        "/api/detections",
        "/api/change-regions",
        "/api/indicators",
        "/api/alerts",
        "/api/alerts/{alert_id}/state",
        "/api/alerts/{alert_id}/assessments",
        "/api/exports/detections.{fmt}",
        "/api/observations/{observation_id}/tiles/{z}/{x}/{y}.png",
        "/api/auth/login",
        "/api/users/{name}",
        "/api/users/{name}/tokens",
        "/api/users/{name}/tokens/{token_id}",
    ):
        assert route in paths, route
    assert "/alerts/{alert_id}" not in paths  # HTML pages stay out of the API schema


def test_cached_answers_follow_writes_by_other_processes(client: TestClient, sample: SampleWorkspace) -> None:
    url = f"/api/sites/{sample.site_id}/timeline"
    before = get(client, sample, url)
    assert get(client, sample, url) == before  # served from the cache
    with Workspace.open(sample.root) as other:  # another connection, as the monitor or CLI would use
        other.set_alert_state("alert-quiet", AlertState.FALSE_ALARM, who="cli", comment="re-judged")
    after = get(client, sample, url)
    assert next(a for a in after["alerts"] if a["id"] == "alert-quiet")["state"] == "false_alarm"
    listed = get(client, sample, "/api/alerts?state=false_alarm")
    assert [a["id"] for a in listed["items"]] == ["alert-quiet"]


def test_triage_refuses_moves_the_lifecycle_does_not_allow(client: TestClient,
                                                            sample: SampleWorkspace) -> None:
    # alert-quiet is resolved (benign, or false alarm once re-judged): nothing goes back to new
    answer = client.post("/api/alerts/alert-quiet/state", headers=bearer(sample, "analyst"),
                         json={"state": "new", "comment": "reopen"})
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["type"] == "conflict" and "cannot become new" in error["message"]
    assert get(client, sample, "/api/alerts/alert-quiet")["alert"]["state"] != "new"
    # a dismissal without a reason is refused before anything is written, on the API as in the CLI
    before = get(client, sample, "/api/alerts/alert-trucks")
    for verdict in ("benign", "false_alarm"):
        answer = client.post("/api/alerts/alert-trucks/state", headers=bearer(sample, "analyst"),
                             json={"state": verdict, "comment": " "})
        assert answer.status_code == 400 and "needs a reason" in answer.json()["error"]["message"]
    after = get(client, sample, "/api/alerts/alert-trucks")
    assert (after["alert"]["state"], after["history"]) == (before["alert"]["state"], before["history"])


def test_large_answers_are_gzipped_when_asked(client: TestClient, sample: SampleWorkspace) -> None:
    url = f"/api/sites/{sample.site_id}/timeline"
    zipped = client.get(url, headers={**bearer(sample), "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.json()["site"]["id"] == sample.site_id
    plain = client.get(url, headers={**bearer(sample), "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == zipped.json()


def test_a_flagged_observation_says_why_in_the_api_and_the_site_page(client: TestClient,
                                                                    sample: SampleWorkspace) -> None:
    # issue 17 item 1: a skipped observation is shown with its reason, with no server path
    observation_id = sample.observation_ids[1]
    problem = f"chip file chips/{sample.site_id}/{observation_id}.tif is missing; recreate it with " \
              "`sitewatch ingest --repair`"
    with Workspace.open(sample.root) as ws:
        ws.flag_observation(observation_id, problem)
    try:
        assert get(client, sample, f"/api/observations/{observation_id}")["problem"] == problem
        listed = get(client, sample, f"/api/observations?site={sample.site_id}")["items"]
        assert [o["problem"] for o in listed].count(None) == len(listed) - 1
        page = client.get(f"/sites/{sample.site_id}", headers=bearer(sample))
        assert page.status_code == 200 and 'data-testid="flagged"' in page.text
        assert "ingest --repair" in page.text and str(sample.root) not in page.text
    finally:
        with Workspace.open(sample.root) as ws:
            ws.flag_observation(observation_id, None)
