"""The PostgreSQL/PostGIS store as a team runs it: chosen at init, shared by processes at once, copied.

The server is a real one (``postgres_server`` in conftest.py); the concurrent writers are real
``sitewatch`` processes, as on a team server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from shapely.geometry import Point, box

from conftest import PostgresServer
from sitewatch.catalog import builtin_sites
from sitewatch.core.errors import StoreError, UnsupportedInputError
from sitewatch.core.types import (
    AlertState,
    Assessment,
    ChangeRegion,
    Confidence,
    Detection,
    IndicatorValue,
    Likelihood,
)
from sitewatch.store import Workspace, codec
from sitewatch.store.copy import copy_database
from sitewatch.store.migrate import alembic_config
from sitewatch.store.records import EvidenceRecord
from sitewatch.store.users import Role, user_store
from test_monitor_pipeline import small_site, write_images
from test_store import T0, make_alert, make_scene, stage

SITEWATCH = str(Path(sys.executable).with_name("sitewatch"))
"""The installed command, run as a team's processes run it."""


def _sitewatch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([SITEWATCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())


def _finish(process: subprocess.Popen[str], timeout: float = 400) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{process.args} exited {process.returncode}:\n{err[-3000:]}"
    assert "locked" not in err and "Traceback" not in err, err[-3000:]
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, server: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"sitewatch serve exited {server.returncode} (its log: serve.log)")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"sitewatch serve did not listen on port {port} within {timeout} s")


def _count(ws: Workspace, sql: str) -> int:
    with ws.engine.connect() as connection:
        return int(connection.execute(sa.text(sql)).scalar_one())


