"""The morning queue's JSON API and its thumbnails, over a real sample workspace (issue 16)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from e2e.sample_workspace import SITE_ID, START, SampleWorkspace, build_sample_workspace, sample_site
from sitewatch.app.web import create_app, views
from sitewatch.core.types import Alert, AlertState, IndicatorValue, Observation
from sitewatch.store.users import user_store
from sitewatch.store.workspace import Workspace


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWorkspace:
    root = tmp_path_factory.mktemp("queue") / "ws"
    built = build_sample_workspace(root)
    with Workspace.open(root) as ws:  # two more alerts on the last image: the smaller p comes first
        ws.upsert_alerts([
            Alert(id=f"alert-{name}", site_id=SITE_ID, observation_id=built.observation_ids[-1],
                  acquired=START + timedelta(days=21), created=START + timedelta(days=40),
                  indicator=indicator, value=5.0, baseline=1.0, score=3.0, explanation=f"{name} alert",
                  zone_id=zone, p_value=p)
            for name, indicator, zone, p in (("yard", "count_rail_car", "yard", 0.0004),
                                             ("site", "changed_area_m2", None, 0.3))
        ])
    return built


@pytest.fixture(scope="module")
def client(sample: SampleWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(sample.root)) as test_client:
        yield test_client


def queue(client: TestClient, sample: SampleWorkspace, query: str = "", role: str = "viewer") -> dict:
    answer = client.get(f"/api/queue{query}", headers={"Authorization": f"Bearer {sample.tokens[role]}"})
    assert answer.status_code == 200, answer.text
    result: dict = answer.json()
    return result


def test_queue_lists_untriaged_alerts_newest_first_then_by_p(
    client: TestClient, sample: SampleWorkspace
) -> None:
    found = queue(client, sample)
    # not the benign one; on one image, the smallest p first
    assert [i["id"] for i in found["items"]] == ["alert-yard", "alert-trucks", "alert-site"]
    yard, trucks, whole = found["items"]
    assert (yard["site_name"], yard["zone_name"], yard["indicator_name"]) == ("Test Port", "Rail yard",
                                                                             "rail car count")
    assert whole["zone_name"] == "whole site" and whole["indicator_name"] == "changed area"
    assert trucks["acquired_text"] == "2019-02-22 02:30 UTC" and trucks["p_text"] == "0.01"
    assert yard["p_text"] == "0.0004" and trucks["url"] == "/alerts/alert-trucks"
    assert trucks["thumbnail"] == f"/api/observations/{sample.observation_ids[-1]}/thumbnail.png?zone=pad"
    assert whole["thumbnail"].endswith("/thumbnail.png")
    timeline = client.get(f"/api/sites/{SITE_ID}/timeline",
                          headers={"Authorization": f"Bearer {sample.tokens['viewer']}"}).json()
    assert {(x["zone_name"], x["label"]) for x in timeline["series"]} == {
        ("Launch pad", "vehicle count"), ("Rail yard", "vehicle count")}
    assert timeline["unalerted"] == []  # the one spike (9 vehicles on the pad) raised its alert
    [site] = found["sites"]
    assert site["last_image_text"] == "2019-02-22 02:30 UTC" and site["latest_alert_state"] == "new"
    assert site["open_alerts"] == 3


def test_new_marks_follow_the_last_visit_and_the_api_records_none(
    client: TestClient, sample: SampleWorkspace
) -> None:
    never = queue(client, sample, role="admin")  # admin never visited: everything is new
    assert never["last_visit"] is None and never["new_count"] == 3
    later = queue(client, sample, "?since=2019-03-05T00:00:00", role="admin")  # naive means UTC
    assert [(i["id"], i["new"]) for i in later["items"]] == [
        ("alert-yard", True), ("alert-trucks", False), ("alert-site", True)]
    # a date alone is the start of that day: the two alerts raised 2019-03-13 02:30 are new after the 13th
    assert queue(client, sample, "?since=2019-03-13", role="admin")["new_count"] == 2
    assert queue(client, sample, "?since=2019-03-14", role="admin")["new_count"] == 0
    admin = {"Authorization": f"Bearer {sample.tokens['admin']}"}
    bad = client.get("/api/queue?since=yesterday", headers=admin)
    assert bad.status_code == 400 and "2019-02-22" in bad.json()["error"]["message"]
    with Workspace.open(sample.root) as ws:
        users = user_store(ws)
        assert users.record_visit("admin") is None
        visited = users.last_visit("admin")
    assert visited is not None
    after = queue(client, sample, role="admin")
    assert after["new_count"] == 0 and after["last_visit"] is not None
    with Workspace.open(sample.root) as ws:
        assert user_store(ws).last_visit("admin") == visited  # reading the queue is not a visit
    # triage takes an alert out of the queue
    with Workspace.open(sample.root) as ws:
        ws.set_alert_state("alert-site", AlertState.ACKNOWLEDGED, who="admin")
    assert [i["id"] for i in queue(client, sample)["items"]] == ["alert-yard", "alert-trucks"]


def test_thumbnail_is_a_small_crop_of_the_zone_and_cached(
    client: TestClient, sample: SampleWorkspace
) -> None:
    headers = {"Authorization": f"Bearer {sample.tokens['viewer']}"}
    # the image before the last: the last one's chip is masked over the pad's corner (transparent too)
    url = f"/api/observations/{sample.observation_ids[-2]}/thumbnail.png"
    pad = client.get(f"{url}?zone=pad", headers=headers)
    assert pad.status_code == 200 and pad.headers["content-type"] == "image/png"
    assert "max-age" in pad.headers["cache-control"]
    crop = Image.open(io.BytesIO(pad.content))
    whole = Image.open(io.BytesIO(client.get(url, headers=headers).content))
    assert whole.size == (128, 128)  # the 128-pixel chip is under the 160-pixel cap
    # the pad is 110 m of the 256 m chip: with its margin, about 63 of 128 pixels, on the chip's grid
    assert 50 <= crop.size[0] <= 80 and abs(crop.size[0] - crop.size[1]) <= 2
    # the pad lies 10 m inside the chip's south-west corner, so its 16 m margin runs off the chip there:
    # a few transparent columns on the left and rows at the bottom, never filled, and the rest is image
    alpha = np.asarray(crop.convert("RGBA"))[..., 3]
    assert (alpha[:, :3] == 0).all() and (alpha[-3:, :] == 0).all()
    assert (alpha[: -crop.size[1] // 10, crop.size[0] // 10 :] == 255).all()
    assert client.get(f"{url}?zone=pad", headers=headers).content == pad.content
    missing = client.get(f"{url}?zone=nowhere", headers=headers)
    assert missing.status_code == 404 and "pad, yard" in missing.json()["error"]["message"]
    assert client.get(f"{url}?zone=pad").status_code == 401


def test_spikes_without_an_alert_carry_the_reason_the_stored_data_gives() -> None:
    """Issue 16 item 8 (Yongbyon): a value far outside its band and no alert says why, from what the
    monitor stored: the image's problem, poor visibility, warm-up, the site's alert on the image, or
    else that the combined evidence stayed under the alert level."""
    site = sample_site()
    spikes = {5: 1.0, 20: 1.0, 21: 1.0, 22: 0.2, 23: 1.0, 24: 1.0}  # index -> quality of a spike of 20
    observations, values = [], []
    for index in range(26):
        acquired = START + timedelta(days=index)
        problem = "cloud over the site" if index == 20 else None
        observations.append(Observation(f"o{index}", SITE_ID, f"s{index}", acquired, f"chips/o{index}.tif",
                                        1.0, problem=problem))
        value = 20.0 if index in spikes else 2.0 + index % 2
        values.append(IndicatorValue(f"o{index}", SITE_ID, "pad", "vehicle_count", value,
                                     spikes.get(index, 1.0), acquired))

    def alert(index: int, zone: str, indicator: str) -> Alert:
        return Alert(id=f"a{index}", site_id=SITE_ID, observation_id=f"o{index}", acquired=START,
                     created=START, indicator=indicator, value=9.0, baseline=1.0, score=5.0,
                     explanation="x", zone_id=zone)

    alerts = [alert(23, "yard", "count_rail_car"), alert(24, "pad", "vehicle_count")]
    found = {s["observation_id"]: s["reason"]
             for s in views.unalerted_spikes(site, observations, values, alerts, false_alarm_rate=0.01)}
    assert found == {
        "o5": "not alerted: within warm-up (5 earlier images seen; the monitor alerts from 20)",
        "o20": "not scored: cloud over the site",
        "o21": "not alerted: scored with the site's other zones and indicators, the combined evidence "
               "stayed under the alert level (α = 0.01)",
        "o22": "not alerted: poor visibility (quality 0.2, under the 0.3 the monitor needs)",
        "o23": "site under alert already: its alert on this image names rail car count in Rail yard",
    }  # o24 raised its own alert; the usual values (2 and 3) are no spikes


def test_benign_led_alerts_rank_below_the_rest_or_are_held_back_by_the_sites_policy(tmp_path) -> None:
    """Issue 19's policy reaches the queue: under ``rank`` an alert led by a benign hypothesis comes
    after the top-priority ones, however new; under ``hold`` it is counted, not listed."""
    from sitewatch.core.types import Hypothesis

    root = tmp_path / "ws"
    built = build_sample_workspace(root)
    holiday = (Hypothesis("holiday", "holiday gathering", True, 1e4, 0.9),
               Hypothesis("launch_preparation", "launch or test preparation", False, 10.0, 0.1))
    # all LR ≤ 1: a benign lead on priors alone, which neither lowers the alert nor is named as its lead
    unexplained = (Hypothesis("routine_gathering", "routine gathering", True, 1.0, 0.4),
                   Hypothesis("none", "none of these (unusual in another way)", False, 0.5, 0.2))
    with Workspace.open(root) as ws:
        ws.upsert_alerts([
            Alert(id="alert-holiday", site_id=SITE_ID, observation_id=built.observation_ids[-1],
                  acquired=START + timedelta(days=21), created=START + timedelta(days=50),
                  indicator="count_car", value=60.0, baseline=10.0, score=4.0, explanation="holiday alert",
                  zone_id="yard", p_value=0.0001, hypotheses=holiday),
            Alert(id="alert-unexplained", site_id=SITE_ID, observation_id=built.observation_ids[-2],
                  acquired=START + timedelta(days=14), created=START + timedelta(days=50),
                  indicator="changed_objects", value=30.0, baseline=2.0, score=3.0, explanation="came",
                  zone_id="pad", p_value=0.005, hypotheses=unexplained)])
        ranked = views.morning_queue(ws, last_visit=None)
        ws.settings = ws.settings.replace(benign_policy_sites=f"{SITE_ID}=hold")
        holding = views.morning_queue(ws, last_visit=None)
    ids = [item["id"] for item in ranked["items"]]
    assert ids[-1] == "alert-holiday" and len(ids) > 1  # the smallest p on the newest image, yet last
    last = ranked["items"][-1]
    assert not last["top_priority"] and last["lead"].startswith("very likely holiday gathering")
    assert ranked["held_count"] == 0
    other = next(item for item in ranked["items"] if item["id"] == "alert-unexplained")
    assert other["top_priority"]
    assert other["lead"] == "no activity pattern fits better than the site's routine"
    assert ids.index("alert-unexplained") < ids.index("alert-holiday")
    assert "alert-holiday" not in [item["id"] for item in holding["items"]]
    assert holding["held_count"] == 1 and len(holding["items"]) == len(ids) - 1
    # the alert list says the same of each alert, by the same rule
    from sitewatch.app.web import serialize

    with Workspace.open(root) as ws:
        listed = {a.id: serialize.alert(a)["top_priority"] for a in ws.alerts()}
    assert listed["alert-holiday"] is False and listed["alert-unexplained"] is True
    assert all(listed[item["id"]] == item["top_priority"] for item in ranked["items"])
