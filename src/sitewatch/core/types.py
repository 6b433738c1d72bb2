"""Frozen, typed domain values, validated when built.

Geometries are shapely objects. Sites, zones and scene footprints are in
WGS 84 longitude/latitude; detections and change regions are in the site grid's
CRS (the site's local UTM zone, see ``Site.utm_epsg``). Timestamps are aware UTC.
A bad field raises :class:`~sitewatch.core.errors.ValidationError` naming it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from sitewatch.core.errors import ValidationError
from sitewatch.core.geometry import is_lonlat, utm_epsg

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
SITE_GSD_RANGE = (0.05, 100.0)
"""Site grid GSD accepted, in metres: finer than 5 cm or coarser than 100 m is a mistake (a grid of
billions of pixels, or a site a few pixels wide)."""


class ZoneKind(StrEnum):
    """What a zone of a site is used for."""

    LAUNCH_PAD = "launch_pad"
    ENGINE_TEST_STAND = "engine_test_stand"
    ASSEMBLY_HALL = "assembly_hall"
    RAIL_YARD = "rail_yard"
    PARKING = "parking"
    SUPPORT = "support"
    OTHER = "other"


class AlertState(StrEnum):
    """Lifecycle of an alert: new → acknowledged → confirmed / benign / false_alarm."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CONFIRMED = "confirmed"
    BENIGN = "benign"
    FALSE_ALARM = "false_alarm"


class Likelihood(StrEnum):
    """Standard estimative language for an analyst's judgement."""

    ALMOST_NO_CHANCE = "almost no chance"
    VERY_UNLIKELY = "very unlikely"
    UNLIKELY = "unlikely"
    ROUGHLY_EVEN_CHANCE = "roughly even chance"
    LIKELY = "likely"
    VERY_LIKELY = "very likely"
    ALMOST_CERTAIN = "almost certain"

    @classmethod
    def from_probability(cls, probability: float) -> Likelihood:
        """The words for ``probability`` on the ICD 203 scale (upper band edges 5, 20, 45, 55, 80, 95 %)."""
        for edge, word in zip(_LIKELIHOOD_EDGES, cls, strict=False):
            if probability < edge:
                return word
        return cls.ALMOST_CERTAIN


_LIKELIHOOD_EDGES = (0.05, 0.20, 0.45, 0.55, 0.80, 0.95)


