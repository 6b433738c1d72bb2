"""The ``[watch]`` table of ``sitewatch.toml``: the sources `sitewatch watch` polls and where it
sends notifications.

Validated like a site catalog: every problem is collected and reported at once, each named by its
key path (``watch.sources[1].interval``), before the service starts. Secrets never live in the
file: routes name the environment variables that hold them (``secret_env``, ``password_env``),
and only those names are checked and logged.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sitewatch.core.errors import ConfigError
from sitewatch.core.timeutil import parse_utc
from sitewatch.monitor.lifecycle import Severity
from sitewatch.store.settings import SETTINGS_FILE

EVENTS = ("raised", "acknowledged", "confirmed", "benign", "false_alarm")
"""What a route can be told: a new alert (``raised``), or the state an alert moved to."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


DEFAULT_LATE_S = 3 * 86_400.0
"""Default look-back of a source (``late = "3d"``): catalogs publish most late items within a day or two."""


@dataclass(frozen=True, slots=True)
class WatchSource:
    """One STAC source polled on its own interval, with the filters of ``ingest --stac``."""

    name: str
    """Names its cursor in the store and its lines in the log."""
    stac: str
    """STAC API URL, static catalog or ItemCollection (local paths relative to the workspace)."""
    interval_s: float
    site_ids: tuple[str, ...] = ()
    """Sites it looks for (empty: every site of the workspace)."""
    since: datetime | None = None
    """Items acquired before it are never read (the first cycle's start)."""
    collections: tuple[str, ...] = ()
    max_cloud: float | None = None
    max_off_nadir: float | None = None
    max_gsd: float | None = None
    late_s: float = DEFAULT_LATE_S
    """How far before its cursor each cycle looks again, for items a provider published late (their
    acquisition time is before items already read). Those already stored are skipped unopened."""


@dataclass(frozen=True, slots=True)
class RouteFilter:
    """Which alert events a route is told of."""

    site_ids: tuple[str, ...] = ()
    """Empty: every site."""
    min_severity: Severity = Severity.LOW
    events: tuple[str, ...] = EVENTS

    def wants(self, site_id: str, severity: Severity, event: str) -> bool:
        order = list(Severity)
        return ((not self.site_ids or site_id in self.site_ids) and event in self.events
                and order.index(severity) >= order.index(self.min_severity))


@dataclass(frozen=True, slots=True)
class WebhookRoute:
    """A JSON POST, its body signed with HMAC-SHA256 under the secret in ``secret_env``."""

    name: str
    url: str
    secret_env: str
    filter: RouteFilter
    timeout_s: float = 10.0
    retries: int = 3
    """Tries after the first within one delivery, with doubling waits."""


@dataclass(frozen=True, slots=True)
class EmailRoute:
    """A plain-text mail over SMTP, always upgraded with STARTTLS before logging in or sending."""

    name: str
    smtp_host: str
    sender: str
    to: tuple[str, ...]
    filter: RouteFilter
    smtp_port: int = 587
    username: str = ""
    password_env: str = ""
    """Environment variable holding the SMTP password; empty: no login."""
    ca_file: str = ""
    """PEM file of the CA that signed the server's certificate, when not a public one."""
    timeout_s: float = 30.0
    retries: int = 3


Route = WebhookRoute | EmailRoute


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """The whole ``[watch]`` table."""

    sources: tuple[WatchSource, ...]
    routes: tuple[Route, ...] = ()
    backoff_s: float = 30.0
    """First wait after a source fails; doubled after each further failure ..."""
    max_backoff_s: float = 3600.0
    """... up to this."""
    max_attempts: int = 20
    """Deliveries tried per notification (across cycles) before it is given up, logged."""
    detect_objects: bool | None = None
    """Object detection in the monitoring pass: None runs it when a detector is installed."""


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


_SOURCE_KEYS = ("name", "stac", "interval", "sites", "since", "collections", "max_cloud", "max_off_nadir",
                "max_gsd", "late")
