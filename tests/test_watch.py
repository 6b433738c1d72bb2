"""`sitewatch watch` with real parts on loopback: a static STAC catalog served over HTTP (Range
server), a webhook receiver checking the HMAC, an SMTP server (aiosmtpd) requiring STARTTLS, and
the service run in-process and as a process stopped by SIGTERM and killed with -9."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pystac
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from shapely.geometry import mapping

from range_server import serving
from sitewatch.core.errors import ConfigError
from sitewatch.core.types import Alert, AlertState
from sitewatch.monitor.baselines import BaselineConfig
from sitewatch.pipeline.ingest import ingest_stac
from sitewatch.pipeline.monitor import MonitorOptions
from sitewatch.pipeline.notify import NotificationError, deliver
from sitewatch.pipeline.watch import OUTAGE_FAILURES, Backoff, serve
from sitewatch.pipeline.watch_config import EmailRoute, RouteFilter, WatchSource, load_watch_config
from sitewatch.store import Workspace
from test_monitor_pipeline import small_site, write_images

CLI = [sys.executable, "-c", "from sitewatch.app.cli import main; main()"]
SECRET = "s3cret-hmac-key"
SMTP_PASSWORD = "mail-pass-123"


# --- real parts ---------------------------------------------------------------------------------------


def write_catalog(folder: Path, count: int, surges: tuple[int, ...]) -> tuple[Path, list[str]]:
    """The small site's daily images as a self-contained static catalog (relative asset links, so
    it can be served); returns catalog.json and the item ids in time order."""
    images = write_images(folder / "images", count, surges=surges)
    site = small_site()
    catalog = pystac.Catalog(id="watch-test", description="small site series")
    footprint = site.geometry.buffer(0.0005)
    for image in images:
        item = pystac.Item(id=image.stem, geometry=mapping(footprint), bbox=list(footprint.bounds),
                           datetime=datetime.strptime(image.stem.split("_")[1], "%Y%m%dT%H%M%SZ")
                           .replace(tzinfo=UTC), properties={"gsd": 1.0, "license": "CC0-1.0"})
        item.add_asset("image", pystac.Asset(href=str(image), media_type=pystac.MediaType.GEOTIFF,
                                             roles=["data"]))
        catalog.add_item(item)
    catalog.normalize_hrefs(str(folder / "catalog"))
    for item in catalog.get_items():  # the image beside its item, linked relatively
        target = Path(item.get_self_href() or "").with_suffix(".tif")
        target.parent.mkdir(parents=True, exist_ok=True)
        Path(item.assets["image"].href).rename(target)
        item.assets["image"].href = str(target)
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog" / "catalog.json", [image.stem for image in images]


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: keeps each POST whose signature checks, answers 503 to the
    first ``fail_first`` requests."""

    secret: str
    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def raised(self) -> list[str]:
        return [body["alert"]["id"] for body in self.received if body["event"] == "raised"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    receiver.requests += 1
                    failing = receiver.requests <= receiver.fail_first
                    good = hmac.compare_digest(expected, self.headers.get("X-Sitewatch-Signature", ""))
                    if not good:
                        receiver.bad_signatures += 1
                    elif not failing:
                        document = json.loads(body)
                        assert document["delivery"] == self.headers["X-Sitewatch-Delivery"]
                        receiver.received.append(document)
                self.send_response(503 if failing else 204 if good else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(SECRET)
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@dataclass
class Mailbox:
    host: str
    port: int
    ca_file: Path
    messages: list[Message] = field(default_factory=list)
    tls_sessions: int = 0


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if session.ssl is not None:
            self.box.tls_sessions += 1
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.box.messages.append(message_from_bytes(content))
        return "250 OK"


def _authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def mailbox(certificate: tuple[Path, Path]) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1 that requires STARTTLS before anything and a login over it."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox("127.0.0.1", _free_port(), cert)
    controller = Controller(_Handler(box), hostname=box.host, port=box.port, tls_context=context,
                            require_starttls=True, auth_require_tls=True, authenticator=_authenticate)
    controller.start()
    yield box
    controller.stop()


def watch_toml(root: Path, sources: str, routes: str = "", extra: str = "") -> None:
    settings = root / "sitewatch.toml"
    text = settings.read_text().replace("false_alarm_rate = 0.01", "false_alarm_rate = 0.05")
    text = text.replace('dashboard_url = ""', 'dashboard_url = "https://watch.example.org/"')
    settings.write_text(f"{text}\n[watch]\ndetect_objects = false\nbackoff_s = 1\n{extra}\n{sources}\n"
                        f"{routes}")


def webhook_route(receiver: Receiver, **more: object) -> str:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in more.items())
    return (f'[[watch.routes]]\nname = "hook"\nkind = "webhook"\nurl = "{receiver.url}"\n'
            f'secret_env = "WATCH_TEST_SECRET"\n{extra}')


# --- configuration -------------------------------------------------------------------------------------


def test_the_watch_table_reports_every_problem_by_key_path(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", sites=[small_site()]) as ws:
        root = ws.root
    watch_toml(root, '[[watch.sources]]\nname = "Bad Name"\ninterval = "soon"\nsites = ["nowhere"]\n'
               'max_cloud = 140\n\n[[watch.sources]]\nname = "ok"\nstac = "catalog.json"\ncolour = 1\n',
               '[[watch.routes]]\nname = "hook"\nkind = "webhook"\nurl = "ftp://x"\n'
               'secret_env = "NOT_SET_X"\nmin_severity = "dire"\n\n'
               '[[watch.routes]]\nname = "mail"\nkind = "email"\nsmtp_host = "h"\n'
               'from = "not-an-address"\nto = []\nusername = "u"\n\n'
               '[[watch.routes]]\nname = "x"\nkind = "sms"\n')
    with pytest.raises(ConfigError) as raised:
        load_watch_config(root, site_ids=["smallsite"], environ={})
    problems = "\n".join(raised.value.problems)
    for path in ("watch.sources[0].name", "watch.sources[0].stac: missing", "watch.sources[0].interval",
                 "watch.sources[0].sites: 'nowhere'", "watch.sources[0].max_cloud",
                 "watch.sources[1].colour: unknown key", "watch.routes[0].url", "watch.routes[0].secret_env: "
                 "the environment variable NOT_SET_X is not set", "watch.routes[0].min_severity",
                 "watch.routes[1].from", "watch.routes[1].to: is empty", "watch.routes[1].password_env",
                 "watch.routes[2].kind"):
        assert path in problems, problems
    assert len(raised.value.problems) == 13, problems
    done = subprocess.run([*CLI, "watch", "--check", "-w", str(root)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 4 and "13 problem(s)" in done.stderr and "watch.routes[2].kind" in done.stderr


def test_a_failing_source_backs_off_doubling_to_its_cap_and_resets_on_success() -> None:
    from sitewatch.pipeline.watch_config import WatchConfig

    now = [0.0]
    source = WatchSource(name="s", stac="x", interval_s=600.0)
    config = WatchConfig(sources=(source,), backoff_s=10.0, max_backoff_s=45.0)
    schedule = Backoff(config, clock=lambda: now[0])
    assert schedule.due_now() == (source,)
    waits = [schedule.record(source, "down") for _ in range(4)]
    assert waits == [10.0, 20.0, 40.0, 45.0]
    assert schedule.due_now() == () and schedule.seconds_to_next() == 45.0
    now[0] = 45.0
    assert schedule.due_now() == (source,)
    assert schedule.record(source, None) == 600.0
    assert schedule.record(source, "down again") == 10.0


def test_mail_goes_only_over_starttls_and_a_server_without_it_is_refused(mailbox: Mailbox) -> None:
    plain = Controller(_Handler(mailbox), hostname="127.0.0.1", port=_free_port())
    plain.start()
    try:
        route = EmailRoute(name="mail", smtp_host="127.0.0.1", smtp_port=plain.port, sender="w@example.org",
                           to=("a@example.org",), filter=RouteFilter(), retries=0)
        document = {"delivery": "a/1/mail", "event": "raised", "workspace": "t", "who": "", "comment": "",
                    "link": None, "alert": {"id": "a", "site_id": "s", "site_name": "S", "zone_id": None,
                                            "indicator": "vehicles", "value": 9.0, "baseline": 2.0,
                                            "p_value": 0.001, "severity": "high", "state": "new",
                                            "acquired": "2024-01-01T00:00:00+00:00", "explanation": "why"}}
        with pytest.raises(NotificationError, match="does not offer STARTTLS"):
            deliver(route, document, environ={})
    finally:
        plain.stop()
    assert mailbox.messages == []


# --- the store's part, on both backends -------------------------------------------------------------


def test_cursors_and_the_outbox_hold_on_sqlite_and_postgis(tmp_path: Path, database_url: str | None) -> None:
    catalog, item_ids = write_catalog(tmp_path / "series", 4, surges=())
    with Workspace.init(tmp_path / "ws", sites=[small_site()], database_url=database_url) as ws:
        report = ingest_stac(ws, str(catalog), cursor=ws.watch_cursor("series"))
        assert len(report.ingested) == 4
        cursor = ws.watch_cursor("series")
        assert cursor.until == max(s.acquired for s in ws.scenes())
        assert cursor.item_ids == (f"/{item_ids[-1]}",)
        assert ingest_stac(ws, str(catalog), cursor=cursor).outcomes == ()  # nothing past the cursor

        observation = ws.observations()[-1]
        raised = Alert(id="a1", site_id="smallsite", observation_id=observation.id,
                       acquired=observation.acquired, created=datetime.now(UTC), indicator="vehicle_count",
                       value=9.0, baseline=2.0, score=6.0, explanation="busy", p_value=0.0005)
        ws.upsert_alerts([raised])
        assert ws.start_notifications() == ws.start_notifications()  # the first call sets the mark, once
        assert ws.enqueue_notifications(lambda alert, event: ["hook"]) == 0  # raised before the mark

        ws.upsert_alerts([replace(raised, id="a2")])
        routes = {"raised": ["hook", "mail"], "acknowledged": ["hook"]}
        assert ws.enqueue_notifications(lambda alert, event: routes[event]) == 2
        assert ws.enqueue_notifications(lambda alert, event: routes[event]) == 0  # queued once
        hook, mail = ws.pending_notifications(max_attempts=2)
        assert (hook.alert_id, hook.event, hook.route, mail.route) == ("a2", "raised", "hook", "mail")
        ws.record_delivery(hook.id, error=None)
        ws.record_delivery(mail.id, error="refused")
        assert [n.route for n in ws.pending_notifications(max_attempts=2)] == ["mail"]

        ws.set_alert_state("a2", AlertState.ACKNOWLEDGED, who="ana", comment="on it")
        assert ws.enqueue_notifications(lambda alert, event: routes[event]) == 1
        ws.record_delivery(mail.id, error="refused again")  # its second try: given up at max_attempts=2
        (change,) = ws.pending_notifications(max_attempts=2)
        assert (change.event, change.who, change.comment, change.delivery_id) == (
            "acknowledged", "ana", "on it", f"a2/{change.event_id}/hook")


def test_an_item_published_late_is_found_within_the_look_back(tmp_path: Path) -> None:
    catalog_path, item_ids = write_catalog(tmp_path / "series", 7, surges=())  # an image every few days
    catalog = pystac.Catalog.from_file(str(catalog_path))
    items = {item.id: item for item in catalog.get_items()}
    for held_back in (item_ids[0], item_ids[5]):  # published after the others
        catalog.remove_item(held_back)
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    acquired = [items[item_id].datetime or datetime.min for item_id in item_ids]
    late = acquired[6] - acquired[5] + timedelta(hours=1)  # reaches back to the last but one, not further
    assert acquired[0] < acquired[4] < acquired[6] - late
    with Workspace.init(tmp_path / "ws", sites=[small_site()]) as ws:
        first = ingest_stac(ws, str(catalog_path), cursor=ws.watch_cursor("series"), late=late)
        assert len(first.ingested) == 5
        cursor = ws.watch_cursor("series")
        assert cursor.item_ids == (f"/{item_ids[-1]}",)

        for held_back in (item_ids[0], item_ids[5]):
            catalog.add_item(items[held_back])
        catalog.save(pystac.CatalogType.SELF_CONTAINED)
        # without a look-back the late items are behind the cursor and never read
        assert ingest_stac(ws, str(catalog_path), cursor=cursor).outcomes == ()
        # within it, the last but one is ingested and the stored ones are not reported; the first is
        # further back than the look-back; the cursor stays where it was
        second = ingest_stac(ws, str(catalog_path), cursor=cursor, late=late)
        assert [outcome.status.value for outcome in second.outcomes] == ["ingested"]
        assert sorted(s.stac_item for s in ws.scenes()) == sorted(set(item_ids) - {item_ids[0]})
        assert ws.watch_cursor("series") == cursor
        assert ingest_stac(ws, str(catalog_path), cursor=cursor, late=late).outcomes == ()  # once


def test_a_source_look_back_is_read_from_the_watch_table(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", sites=[small_site()]) as ws:
        watch_toml(ws.root, '[[watch.sources]]\nname = "a"\nstac = "catalog.json"\n'
                   '[[watch.sources]]\nname = "b"\nstac = "catalog.json"\nlate = "12h"\n'
                   '[[watch.sources]]\nname = "c"\nstac = "catalog.json"\nlate = 0\n', "")
        a, b, c = load_watch_config(ws.root).sources
        assert (a.late_s, b.late_s, c.late_s) == (3 * 86_400.0, 43_200.0, 0.0)
    with Workspace.init(tmp_path / "ws2", sites=[small_site()]) as ws:
        watch_toml(ws.root, '[[watch.sources]]\nname = "a"\nstac = "catalog.json"\nlate = "soon"\n', "")
        with pytest.raises(ConfigError, match=r"watch\.sources\[0\]\.late"):
            load_watch_config(ws.root)


# --- the service in-process: a source going down mid-cycle, notifications once ----------------------


def test_a_source_down_mid_cycle_loses_nothing_and_each_alert_is_notified_once(
    tmp_path: Path, receiver: Receiver, mailbox: Mailbox,
) -> None:
    catalog, item_ids = write_catalog(tmp_path / "series", 16, surges=(10, 14))
    receiver.fail_first = 1  # the first delivery is retried
    environ = {"WATCH_TEST_SECRET": SECRET, "WATCH_TEST_SMTP": SMTP_PASSWORD}
    options = MonitorOptions(detect_objects=False, baseline=BaselineConfig(min_history=5))
    with serving(catalog.parent) as server, Workspace.init(tmp_path / "ws", sites=[small_site()]) as ws:
        watch_toml(ws.root, f'[[watch.sources]]\nname = "series"\nstac = "{server.url}catalog.json"\n',
                   webhook_route(receiver) +
                   f'\n[[watch.routes]]\nname = "mail"\nkind = "email"\nsmtp_host = "127.0.0.1"\n'
                   f'smtp_port = {mailbox.port}\nfrom = "watch@example.org"\nto = ["analyst@example.org"]\n'
                   f'username = "watch"\npassword_env = "WATCH_TEST_SMTP"\nca_file = "{mailbox.ca_file}"\n'
                   'min_severity = "medium"\nevents = ["raised"]\n')
        ws = Workspace.open(ws.root)
        config = load_watch_config(ws.root, site_ids=["smallsite"], environ=environ)
        stop = threading.Event()
        done = [0]

        def server_goes_down() -> None:
            done[0] += 1
            if done[0] == 6:
                server.down = True

        first = serve(ws, config, stop=stop, environ=environ, once=True, monitor=options,
                      after_item=server_goes_down)
        report = first.sources[0].report
        assert report is not None and len(report.ingested) == 6 and len(report.failed) == OUTAGE_FAILURES
        # the rest waits for the next cycle: no time spent on a dead server
        assert "looks down" in (first.sources[0].error or "")
        assert len(ws.scenes()) == 6
        assert ws.watch_cursor("series").item_ids == (f"/{item_ids[5]}",)  # held where the failures start

        server.down = False
        second = serve(ws, config, stop=stop, environ=environ, once=True, monitor=options)
        report = second.sources[0].report
        assert report is not None and report.ok and len(report.ingested) == len(item_ids) - 6
        scenes = ws.scenes()
        assert sorted(s.stac_item for s in scenes) == sorted(item_ids)  # each exactly once
        assert ws.watch_cursor("series").until == scenes[-1].acquired
        alerts = ws.alerts()
        assert alerts, "the surges raise alerts"
        assert sorted(receiver.raised()) == sorted(a.id for a in alerts)  # each exactly once
        assert receiver.bad_signatures == 0 and receiver.requests == len(alerts) + 1

        wanted = [a for a in alerts if (a.p_value or 0.0) <= 0.01 or a.p_value is None]
        assert len(mailbox.messages) == len(wanted) == mailbox.tls_sessions
        for message in mailbox.messages:
            assert "https://watch.example.org/alerts/" in message.get_payload()
            assert message["Subject"].startswith("[sitewatch] New alert")
            assert SECRET not in message.as_string() and SMTP_PASSWORD not in message.as_string()

        # a state change is notified too, and nothing else again; a third cycle reads only the cursor on
        ws.set_alert_state(alerts[0].id, AlertState.ACKNOWLEDGED, who="ana", comment="looking")
        server.reset()
        third = serve(ws, config, stop=stop, environ=environ, once=True, monitor=options)
        assert third.sources[0].report is not None and not third.sources[0].report.ingested
        assert not any(path.endswith(".tif") for _, path, _ in server.requests)
        changes = [body for body in receiver.received if body["event"] != "raised"]
        assert [(c["event"], c["alert"]["id"], c["who"]) for c in changes] == [
            ("acknowledged", alerts[0].id, "ana")]
        assert len(mailbox.messages) == len(wanted)  # the mail route asked for new alerts only
        assert all(sent is not None for _, sent, _ in ws.notifications())


# --- the service as a process: SIGTERM, kill -9, restart ---------------------------------------------


def _scene_count(root: Path) -> int:
    with sqlite3.connect(f"file:{root / 'sitewatch.db'}?mode=ro", uri=True, timeout=10) as connection:
        return int(connection.execute("select count(*) from scenes").fetchone()[0])


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigterm_and_kill_9_mid_cycle_lose_and_repeat_nothing(tmp_path: Path, receiver: Receiver) -> None:
    catalog, item_ids = write_catalog(tmp_path / "series", 24, surges=(21, 23))
    with Workspace.init(tmp_path / "ws", sites=[small_site()]) as ws:
        root = ws.root
    watch_toml(root, f'[[watch.sources]]\nname = "series"\nstac = "{catalog}"\ninterval = "1h"\n',
               webhook_route(receiver))
    env = {**os.environ, "WATCH_TEST_SECRET": SECRET, "SITEWATCH_WATCH_PAUSE_S": "0.3"}
    command = [*CLI, "-v", "watch", "-w", str(root)]

    stopped = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (root / "sitewatch.db").exists() and _scene_count(root) >= 3, 60, "three scenes")
    stopped.send_signal(signal.SIGTERM)
    _, log = stopped.communicate(timeout=60)
    assert stopped.returncode == 143, log  # it stopped between two items, cutting the cycle short
    after_term = _scene_count(root)
    assert 3 <= after_term < len(item_ids)

    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: _scene_count(root) >= after_term + 3, 60, "three more scenes")
    killed.kill()
    killed.wait(timeout=30)
    assert _scene_count(root) < len(item_ids)

    env.pop("SITEWATCH_WATCH_PAUSE_S")
    before = _scene_count(root)
    done = subprocess.run([*CLI, "watch", "--once", "--json", "-w", str(root)], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    cycle = json.loads(done.stdout)
    assert cycle["sources"][0]["ingested"] == len(item_ids) - before and cycle["sources"][0]["failed"] == 0
    with Workspace.open(root) as ws:
        assert sorted(s.stac_item for s in ws.scenes()) == sorted(item_ids)  # every item exactly once
        assert len(ws.observations()) == len(item_ids)
        alerts = ws.alerts()
    assert alerts, "the surges raise alerts"
    assert sorted(receiver.raised()) == sorted(a.id for a in alerts)  # each notified exactly once

    idle = subprocess.Popen([*CLI, "-v", "watch", "-w", str(root)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read_log() -> None:
        assert idle.stderr is not None
        lines.extend(iter(idle.stderr.readline, ""))

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    _wait_for(lambda: any("cycle:" in line for line in lines), 120, "an idle cycle")
    idle.send_signal(signal.SIGTERM)
    assert idle.wait(timeout=60) == 0, "".join(lines)  # stopped while waiting: a clean exit
    reader.join(timeout=10)
    assert idle.stderr is not None
    idle.stderr.close()
    assert sorted(receiver.raised()) == sorted(a.id for a in alerts)