class Confidence(StrEnum):
    """An analyst's confidence in a judgement."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


# --- validation helpers -------------------------------------------------------------------


def _fail(obj: object, name: str, message: str) -> ValidationError:
    return ValidationError(type(obj).__name__, name, message)


def _check_id(obj: object, name: str, value: object) -> None:
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        raise _fail(
            obj,
            name,
            f"{value!r} is not a valid id; use 1-64 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit",
        )


def _check_text(obj: object, name: str, value: object, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise _fail(obj, name, f"{value!r} must be a non-empty string")


def _check_utc(obj: object, name: str, value: object) -> None:
    if not isinstance(value, datetime):
        raise _fail(obj, name, f"{value!r} is not a datetime")
    offset = value.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise _fail(obj, name, f"{value.isoformat()} must be timezone-aware UTC; use ensure_utc()")


def _check_finite(obj: object, name: str, value: object, *, low: float | None = None,
                  high: float | None = None, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(obj, name, f"{value!r} is not a finite number")
    if positive and value <= 0:
        raise _fail(obj, name, f"{value!r} must be > 0")
    if low is not None and value < low:
        raise _fail(obj, name, f"{value!r} must be >= {low}")
    if high is not None and value > high:
        raise _fail(obj, name, f"{value!r} must be <= {high}")


def _check_optional_finite(obj: object, name: str, value: object, *, low: float | None = None,
                           high: float | None = None) -> None:
    if value is not None:
        _check_finite(obj, name, value, low=low, high=high)


def _check_area(obj: object, name: str, value: object, *, lonlat: bool) -> None:
    if not isinstance(value, Polygon | MultiPolygon):
        raise _fail(obj, name, f"must be a Polygon or MultiPolygon, got {type(value).__name__}")
    if value.is_empty or not value.is_valid or value.area <= 0:
        raise _fail(obj, name, "must be a valid, non-empty polygon with positive area")
    if lonlat and not is_lonlat(value):
        raise _fail(obj, name, f"bounds {value.bounds} are not longitude/latitude (EPSG:4326)")


def _check_geometry(obj: object, name: str, value: object) -> None:
    if not isinstance(value, BaseGeometry) or value.is_empty:
        raise _fail(obj, name, f"must be a non-empty shapely geometry, got {value!r}")


def _check_strings(obj: object, name: str, value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(obj, name, f"{value!r} must be a tuple of non-empty strings")


# --- sites ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Zone:
    """A part of a site whose activity is measured on its own (a pad, a rail yard, ...)."""

    id: str
    """Unique within its site."""
    name: str
    kind: ZoneKind
    geometry: Polygon | MultiPolygon
    """Outline in WGS 84 longitude/latitude."""

    def __post_init__(self) -> None:
        _check_id(self, "id", self.id)
        _check_text(self, "name", self.name)
        if not isinstance(self.kind, ZoneKind):
            try:
                object.__setattr__(self, "kind", ZoneKind(self.kind))
            except ValueError:
                choices = ", ".join(k.value for k in ZoneKind)
                raise _fail(self, "kind", f"{self.kind!r} is not one of: {choices}") from None
        _check_area(self, "geometry", self.geometry, lonlat=True)


@dataclass(frozen=True, slots=True)
class Site:
    """A watched facility with its zones."""

    id: str
    name: str
    country: str
    """ISO 3166-1 alpha-2 or alpha-3 code, or a short name."""
    category: str
    """What the site is: space_launch, missile_production, nuclear, industrial, ..."""
    geometry: Polygon | MultiPolygon
    """Outline in WGS 84 longitude/latitude."""
    zones: tuple[Zone, ...] = ()
    aliases: tuple[str, ...] = ()
    gsd: float = 0.5
    """Ground sample distance of the site grid in metres (chips are resampled to it)."""
    approximate: bool = False
    """True when the outline is an approximate public location, to be refined by users."""
    notes: str = ""
    references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self, "id", self.id)
        _check_text(self, "name", self.name)
        _check_text(self, "country", self.country)
        _check_text(self, "category", self.category)
        _check_area(self, "geometry", self.geometry, lonlat=True)
        _check_strings(self, "aliases", self.aliases)
        _check_strings(self, "references", self.references)
        _check_text(self, "notes", self.notes, allow_empty=True)
        _check_finite(self, "gsd", self.gsd, low=SITE_GSD_RANGE[0], high=SITE_GSD_RANGE[1])
        if not isinstance(self.zones, tuple) or not all(isinstance(z, Zone) for z in self.zones):
            raise _fail(self, "zones", "must be a tuple of Zone")
        ids = [z.id for z in self.zones]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise _fail(self, "zones", f"duplicate zone id(s): {', '.join(duplicates)}")
        for zone in self.zones:
            if not zone.geometry.intersects(self.geometry):
                raise _fail(self, "zones", f"zone {zone.id!r} lies outside the site outline")

    @property
    def utm_epsg(self) -> int:
        """EPSG code of the local UTM zone the site grid uses."""
        centre = self.geometry.centroid
        return utm_epsg(centre.x, centre.y)

    def zone(self, zone_id: str) -> Zone:
        for candidate in self.zones:
            if candidate.id == zone_id:
                return candidate
        known = ", ".join(z.id for z in self.zones) or "none"
        raise KeyError(f"site {self.id!r} has no zone {zone_id!r} (zones: {known})")

    def matches(self, text: str) -> bool:
        """True when ``text`` is this site's id, name or one of its aliases (case-insensitive)."""
        wanted = _normalise_name(text)
        return any(_normalise_name(n) == wanted for n in (self.id, self.name, *self.aliases))


def _normalise_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