@pytest.mark.slow
def test_two_ingests_and_two_monitors_at_once_lose_and_double_nothing(postgres_server: PostgresServer,
                                                                  tmp_path: Path) -> None:
    images = write_images(tmp_path / "images", 12)
    root = tmp_path / "ws"
    with Workspace.init(root, sites=[small_site()], database_url=postgres_server.create_database()) as ws:
        users = user_store(ws)
        users.ensure_user("reader", "a-reader-password", Role.VIEWER)
        token = users.issue_token("reader", "web load")
    # The web load: `sitewatch serve --workers 2` on the same store, read without pause by a client
    # while the writers race; every answer is counted, and none may be a server error.
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")  # a file, not a pipe: an access log must never fill it and stall
    server = subprocess.Popen([SITEWATCH, "serve", "-w", str(root), "--port", str(port), "--workers", "2"],
                              stdout=log, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    answers: list[int] = []
    writing = threading.Event()
    writing.set()

    def read_while_writing() -> None:
        paths = ("/api/alerts?limit=50", "/api/sites/smallsite/timeline", "/api/observations?site=smallsite",
                 "/api/scenes?limit=20")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                          headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            while writing.is_set():
                for path in paths:
                    try:
                        answers.append(client.get(path).status_code)
                    except httpx.TransportError:
                        answers.append(-1)  # not listening yet (or a worker died: counted below)

    load = threading.Thread(target=read_while_writing)
    try:
        _wait_listening(port, server)
        load.start()
        # Both ingests take every image in the same order, so they race for each scene (checked: with a
        # plain INSERT in add_scene, the loser of a race fails its file and this test fails).
        first = _sitewatch("ingest", "-w", str(root), "--json", *map(str, images))
        second = _sitewatch("ingest", "-w", str(root), "--json", *map(str, images))
        monitors = [_sitewatch("monitor", "-w", str(root), "-j", "1", "--json") for _ in range(2)]
        reports = [json.loads(_finish(process)) for process in (first, second)]
        for monitor in monitors:
            _finish(monitor)
        _finish(_sitewatch("monitor", "-w", str(root), "-j", "1", "--json"))  # scores what came in meanwhile
    finally:
        writing.clear()
        if load.is_alive():
            load.join(timeout=60)
        server.terminate()
        server.wait(timeout=60)
        log.close()
    served = [code for code in answers if code != -1]
    assert len(served) >= 20, answers[:50]  # the reads ran all along the race
    assert all(code == 200 for code in served), sorted(set(served))  # no 5xx, nothing refused
    assert answers.count(-1) == 0, "the server stopped answering during the race (its log: serve.log)"

    ingested = [entry["scene_id"] for report in reports for entry in report["files"]
                if entry["status"] == "ingested"]
    assert sorted(ingested) == sorted(set(ingested)) and len(ingested) == len(images)  # one winner each
    with Workspace.open(root) as ws:
        observations = ws.observations()
        assert len(ws.scenes()) == len(images) and len(observations) == len(images)
        raced = _snapshot(ws)
        scored = {key[0] for key, _value, _quality in raced["indicators"]}
        assert scored == {o.id for o in observations}  # none left unscored
        doubled = _count(ws, "SELECT count(*) FROM (SELECT observation_id, zone_id, name FROM "
                             "indicator_values GROUP BY 1, 2, 3 HAVING count(*) > 1) AS d")
        assert doubled == 0
        raised = _count(ws, "SELECT count(*) FROM alert_events WHERE comment = 'raised'")
        assert raised == len(raced["alerts"])  # one 'raised' event per alert, however many monitors saw it
    # What the racing processes left is exactly what one full pass over the finished store computes.
    _finish(_sitewatch("monitor", "-w", str(root), "-j", "1", "--full", "--json"))
    with Workspace.open(root) as ws:
        assert _snapshot(ws) == raced


def _snapshot(ws: Workspace) -> dict[str, list[Any]]:
    """Every stored output, keyed so that a doubled row shows as a longer list."""
    indicators = [((v.observation_id, v.zone_id, v.name), v.value, v.quality)
                  for v in ws.indicators("smallsite")]
    detections = sorted((d.observation_id, d.class_name, round(d.score, 9), d.geometry.wkt)
                        for d in ws.detections(site_id="smallsite"))
    regions = sorted((r.observation_id, r.reference_observation_id, r.geometry.wkt)
                     for r in ws.change_regions(site_id="smallsite"))
    alerts = sorted((a.id, a.observation_id, a.indicator, a.zone_id, a.value) for a in ws.alerts())
    return {"indicators": sorted(indicators, key=repr), "detections": detections, "regions": regions,
            "alerts": alerts}


def test_init_store_selects_the_backend_by_url(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create_database()
    out = _finish(_sitewatch("init", str(tmp_path / "team"), "--store", url, "--json"))
    assert json.loads(out)["store"].startswith("postgresql+psycopg://postgres@/sw_")
    assert f'database_url = "{url}"' in (tmp_path / "team" / "sitewatch.toml").read_text()
    assert not (tmp_path / "team" / "sitewatch.db").exists()
    with Workspace.open(tmp_path / "team") as ws:
        assert ws.engine.dialect.name == "postgresql" and len(ws.sites()) == 3
    with pytest.raises(StoreError, match=r"already keeps its database at .*sitewatch store copy"):
        Workspace.init(tmp_path / "team", database_url="sqlite:////elsewhere.db")
    with pytest.raises(UnsupportedInputError, match=r"uses 'mysql'; sitewatch stores workspaces in SQLite"):
        Workspace.init(tmp_path / "other", database_url="mysql://x@y/z")
    # psycopg 2 style URLs get the driver sitewatch installs
    plain = postgres_server.create_database().replace("postgresql+psycopg://", "postgresql://")
    with Workspace.init(tmp_path / "plain", database_url=plain) as ws:
        assert ws.engine.dialect.driver == "psycopg"
    empty = postgres_server.create_database()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "sitewatch.toml").write_text(f'database_url = "{empty}"\n')
    with pytest.raises(StoreError, match=r"has no sitewatch tables; run `sitewatch init"):
        Workspace.open(tmp_path / "empty")
    (tmp_path / "empty" / "sitewatch.toml").write_text(
        f'database_url = "{empty.replace(str(postgres_server.port), "1")}"\n')
    with pytest.raises(StoreError, match=r"check the server is running and the URL"):
        Workspace.open(tmp_path / "empty")


def _filled_workspace(root: Path) -> Workspace:
    """A SQLite workspace with rows in every table: scenes, chips, evidence, alerts with history, users."""
    ws = Workspace.init(root)
    for number in (1, 2):
        ws.add_scene(make_scene(number), stage(ws, make_scene(number), ("sanumdong", "sohae")))
    first, second = ws.observations()[:2]
    ws.record_evidence(EvidenceRecord(
        first.id, registration=((0.5, -1.0), 0.7),
        detections=(Detection(first.id, "truck", 0.9, box(500000, 4300000, 500012, 4300003), "parking", "t"),
                    Detection(first.id, "car", 0.6, Point(500010, 4300010))),
        change_regions=(ChangeRegion(first.id, second.id, box(0, 0, 40, 50), 2000.0, 0.8, None, "diff"),),
        indicators=(IndicatorValue(first.id, first.site_id, "parking", "count_truck", 1.0, 0.9,
                                   first.acquired),
                    IndicatorValue(first.id, first.site_id, "rail_yard", "count_truck", None, 0.0,
                                   first.acquired))))
    ws.upsert_alerts([make_alert(first, 1), make_alert(second, 2, p_value=None, zone_id=None)])
    ws.set_alert_state("alert-1", AlertState.CONFIRMED, who="ana", comment="cranes seen")
    ws.add_assessment(Assessment("alert-1", "bo", T0, Likelihood.LIKELY, Confidence.MODERATE, "assembly",
                                 ("rocket assembly",)))
    user_store(ws).add_user("ana", "correct horse battery", Role.ANALYST)
    return ws


def _contents(ws: Workspace) -> tuple[object, ...]:
    alert_ids = [a.id for a in ws.alerts()]
    return (ws.sites(), ws.scenes(), ws.observations(), ws.detections(), ws.change_regions(),
            ws.indicators("sanumdong"), ws.alerts(), [ws.alert_history(i) for i in alert_ids],
            [ws.assessments(i) for i in alert_ids], user_store(ws).users())


def test_store_copy_moves_a_workspace_to_postgis_and_back(postgres_server: PostgresServer,
                                                          tmp_path: Path) -> None:
    with _filled_workspace(tmp_path / "local") as source:
        original = _contents(source)
    url = postgres_server.create_database()
    there = json.loads(_finish(_sitewatch("store", "copy", str(tmp_path / "local"), url, "--json")))
    assert there["rows"] > 20 and there["tables"]["detections"]["rows"] == 2
    (tmp_path / "local" / "sitewatch.toml").write_text(f'database_url = "{url}"\n')  # the move's last step
    with Workspace.open(tmp_path / "local") as on_server:
        assert on_server.engine.dialect.name == "postgresql" and _contents(on_server) == original
    back = json.loads(_finish(_sitewatch("store", "copy", str(tmp_path / "local"), str(tmp_path / "back"),
                                         "--json")))
    assert back["tables"] == there["tables"]  # the same counts and checksums on all three
    with Workspace.open(tmp_path / "back") as returned:
        assert returned.engine.dialect.name == "sqlite" and _contents(returned) == original
        for observation in returned.observations():  # the new folder got the chips too
            assert returned.chip_path(observation).read_bytes().startswith(b"chip")
    with Workspace.open(tmp_path / "local") as on_server:
        later = on_server.observations()[3]
        # serial ids continue after the copied ones (the copy restarts PostgreSQL's sequences)
        on_server.replace_detections(later.id, [Detection(later.id, "crane", 0.7, box(0, 0, 30, 2))])
        on_server.add_assessment(Assessment("alert-2", "cy", T0, Likelihood.UNLIKELY, Confidence.LOW))
        assert len(on_server.detections()) == 3
    refused = _sitewatch("store", "copy", str(tmp_path / "back"), url)
    _out, err = refused.communicate(timeout=120)
    assert refused.returncode != 0 and "already holds rows" in err
    with pytest.raises(StoreError, match="same database"):
        copy_database(url, url)


def test_a_database_made_before_postgis_is_converted_in_place(postgres_server: PostgresServer,
                                                              tmp_path: Path) -> None:
    """A server database at revision 0100 kept geometries as WKB bytea; 0200 turns them into PostGIS."""
    url = postgres_server.create_database(postgis=False)
    engine = sa.create_engine(url)
    site = builtin_sites()[0]
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0100_users")
        connection.execute(sa.text(
            "INSERT INTO sites VALUES (:id, :name, :country, :category, '[]', :gsd, true, '', '[]', :wkb, "
            ":min_x, :min_y, :max_x, :max_y, now())"),
            {"id": site.id, "name": site.name, "country": site.country, "category": site.category,
             "gsd": site.gsd, **codec.geometry_columns(site.geometry, column="wkb")})
    engine.dispose()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "sitewatch.toml").write_text(f'database_url = "{url}"\n')
    with Workspace.open(tmp_path / "old") as ws:
        assert ws.site(site.id).geometry.equals(site.geometry)
        with ws.engine.connect() as connection:
            kind = connection.execute(sa.text(
                "SELECT GeometryType(geometry_wkb), ST_SRID(geometry_wkb) FROM sites")).one()
        assert tuple(kind) == ("POLYGON", 4326)