_ROUTE_KEYS = ("name", "kind", "sites", "min_severity", "events", "timeout_s", "retries")
_WEBHOOK_KEYS = ("url", "secret_env")
_EMAIL_KEYS = ("smtp_host", "smtp_port", "from", "to", "username", "password_env", "ca_file")
_TOP_KEYS = ("sources", "routes", "backoff_s", "max_backoff_s", "max_attempts", "detect_objects")


def load_watch_config(root: Path, *, site_ids: Sequence[str] | None = None,
                      environ: Mapping[str, str] | None = None) -> WatchConfig:
    """The ``[watch]`` table of the workspace at ``root``; :class:`ConfigError` lists every problem.

    With ``site_ids`` (the workspace's), sites the table names must be among them; every
    environment variable a route names must be set in ``environ`` (default: the process's).
    """
    path = Path(root) / SETTINGS_FILE
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), ["watch: the file is missing; write a [watch] table (docs/watch.md)"]) \
            from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(str(path), [f"file: cannot be read as TOML ({error})"]) from None
    return parse_watch_config(document.get("watch"), source=str(path), root=Path(root), site_ids=site_ids,
                              environ=os.environ if environ is None else environ)


def parse_watch_config(table: object, *, source: str, root: Path, site_ids: Sequence[str] | None = None,
                       environ: Mapping[str, str] | None = None) -> WatchConfig:
    """:func:`load_watch_config` on a parsed ``[watch]`` table."""
    problems = _Problems()
    if not isinstance(table, Mapping):
        problems.add("watch", "missing; add a [watch] table with at least one [[watch.sources]] entry "
                     "(docs/watch.md)")
        raise ConfigError(source, problems.items)
    _unknown(table, _TOP_KEYS, "watch", problems)
    known_sites = set(site_ids) if site_ids is not None else None
    sources = _list_of_tables(table.get("sources"), "watch.sources", problems, required=True)
    parsed_sources = [_source(entry, f"watch.sources[{i}]", root, known_sites, problems)
                      for i, entry in enumerate(sources)]
    routes = _list_of_tables(table.get("routes"), "watch.routes", problems, required=False)
    parsed_routes = [_route(entry, f"watch.routes[{i}]", known_sites, environ, problems)
                     for i, entry in enumerate(routes)]
    for what, items in (("sources", parsed_sources), ("routes", parsed_routes)):
        names = [item.name for item in items if item is not None]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.add(f"watch.{what}", f"name {name!r} is used more than once; names must be unique")
    backoff = _number(table, "backoff_s", "watch", problems, default=30.0, low=0.0)
    max_backoff = _number(table, "max_backoff_s", "watch", problems, default=3600.0, low=0.0)
    max_attempts = _integer(table, "max_attempts", "watch", problems, default=20, low=1, high=1000)
    detect_objects = table.get("detect_objects")
    if detect_objects is not None and not isinstance(detect_objects, bool):
        problems.add("watch.detect_objects", f"{detect_objects!r} must be true or false (or left out: "
                     "detect when a detector is installed)")
    if backoff is not None and max_backoff is not None and max_backoff < backoff:
        problems.add("watch.max_backoff_s", f"{max_backoff} is less than backoff_s ({backoff})")
    if problems.items:
        raise ConfigError(source, problems.items)
    return WatchConfig(sources=tuple(s for s in parsed_sources if s is not None),
                       routes=tuple(r for r in parsed_routes if r is not None),
                       backoff_s=float(backoff or 0.0), max_backoff_s=float(max_backoff or 0.0),
                       max_attempts=int(max_attempts or 1), detect_objects=detect_objects)


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Seconds from a number of seconds or a string such as ``"90s"``, ``"15m"``, ``"6h"``, ``"1d"``;
    zero only with ``allow_zero``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; give seconds or a string such as \"15m\", \"6h\"")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{value!r} must be {'0 seconds or more' if allow_zero else 'more than 0 seconds'}")
    return seconds


# --- parts -------------------------------------------------------------------------------------------


def _unknown(table: Mapping[str, Any], known: Sequence[str], path: str, problems: _Problems) -> None:
    for key in sorted(set(table) - set(known)):
        problems.add(f"{path}.{key}", f"unknown key; known keys: {', '.join(known)}")