# --- imagery ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scene:
    """One image as acquired: where it is, when, by what, under which terms."""

    id: str
    """Content-derived id (checksum prefix), stable across re-ingests of the same file."""
    uri: str
    """Where the image came from (path or URL)."""
    sensor: str
    acquired: datetime
    """Acquisition time, aware UTC."""
    gsd: float
    """Ground sample distance in metres."""
    crs: str
    """CRS of the source image as WKT or an authority string (``EPSG:32652``)."""
    footprint: Polygon | MultiPolygon
    """Footprint in WGS 84 longitude/latitude."""
    bands: tuple[str, ...]
    width: int
    height: int
    checksum: str
    """SHA-256 of the file's bytes; for a STAC asset (never read whole), of its key: collection,
    item id and asset href."""
    cloud_cover: float | None = None
    """Fraction 0..1 where known."""
    off_nadir: float | None = None
    """Degrees where known."""
    license: str | None = None
    attribution: str | None = None
    sun_elevation: float | None = None
    """Degrees above the horizon where known (STAC ``view:sun_elevation``)."""
    sun_azimuth: float | None = None
    """Degrees clockwise from north where known (STAC ``view:sun_azimuth``)."""
    stac_item: str | None = None
    """Id of the STAC item the scene was ingested from (None for files)."""
    stac_collection: str | None = None
    """Its collection, where it has one."""
    stac_href: str | None = None
    """The item's own (self) link, where known."""
    stac_asset: str | None = None
    """Key of the item's asset that was read (``visual``, ``pan``, ...)."""

    def __post_init__(self) -> None:
        _check_text(self, "id", self.id)
        _check_text(self, "uri", self.uri)
        _check_text(self, "sensor", self.sensor)
        _check_utc(self, "acquired", self.acquired)
        _check_finite(self, "gsd", self.gsd, positive=True)
        _check_text(self, "crs", self.crs)
        _check_area(self, "footprint", self.footprint, lonlat=True)
        if not isinstance(self.bands, tuple) or not self.bands:
            raise _fail(self, "bands", f"{self.bands!r} must be a non-empty tuple of band names")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise _fail(self, name, f"{value!r} must be a positive integer")
        if not re.fullmatch(r"[0-9a-f]{64}", self.checksum or ""):
            raise _fail(self, "checksum", f"{self.checksum!r} is not a SHA-256 hex digest")
        _check_optional_finite(self, "cloud_cover", self.cloud_cover, low=0.0, high=1.0)
        _check_optional_finite(self, "off_nadir", self.off_nadir, low=0.0, high=90.0)
        _check_optional_finite(self, "sun_elevation", self.sun_elevation, low=-90.0, high=90.0)
        _check_optional_finite(self, "sun_azimuth", self.sun_azimuth, low=0.0, high=360.0)


@dataclass(frozen=True, slots=True)
class Observation:
    """A scene seen over one site: a chip on the site grid, with its quality."""

    id: str
    site_id: str
    scene_id: str
    acquired: datetime
    chip_path: str
    """Path of the chip COG relative to the workspace root."""
    valid_fraction: float
    """Fraction of the site grid covered by valid (observed, not nodata) pixels."""
    shift: tuple[float, float] = (0.0, 0.0)
    """Co-registration shift (rows, cols) in site-grid pixels applied to the chip."""
    shift_confidence: float | None = None
    """Confidence 0..1 of the co-registration shift, None when not co-registered."""
    chip_sha256: str | None = None
    """SHA-256 (hex) of the chip file as ingest wrote it; None for chips from before checksums."""
    problem: str | None = None
    """Why the monitor could not score this observation (its chip missing or corrupt, or its evidence
    step failing), flagged so the rest of the site is scored; None when nothing is wrong."""

    def __post_init__(self) -> None:
        _check_text(self, "id", self.id)
        _check_id(self, "site_id", self.site_id)
        _check_text(self, "scene_id", self.scene_id)
        _check_utc(self, "acquired", self.acquired)
        _check_text(self, "chip_path", self.chip_path)
        _check_finite(self, "valid_fraction", self.valid_fraction, low=0.0, high=1.0)
        if (
            not isinstance(self.shift, tuple)
            or len(self.shift) != 2
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in self.shift)
        ):
            raise _fail(self, "shift", f"{self.shift!r} must be a (rows, cols) pair of finite numbers")
        _check_optional_finite(self, "shift_confidence", self.shift_confidence, low=0.0, high=1.0)
        if self.chip_sha256 is not None and not _SHA256.match(self.chip_sha256):
            raise _fail(self, "chip_sha256", f"{self.chip_sha256!r} is not 64 lower-case hex digits")
        if self.problem is not None:
            _check_text(self, "problem", self.problem)


