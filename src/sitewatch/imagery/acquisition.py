"""When and by what an image was acquired: from its tags, a STAC item beside it, or its file name.

Sources are tried from the most to the least trustworthy: acquisition tags written by the provider
(GDAL's ``IMAGERY`` domain, DigitalGlobe/Maxar IMD, Landsat MTL-style keys), then a STAC item
beside the file, then a date in the file name, and only then ``TIFFTAG_DATETIME`` (which many tools
set to the *processing* time). Every time returned is aware UTC.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sitewatch.core.timeutil import ensure_utc

log = logging.getLogger(__name__)

# Provider keys holding the acquisition time, most specific first (upper-cased tag names).
_TIME_KEYS = (
    "ACQUISITIONDATETIME",
    "IMAGE_1.FIRSTLINETIME",
    "IMAGE.FIRSTLINETIME",
    "ACQUISITION_DATETIME",
    "DATE_TIME",
    "DATE_ACQUIRED",
    "ACQUISITION_DATE",
    "ACQUISITIONDATE",
    "SENSING_TIME",
    "PRODUCT_START_TIME",
)
_CENTRE_TIME_KEYS = ("SCENE_CENTER_TIME", "SCENE_CENTRE_TIME", "ACQUISITION_TIME")

_EARLIEST_YEAR = 1960  # before any civil Earth-observation satellite
_LATEST_YEAR = 2100


@dataclass(frozen=True, slots=True)
class StacSidecar:
    """What a STAC item says about its image, beside it or from a catalog (None where it does not say)."""

    path: Path | str
    """The item's file or URL (its id when it has neither)."""
    acquired: datetime | None
    cloud_cover: float | None
    """Fraction 0..1 (STAC ``eo:cloud_cover`` is a percentage)."""
    off_nadir: float | None
    """Degrees (``view:off_nadir``)."""
    license: str | None
    attribution: str | None
    """Provider names, comma-separated."""
    sensor: str | None
    """``platform`` and ``instruments`` joined, e.g. ``worldview-2/wv110``."""
    gsd: float | None = None
    """Metres (``gsd``)."""
    sun_elevation: float | None = None
    """Degrees (``view:sun_elevation``)."""
    sun_azimuth: float | None = None
    """Degrees (``view:sun_azimuth``)."""


def parse_timestamp(text: str) -> datetime | None:
    """Parse a provider timestamp (ISO 8601, TIFF ``YYYY:MM:DD HH:MM:SS``, ``YYYYMMDD``) into UTC.

    Returns None when ``text`` is not a timestamp rather than raising: tags are free text.
    """
    cleaned = text.strip().strip('"').strip()
    if not cleaned:
        return None
    tiff = re.fullmatch(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})", cleaned)
    if tiff:
        cleaned = "{}-{}-{}T{}:{}:{}".format(*tiff.groups())
    if re.fullmatch(r"\d{8}", cleaned):
        cleaned = f"{cleaned[:4]}-{cleaned[4:6]}-{cleaned[6:]}"
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    # Keep microseconds only: providers write 7 (Landsat) or 9 fractional digits.
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", cleaned)
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if not _EARLIEST_YEAR <= value.year <= _LATEST_YEAR:
        return None
    return ensure_utc(value)


def time_from_tags(tags: Mapping[str, str]) -> datetime | None:
    """Acquisition time from provider tags (keys compared case-insensitively), or None.

    ``TIFFTAG_DATETIME`` is not used here: see :func:`acquisition_time` for its place.
    """
    upper = {key.upper(): value for key, value in tags.items()}
    for key in _TIME_KEYS:
        if key not in upper:
            continue
        found = parse_timestamp(upper[key])
        if found is None:
            continue
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", upper[key].strip().strip('"')):
            found = _with_centre_time(found, upper)
        return found
    return None


def _with_centre_time(day: datetime, upper: Mapping[str, str]) -> datetime:
    for key in _CENTRE_TIME_KEYS:
        if key in upper:
            clock = upper[key].strip().strip('"').strip()
            moment = parse_timestamp(f"{day.date().isoformat()}T{clock}")
            if moment is not None:
                return moment
    return day


# File name patterns, most precise first. Digits must not run on into other digits, so a
# product counter such as ``_0123456789_`` is never read as a date.
_NAME_PATTERNS = (
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})[T_ ](\d{2})[:\-]?(\d{2})[:\-]?(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"),
)
# Landsat scene ids (LT51200382000124BJC00: sensor, path 120, row 038, year 2000, day 124) and
# MODIS-style ``A2014123``: the only places a 7-digit year + day-of-year is unambiguous.
_LANDSAT_SCENE_ID = re.compile(r"(?<![A-Za-z0-9])L[A-Z]\d\d{6}(\d{4})(\d{3})[A-Z]{3}\d{2}(?![0-9])")
_MODIS_DAY = re.compile(r"(?<![A-Za-z0-9])A(\d{4})(\d{3})(?!\d)")


def time_from_filename(name: str) -> datetime | None:
    """A date (and time where given) written in a file name, or None when there is none.

    Accepts ``YYYYMMDDTHHMMSS``, ``YYYY-MM-DDTHH:MM:SS``, ``YYYY-MM-DD``, ``YYYYMMDD`` and, only in a
    Landsat scene id or a MODIS ``AYYYYDDD`` token, year + day of year. The first match of the most
    precise pattern wins (Sentinel-2 names carry the sensing time first, the processing time later).
    """
    for pattern in _NAME_PATTERNS:
        for match in pattern.finditer(name):
            parts = [int(g) for g in match.groups()]
            found = _build(*parts)
            if found is not None:
                return found
    for pattern in (_LANDSAT_SCENE_ID, _MODIS_DAY):
        day_match = pattern.search(name)
        if day_match:
            year, day_of_year = int(day_match.group(1)), int(day_match.group(2))
            found = _from_day_of_year(year, day_of_year)
            if found is not None:
                return found
    return None