def _list_of_tables(value: object, path: str, problems: _Problems, *,
                    required: bool) -> list[Mapping[str, Any]]:
    if value is None:
        if required:
            problems.add(path, "missing; add at least one [[" + path + "]] entry")
        return []
    if not isinstance(value, list) or not all(isinstance(entry, Mapping) for entry in value):
        problems.add(path, f"must be an array of tables ([[{path}]]), got {type(value).__name__}")
        return []
    if required and not value:
        problems.add(path, "is empty; add at least one entry")
    return list(value)


def _name(table: Mapping[str, Any], path: str, problems: _Problems) -> str | None:
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.add(f"{path}.name", f"{name!r} must be a short id: lowercase letters, digits, '-' or '_'")
        return None
    return name


def _string(table: Mapping[str, Any], key: str, path: str, problems: _Problems, *, required: bool,
            default: str = "") -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            problems.add(f"{path}.{key}", "missing")
            return None
        return default
    if not isinstance(value, str) or not value.strip():
        problems.add(f"{path}.{key}", f"{value!r} must be a non-empty string")
        return None
    return value.strip()


def _strings(table: Mapping[str, Any], key: str, path: str, problems: _Problems) -> tuple[str, ...] | None:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.add(f"{path}.{key}", f"{value!r} must be a list of non-empty strings")
        return None
    return tuple(v.strip() for v in value)


def _number(table: Mapping[str, Any], key: str, path: str, problems: _Problems, *, default: float | None,
            low: float, high: float = math.inf) -> float | None:
    value = table.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        limits = f"from {low:g} to {high:g}" if math.isfinite(high) else f">= {low:g}"
        problems.add(f"{path}.{key}", f"{value!r} must be a number {limits}")
        return None
    return float(value)


def _integer(table: Mapping[str, Any], key: str, path: str, problems: _Problems, *, default: int,
             low: int, high: int) -> int | None:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.add(f"{path}.{key}", f"{value!r} must be a whole number from {low} to {high}")
        return None
    return value


def _sites(table: Mapping[str, Any], path: str, known: set[str] | None,
           problems: _Problems) -> tuple[str, ...] | None:
    site_ids = _strings(table, "sites", path, problems)
    if site_ids is not None and known is not None:
        for site_id in site_ids:
            if site_id not in known:
                problems.add(f"{path}.sites", f"{site_id!r} is not a site of the workspace; list them with "
                             "`sitewatch sites list`")
    return site_ids


def _source(table: Mapping[str, Any], path: str, root: Path, known: set[str] | None,
            problems: _Problems) -> WatchSource | None:
    before = len(problems.items)
    _unknown(table, _SOURCE_KEYS, path, problems)
    name = _name(table, path, problems)
    stac = _string(table, "stac", path, problems, required=True)
    if stac is not None and "://" not in stac:
        local = Path(stac).expanduser()
        stac = str(local if local.is_absolute() else (root / local).resolve())
    interval: float | None = None
    try:
        interval = parse_duration(table.get("interval", "1h"))
    except ValueError as error:
        problems.add(f"{path}.interval", str(error))
    late: float | None = None
    try:
        late = parse_duration(table.get("late", DEFAULT_LATE_S), allow_zero=True)
    except ValueError as error:
        problems.add(f"{path}.late", str(error))
    since: datetime | None = None
    if table.get("since") is not None:
        raw = table["since"]
        try:
            since = parse_utc(raw.isoformat() if isinstance(raw, datetime) else str(raw))
        except (ValueError, TypeError) as error:
            problems.add(f"{path}.since", f"{raw!r} is not a date or time ({error})")
    site_ids = _sites(table, path, known, problems)
    collections = _strings(table, "collections", path, problems)
    max_cloud = _number(table, "max_cloud", path, problems, default=None, low=0.0, high=100.0)
    max_off_nadir = _number(table, "max_off_nadir", path, problems, default=None, low=0.0, high=90.0)
    max_gsd = _number(table, "max_gsd", path, problems, default=None, low=0.0)
    if len(problems.items) > before or name is None or stac is None or interval is None or late is None:
        return None
    return WatchSource(name=name, stac=stac, interval_s=interval, site_ids=site_ids or (), since=since,
                       collections=collections or (), max_cloud=max_cloud, max_off_nadir=max_off_nadir,
                       max_gsd=max_gsd, late_s=late)