# --- analytics outputs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detection:
    """An object found in an observation."""

    observation_id: str
    class_name: str
    score: float
    geometry: BaseGeometry
    """Outline in the site grid's CRS (metres)."""
    zone_id: str | None = None
    detector: str = "unknown"

    def __post_init__(self) -> None:
        _check_text(self, "observation_id", self.observation_id)
        _check_text(self, "class_name", self.class_name)
        _check_finite(self, "score", self.score, low=0.0, high=1.0)
        _check_geometry(self, "geometry", self.geometry)
        if self.zone_id is not None:
            _check_id(self, "zone_id", self.zone_id)
        _check_text(self, "detector", self.detector)


@dataclass(frozen=True, slots=True)
class ChangeRegion:
    """A connected region that changed between a reference and an observation."""

    observation_id: str
    reference_observation_id: str
    geometry: Polygon | MultiPolygon
    """Outline in the site grid's CRS (metres)."""
    area_m2: float
    mean_probability: float
    zone_id: str | None = None
    detector: str = "unknown"

    def __post_init__(self) -> None:
        _check_text(self, "observation_id", self.observation_id)
        _check_text(self, "reference_observation_id", self.reference_observation_id)
        _check_area(self, "geometry", self.geometry, lonlat=False)
        _check_finite(self, "area_m2", self.area_m2, positive=True)
        _check_finite(self, "mean_probability", self.mean_probability, low=0.0, high=1.0)
        if self.zone_id is not None:
            _check_id(self, "zone_id", self.zone_id)
        _check_text(self, "detector", self.detector)


@dataclass(frozen=True, slots=True)
class IndicatorValue:
    """One activity indicator of one zone in one observation.

    ``value is None`` means "not observed" (cloud, no coverage), which is not zero.
    """

    observation_id: str
    site_id: str
    zone_id: str
    name: str
    value: float | None
    quality: float
    """Weight 0..1 from visible fraction, GSD and haze; 0 when not observed."""
    acquired: datetime

    def __post_init__(self) -> None:
        _check_text(self, "observation_id", self.observation_id)
        _check_id(self, "site_id", self.site_id)
        _check_id(self, "zone_id", self.zone_id)
        _check_text(self, "name", self.name)
        _check_optional_finite(self, "value", self.value)
        _check_finite(self, "quality", self.quality, low=0.0, high=1.0)
        _check_utc(self, "acquired", self.acquired)

    @property
    def observed(self) -> bool:
        return self.value is not None


NONE_HYPOTHESIS = "none"
"""The pattern id of the hypothesis "none of these": unusual in a way no activity pattern describes."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """One candidate explanation of an alert: an activity pattern (or "none of these") scored by how
    likely the observed indicators are under it against the site's routine."""

    pattern: str
    """Id of the activity pattern, or ``none`` for "none of these"."""
    label: str
    """Words for the analyst, e.g. "production surge"."""
    benign: bool
    """Whether the pattern is routine activity an analyst would not escalate."""
    likelihood_ratio: float
    """Likelihood of the observation under the pattern over its likelihood under the site's routine."""
    probability: float
    """Share of belief among the alert's hypotheses (pattern priors times likelihood ratios)."""

    def __post_init__(self) -> None:
        _check_id(self, "pattern", self.pattern)
        _check_text(self, "label", self.label)
        if not isinstance(self.benign, bool):
            raise _fail(self, "benign", f"{self.benign!r} must be true or false")
        _check_finite(self, "likelihood_ratio", self.likelihood_ratio, low=0.0)
        _check_finite(self, "probability", self.probability, low=0.0, high=1.0)

    @property
    def likelihood(self) -> Likelihood:
        """The estimative words for :attr:`probability`."""
        return Likelihood.from_probability(self.probability)

    def describe(self) -> str:
        """E.g. "likely production surge (LR ≈ 12)"."""
        return f"{self.likelihood.value} {self.label} (LR ≈ {format_ratio(self.likelihood_ratio)})"

    def as_dict(self) -> dict[str, object]:
        """Plain JSON values, the words and the sentence included (the CLI's and the API's shape)."""
        return {"pattern": self.pattern, "label": self.label, "benign": self.benign,
                "likelihood_ratio": self.likelihood_ratio, "probability": self.probability,
                "likelihood": self.likelihood.value, "text": self.describe()}