def _build(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0) -> datetime | None:
    if not _EARLIEST_YEAR <= year <= _LATEST_YEAR:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def _from_day_of_year(year: int, day_of_year: int) -> datetime | None:
    if not _EARLIEST_YEAR <= year <= _LATEST_YEAR:
        return None
    days_in_year = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    if not 1 <= day_of_year <= days_in_year:
        return None
    first = datetime(year, 1, 1, tzinfo=UTC)
    return first + timedelta(days=day_of_year - 1)


_LANDSAT_SENSORS = {"T": "tm", "E": "etm+", "M": "mss", "C": "oli-tirs", "O": "oli", "I": "oli"}


def sensor_from_filename(name: str) -> str | None:
    """The sensor a Landsat scene id names (``LT5...`` → ``landsat-5/tm``), else None."""
    match = _LANDSAT_SCENE_ID.search(name)
    if match is None:
        return None
    letter, mission = match.group(0)[1], match.group(0)[2]
    instrument = _LANDSAT_SENSORS.get(letter)
    return f"landsat-{mission}/{instrument}" if instrument else f"landsat-{mission}"


def find_stac_item(image: Path) -> StacSidecar | None:
    """The STAC item beside ``image`` (``<stem>.json``, ``<stem>.stac.json`` or ``<name>.stac.json``).

    A file there that is not a STAC item (other JSON, broken JSON) is ignored with a log message:
    sidecars are optional hints, not inputs that must be valid.
    """
    candidates = [
        image.with_name(f"{image.name}.stac.json"),
        image.with_name(f"{image.stem}.stac.json"),
        image.with_name(f"{image.stem}.json"),
        image.with_name(f"{image.name}.json"),
    ]
    for candidate in dict.fromkeys(candidates):
        if candidate == image or not candidate.is_file():
            continue
        sidecar = _read_stac_item(candidate)
        if sidecar is not None:
            return sidecar
    return None


def _read_stac_item(path: Path) -> StacSidecar | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        log.info("ignoring %s beside the image: not readable JSON (%s)", path, error)
        return None
    if not isinstance(document, dict) or document.get("type") != "Feature":
        log.info("ignoring %s beside the image: not a STAC item (no type=Feature)", path)
        return None
    return item_metadata(document, path)


def item_metadata(document: Mapping[str, object], source: Path | str,
                  defaults: Mapping[str, object] | None = None) -> StacSidecar | None:
    """What the STAC item ``document`` says (None when it has no ``properties`` object).

    ``defaults`` are the collection's fields (``license``, ``providers``) used where the item does not
    say. The one reader of STAC item fields, for sidecars and for catalogs alike.
    """
    properties = document.get("properties")
    if not isinstance(properties, dict):
        return None
    fallback = defaults or {}
    acquired = None
    for key in ("datetime", "start_datetime"):
        value = properties.get(key)
        if isinstance(value, str):
            acquired = parse_timestamp(value)
            if acquired is not None:
                break
    return StacSidecar(
        path=source,
        acquired=acquired,
        cloud_cover=_number(properties.get("eo:cloud_cover"), scale=0.01, high=1.0),
        off_nadir=_number(properties.get("view:off_nadir"), high=90.0),
        license=_text(properties.get("license") or document.get("license") or fallback.get("license")),
        attribution=(_providers(properties.get("providers")) or _text(properties.get("attribution"))
                     or _providers(fallback.get("providers"))),
        sensor=_sensor(properties.get("platform"), properties.get("instruments")),
        gsd=_number(properties.get("gsd"), high=math.inf),
        sun_elevation=_number(properties.get("view:sun_elevation"), low=-90.0, high=90.0),
        sun_azimuth=_number(properties.get("view:sun_azimuth"), high=360.0),
    )


def _number(value: object, *, scale: float = 1.0, low: float = 0.0, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    scaled = float(value) * scale
    return scaled if math.isfinite(scaled) and low <= scaled <= high else None


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _providers(value: object) -> str | None:
    if not isinstance(value, list):
        return None
    names = [p["name"].strip() for p in value if isinstance(p, dict) and isinstance(p.get("name"), str)]
    names = [n for n in names if n]
    return ", ".join(names) or None


def _sensor(platform: object, instruments: object) -> str | None:
    parts = []
    if isinstance(platform, str) and platform.strip():
        parts.append(platform.strip())
    if isinstance(instruments, list):
        parts.extend(i.strip() for i in instruments if isinstance(i, str) and i.strip())
    return "/".join(parts) or None


def split_sensor(sensor: str) -> tuple[str | None, tuple[str, ...]]:
    """(platform, instruments) of a sensor name built from a STAC item's (``worldview-3/wv110``), the
    inverse of how ingest joins them; a name without ``/`` is a platform alone; ``unknown`` is nothing."""
    parts = [part for part in sensor.split("/") if part]
    if not parts or sensor == "unknown":
        return None, ()
    return parts[0], tuple(parts[1:])


def acquisition_time(image: Path, tags: Mapping[str, str], stac: StacSidecar | None) -> datetime | None:
    """The best available acquisition time of ``image``, or None when nothing says it."""
    from_tags = time_from_tags(tags)
    if from_tags is not None:
        return from_tags
    if stac is not None and stac.acquired is not None:
        return stac.acquired
    from_name = time_from_filename(image.name)
    if from_name is not None:
        return from_name
    upper = {key.upper(): value for key, value in tags.items()}
    if "TIFFTAG_DATETIME" in upper:
        return parse_timestamp(upper["TIFFTAG_DATETIME"])
    return None