def _route(table: Mapping[str, Any], path: str, known: set[str] | None, environ: Mapping[str, str] | None,
           problems: _Problems) -> Route | None:
    before = len(problems.items)
    kind = table.get("kind")
    if kind not in ("webhook", "email"):
        problems.add(f"{path}.kind", f"{kind!r} must be \"webhook\" or \"email\"")
        _unknown(table, (*_ROUTE_KEYS, *_WEBHOOK_KEYS, *_EMAIL_KEYS), path, problems)
        return None
    _unknown(table, (*_ROUTE_KEYS, *(_WEBHOOK_KEYS if kind == "webhook" else _EMAIL_KEYS)), path, problems)
    name = _name(table, path, problems)
    site_ids = _sites(table, path, known, problems)
    severity_text = table.get("min_severity", Severity.LOW.value)
    severity: Severity | None = None
    try:
        severity = Severity(severity_text)
    except ValueError:
        problems.add(f"{path}.min_severity", f"{severity_text!r} must be one of: "
                     f"{', '.join(s.value for s in Severity)}")
    events = _strings(table, "events", path, problems) if "events" in table else EVENTS
    for event in events or ():
        if event not in EVENTS:
            problems.add(f"{path}.events", f"{event!r} is not one of: {', '.join(EVENTS)}")
    timeout = _number(table, "timeout_s", path, problems, default=10.0 if kind == "webhook" else 30.0,
                      low=0.1, high=600.0)
    retries = _integer(table, "retries", path, problems, default=3, low=0, high=20)

    def secret(key: str, *, required: bool) -> str | None:
        variable = _string(table, key, path, problems, required=required)
        if variable and environ is not None and not environ.get(variable):
            problems.add(f"{path}.{key}", f"the environment variable {variable} is not set; export it "
                         "before starting the service (secrets never go in the file)")
        return variable

    if kind == "webhook":
        url = _string(table, "url", path, problems, required=True)
        if url is not None and not url.startswith(("http://", "https://")):
            problems.add(f"{path}.url", f"{url!r} must be an http(s) URL")
        secret_env = secret("secret_env", required=True)
        if (len(problems.items) > before or name is None or url is None or secret_env is None
                or timeout is None or retries is None or severity is None):
            return None
        return WebhookRoute(name=name, url=url, secret_env=secret_env,
                            filter=RouteFilter(site_ids or (), severity, tuple(events or ())),
                            timeout_s=timeout, retries=retries)
    host = _string(table, "smtp_host", path, problems, required=True)
    port = _integer(table, "smtp_port", path, problems, default=587, low=1, high=65535)
    sender = _string(table, "from", path, problems, required=True)
    if sender is not None and not _EMAIL.match(sender):
        problems.add(f"{path}.from", f"{sender!r} is not an e-mail address")
    to = _strings(table, "to", path, problems)
    if to is not None and not to:
        problems.add(f"{path}.to", "is empty; give at least one address")
    for address in to or ():
        if not _EMAIL.match(address):
            problems.add(f"{path}.to", f"{address!r} is not an e-mail address")
    username = _string(table, "username", path, problems, required=False)
    password_env = secret("password_env", required=False)
    if username and not password_env:
        problems.add(f"{path}.password_env", "missing: a username needs the variable holding its password")
    ca_file = _string(table, "ca_file", path, problems, required=False)
    if ca_file and not Path(ca_file).expanduser().is_file():
        problems.add(f"{path}.ca_file", f"{ca_file!r} is not a file; give a PEM file of CA certificates")
    if (len(problems.items) > before or name is None or host is None or sender is None or not to
            or port is None or timeout is None or retries is None or severity is None):
        return None
    return EmailRoute(name=name, smtp_host=host, smtp_port=port, sender=sender, to=to,
                      filter=RouteFilter(site_ids or (), severity, tuple(events or ())),
                      username=username or "", password_env=password_env or "",
                      ca_file=str(Path(ca_file).expanduser()) if ca_file else "", timeout_s=timeout,
                      retries=retries)