def format_ratio(ratio: float) -> str:
    """A likelihood ratio to two significant figures, powers of ten beyond 10⁴ or below 10⁻³."""
    if ratio == 0.0:
        return "0"
    if ratio >= 1e4 or ratio < 1e-3:
        return f"10^{math.log10(ratio):.0f}"
    return f"{ratio:.2g}" if ratio < 100 else f"{float(f'{ratio:.2g}'):.0f}"


@dataclass(frozen=True, slots=True)
class Alert:
    """Unusual activity at a site, with why it was raised."""

    id: str
    site_id: str
    observation_id: str
    acquired: datetime
    """Acquisition time of the observation that raised it."""
    created: datetime
    indicator: str
    value: float
    baseline: float
    """The baseline's typical value for the indicator."""
    score: float
    """Nonconformity score (larger is more unusual)."""
    explanation: str
    """A sentence an analyst reads."""
    zone_id: str | None = None
    p_value: float | None = None
    state: AlertState = AlertState.NEW
    hypotheses: tuple[Hypothesis, ...] = ()
    """Candidate explanations, most probable first (empty for slow-build alerts and older alerts)."""

    def __post_init__(self) -> None:
        _check_text(self, "id", self.id)
        _check_id(self, "site_id", self.site_id)
        _check_text(self, "observation_id", self.observation_id)
        _check_utc(self, "acquired", self.acquired)
        _check_utc(self, "created", self.created)
        _check_text(self, "indicator", self.indicator)
        _check_finite(self, "value", self.value)
        _check_finite(self, "baseline", self.baseline)
        _check_finite(self, "score", self.score)
        _check_text(self, "explanation", self.explanation)
        if self.zone_id is not None:
            _check_id(self, "zone_id", self.zone_id)
        _check_optional_finite(self, "p_value", self.p_value, low=0.0, high=1.0)
        if not isinstance(self.state, AlertState):
            try:
                object.__setattr__(self, "state", AlertState(self.state))
            except ValueError:
                choices = ", ".join(s.value for s in AlertState)
                raise _fail(self, "state", f"{self.state!r} is not one of: {choices}") from None
        if not isinstance(self.hypotheses, tuple) or not all(
                isinstance(h, Hypothesis) for h in self.hypotheses):
            raise _fail(self, "hypotheses", "must be a tuple of Hypothesis")

    @property
    def leading_hypothesis(self) -> Hypothesis | None:
        """The most probable explanation, if any were scored."""
        return self.hypotheses[0] if self.hypotheses else None


@dataclass(frozen=True, slots=True)
class Assessment:
    """One analyst's judgement on an alert; analysts may disagree, all are kept."""

    alert_id: str
    author: str
    created: datetime
    judgement: Likelihood
    confidence: Confidence
    text: str = ""
    hypotheses: tuple[str, ...] = field(default_factory=tuple)
    """Hypotheses the analyst considered, in their own words."""
    pick: str = ""
    """The alert's hypothesis (a pattern id, or ``none``) the analyst judges best; empty: no pick.
    Each analyst's pick is shown; confirmed and benign resolutions feed the site's priors with them."""

    def __post_init__(self) -> None:
        _check_text(self, "alert_id", self.alert_id)
        _check_text(self, "author", self.author)
        _check_utc(self, "created", self.created)
        for name, enum in (("judgement", Likelihood), ("confidence", Confidence)):
            value = getattr(self, name)
            if not isinstance(value, enum):
                try:
                    object.__setattr__(self, name, enum(value))
                except ValueError:
                    choices = ", ".join(v.value for v in enum)
                    raise _fail(self, name, f"{value!r} is not one of: {choices}") from None
        _check_text(self, "text", self.text, allow_empty=True)
        _check_strings(self, "hypotheses", self.hypotheses)
        _check_text(self, "pick", self.pick, allow_empty=True)


def latest_picks(assessments: Sequence[Assessment]) -> dict[str, str]:
    """Each analyst's latest hypothesis pick among ``assessments`` (oldest first), by author.

    Analysts may disagree; all their picks are kept and shown, none outvotes another."""
    picks: dict[str, str] = {}
    for assessment in assessments:
        if assessment.pick:
            picks[assessment.author] = assessment.pick
    return dict(sorted(picks.items()))
