"""Workspace settings: one typed object read from ``sitewatch.toml``, each field overridable by env.

Precedence (last wins): the defaults below, the workspace's ``sitewatch.toml``, then
``SITEWATCH_<FIELD>`` environment variables (``SITEWATCH_FALSE_ALARM_RATE=0.001``), so a
one-off run can change a setting without editing the file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from sitewatch.core.errors import ValidationError
from sitewatch.core.limits import DEFAULT_SITE_GRID_SIDE, MAX_BANDS, MAX_GRID_SIDE, MAX_PIXELS_PER_BAND
from sitewatch.monitor.policy import BenignPolicy

SETTINGS_FILE = "sitewatch.toml"
ENV_PREFIX = "SITEWATCH_"
TABLES = ("watch",)
"""Tables of ``sitewatch.toml`` that their own modules read and validate (``[watch]``:
:mod:`sitewatch.pipeline.watch_config`); the settings here are the file's top-level keys."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings of one workspace."""

    name: str = "sitewatch"
    """Human name of the workspace, shown in reports and the dashboard."""
    false_alarm_rate: float = 0.01
    """Chance, per observation of a quiet site, of a false alert the user accepts (alpha)."""
    change_threshold: float = 0.2
    """Per-zone change score above which the first monitoring pass raises an alert."""
    min_valid_fraction: float = 0.3
    """Observations with less valid (cloud-free, covered) area than this are not scored."""
    database_url: str = ""
    """SQLAlchemy URL of the database; empty means the SQLite file ``sitewatch.db`` in the workspace.
    ``postgresql+psycopg://USER@HOST:PORT/DATABASE`` puts it on a PostgreSQL server with PostGIS
    (``sitewatch init --store URL`` writes it; docs/deploy.md)."""
    password_hash_cost: int = 17
    """log2 of scrypt's N for new password hashes (r=8, p=1): 17 is the OWASP minimum; lower only in tests."""
    token_lifetime_days: int = 90
    """Days an API token stays valid when its issuer does not choose; after that it is refused."""
    trusted_proxies: str = ""
    """Comma-separated addresses (or networks, or ``*``) of reverse proxies whose X-Forwarded-For and
    X-Forwarded-Proto headers the web server believes; empty believes none."""
    max_image_bands: int = MAX_BANDS
    """Most bands an image header may declare; ingest refuses more before reading a pixel."""
    max_image_pixels: int = MAX_PIXELS_PER_BAND
    """Most pixels per band (width x height) an image header may declare."""
    benign_policy: str = "rank"
    """What happens to an alert whose best hypothesis is benign (a routine gathering, delivery, holiday):
    ``rank`` lists it below the rest; ``hold`` also holds it back from the monitor's new alerts and the
    default alert list (``alerts list --held`` shows it). Either way it is stored with its p-value."""
    benign_policy_sites: str = ""
    """Per-site exceptions to benign_policy, e.g. ``"sanumdong=hold, yongbyon=rank"``."""
    max_site_grid_side: int = DEFAULT_SITE_GRID_SIDE
    """Largest site grid side in pixels (outline extent / GSD) that `sites validate` and `sites add`
    accept (at most 50,000)."""
    dashboard_url: str = ""
    """Base URL where analysts reach the dashboard (``https://sitewatch.example.org``): notifications
    link to ``<dashboard_url>/alerts/<id>``; empty leaves the link out."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise _bad("name", f"{self.name!r} must be a non-empty string")
        _check_fraction("false_alarm_rate", self.false_alarm_rate, open_interval=True)
        _check_number("change_threshold", self.change_threshold)
        if self.change_threshold < 0:
            raise _bad("change_threshold", f"{self.change_threshold!r} must be >= 0")
        _check_fraction("min_valid_fraction", self.min_valid_fraction, open_interval=False)
        if not isinstance(self.database_url, str):
            raise _bad("database_url", f"{self.database_url!r} must be a string (a SQLAlchemy URL)")
        _check_integer("password_hash_cost", self.password_hash_cost, low=10, high=20)
        _check_integer("token_lifetime_days", self.token_lifetime_days, low=1, high=3650)
        _check_proxies(self.trusted_proxies)
        if not isinstance(self.dashboard_url, str) or (
                self.dashboard_url and not self.dashboard_url.startswith(("http://", "https://"))):
            raise _bad("dashboard_url", f"{self.dashboard_url!r} must be empty or an http(s) URL such as "
                       "\"https://sitewatch.example.org\"")
        _check_policies(self.benign_policy, self.benign_policy_sites)
        for name, high in (("max_image_bands", 1_000_000), ("max_image_pixels", 2**40),
                           ("max_site_grid_side", MAX_GRID_SIDE)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise _bad(name, f"{value!r} must be a whole number from 1 to {high}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str) -> Settings:
        """Settings from ``values`` (a parsed TOML table); unknown keys are errors naming ``source``."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise _bad(unknown[0], f"unknown setting in {source}; known settings: {', '.join(known)}")
        converted: dict[str, Any] = {
            key: _convert(key, known[key].type, value, source) for key, value in values.items()
        }
        return cls(**converted)

    @classmethod
    def load(cls, root: Path, *, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings of the workspace at ``root``: defaults, then ``sitewatch.toml``, then env overrides."""
        path = Path(root) / SETTINGS_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except OSError as error:
            raise _bad("file", f"{path} cannot be read ({error.strerror}); check its permissions") from None
        try:
            values: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise _bad("file", f"{path} is not valid TOML: {error}; fix or delete the file") from None
        for table in TABLES:
            values.pop(table, None)
        environment = os.environ if environ is None else environ
        for name in (f.name for f in fields(cls)):
            variable = ENV_PREFIX + name.upper()
            if variable in environment:
                values[name] = environment[variable]
        return cls.from_mapping(values, source=f"{path} or {ENV_PREFIX}* environment variables")

    def to_toml(self) -> str:
        """The settings as a commented ``sitewatch.toml``."""
        lines = ["# sitewatch workspace settings; SITEWATCH_<NAME> in the environment overrides each one."]
        for field in fields(self):
            value = getattr(self, field.name)
            rendered = _toml_value(value)
            lines.append(f"{field.name} = {rendered}")
        return "\n".join(lines) + "\n"

    def benign_policy_for(self, site_id: str) -> BenignPolicy:
        """The site's policy for alerts led by a benign hypothesis (its exception, else the default)."""
        return _site_policies(self.benign_policy_sites).get(site_id, BenignPolicy(self.benign_policy))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def alert_url(base_url: str, alert_id: str) -> str:
    """The alert's dashboard page under the server at ``base_url`` (exports and notifications link it)."""
    return f"{base_url.rstrip('/')}/alerts/{quote(alert_id, safe='')}"


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError("Settings", field, message)


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(name, f"{value!r} is not a finite number")


def _check_integer(name: str, value: object, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(name, f"{value!r} must be a whole number from {low} to {high}")


def _check_proxies(value: object) -> None:
    if not isinstance(value, str):
        raise _bad("trusted_proxies", f"{value!r} must be a string like \"127.0.0.1, 10.0.0.0/8\"")
    for entry in filter(None, (part.strip() for part in value.split(","))):
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise _bad(
                "trusted_proxies", f"{entry!r} is not an IP address, a network (10.0.0.0/8) or '*'"
            ) from None


def _site_policies(text: str) -> dict[str, BenignPolicy]:
    policies = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        site_id, _, policy = entry.partition("=")
        try:
            policies[site_id.strip()] = BenignPolicy(policy.strip())
        except ValueError:
            raise _bad("benign_policy_sites", f"{entry!r} must be SITE=rank or SITE=hold, e.g. "
                       "\"sanumdong=hold, yongbyon=rank\"") from None
    return policies


def _check_policies(default: object, sites: object) -> None:
    choices = ", ".join(p.value for p in BenignPolicy)
    if not isinstance(default, str) or default not in {p.value for p in BenignPolicy}:
        raise _bad("benign_policy", f"{default!r} must be one of: {choices}")
    if not isinstance(sites, str):
        raise _bad("benign_policy_sites", f"{sites!r} must be a string like \"sanumdong=hold\"")
    _site_policies(sites)


def _check_fraction(name: str, value: object, *, open_interval: bool) -> None:
    _check_number(name, value)
    value = cast(float, value)
    if open_interval and not 0 < value < 1:
        raise _bad(name, f"{value!r} must be between 0 and 1 (exclusive), e.g. 0.01")
    if not open_interval and not 0 <= value <= 1:
        raise _bad(name, f"{value!r} must be between 0 and 1")


def _convert(name: str, annotation: object, value: object, source: str) -> object:
    """Turn env strings (and TOML ints for float fields) into the field's type."""
    if annotation in (float, "float"):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _bad(name, f"{value!r} from {source} is not a number") from None
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    if annotation in (int, "int") and isinstance(value, str):
        try:
            return int(value.replace("_", ""))
        except ValueError:
            raise _bad(name, f"{value!r} from {source} is not a whole number") from None
    return value


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return repr(value)
