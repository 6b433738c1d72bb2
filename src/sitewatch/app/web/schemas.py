"""Request bodies and response shapes of the JSON API, for validation and the OpenAPI schema.

Responses are built as plain dicts (``serialize``) and these models describe them;
request bodies are validated by them, so bad input answers 400 in the one error shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sitewatch.core.types import AlertState, Confidence, Likelihood

GeoJsonGeometry = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ZoneOut(BaseModel):
    id: str
    name: str
    kind: str
    geometry: GeoJsonGeometry


class SiteOut(BaseModel):
    id: str
    name: str
    country: str
    category: str
    aliases: list[str]
    gsd: float
    approximate: bool
    notes: str
    references: list[str]
    utm_epsg: int
    centre: list[float] = Field(description="[longitude, latitude] of the outline's centroid")
    geometry: GeoJsonGeometry
    zones: list[ZoneOut]
    alert_state: str | None = Field(
        description="most pressing state of the site's alerts, None without alerts"
    )
    open_alerts: int = Field(description="alerts still new or acknowledged")


class SceneOut(BaseModel):
    id: str
    uri: str
    sensor: str
    acquired: str
    gsd: float
    crs: str
    footprint: GeoJsonGeometry
    bands: list[str]
    width: int
    height: int
    checksum: str
    cloud_cover: float | None
    off_nadir: float | None
    license: str | None
    attribution: str | None
    platform: str | None = Field(description="the STAC item's platform (first part of sensor)")
    instruments: list[str] = Field(description="the STAC item's instruments (the rest of sensor)")
    sun_elevation: float | None = Field(description="degrees above the horizon (view:sun_elevation)")
    sun_azimuth: float | None = Field(description="degrees clockwise from north (view:sun_azimuth)")
    stac_item: str | None = Field(description="id of the STAC item the scene was read from")
    stac_collection: str | None = Field(description="its collection")
    stac_href: str | None = Field(description="the item's self link")
    stac_asset: str | None = Field(description="the key of the asset read")


class ObservationOut(BaseModel):
    id: str
    site_id: str
    scene_id: str
    acquired: str
    valid_fraction: float
    shift: list[float]
    shift_confidence: float | None
    problem: str | None = Field(default=None, description="Why the monitor could not score this observation "
                                "(its chip missing or corrupt, or its evidence step failing); null if scored")
    tiles: str = Field(description="XYZ tile URL template (Web Mercator) of the chip")
    preview: str = Field(description="URL of a PNG of the whole chip on its site grid")


class DetectionOut(BaseModel):
    observation_id: str
    class_name: str
    score: float
    zone_id: str | None
    detector: str
    geometry: GeoJsonGeometry


class ChangeRegionOut(BaseModel):
    observation_id: str
    reference_observation_id: str
    area_m2: float
    mean_probability: float
    zone_id: str | None
    detector: str
    geometry: GeoJsonGeometry


class IndicatorOut(BaseModel):
    observation_id: str
    site_id: str
    zone_id: str
    name: str
    value: float | None = Field(description="None means not observed, which is not zero")
    quality: float
    acquired: str


class HypothesisOut(BaseModel):
    pattern: str = Field(description="activity pattern id, or 'none' for none of these")
    label: str
    benign: bool
    likelihood_ratio: float = Field(
        description="likelihood under the pattern over that under the site's routine")
    probability: float = Field(description="share of belief among the alert's hypotheses")
    likelihood: Likelihood
    text: str = Field(description="e.g. 'likely production surge (LR ≈ 12)'")


class AlertOut(BaseModel):
    id: str
    site_id: str
    observation_id: str
    acquired: str
    created: str
    indicator: str
    zone_id: str | None
    value: float
    baseline: float
    score: float
    p_value: float | None
    explanation: str
    state: AlertState
    hypotheses: list[HypothesisOut] = Field(description="ranked explanations, most probable first")
    top_priority: bool = Field(description="not led by a benign hypothesis that the readings favour over "
                                           "routine: the policy's rule, which the queue ranks by")


class AssessmentOut(BaseModel):
    alert_id: str
    author: str
    created: str
    judgement: Likelihood
    confidence: Confidence
    text: str
    hypotheses: list[str]
    pick: str = Field(description="the hypothesis this analyst picked; empty for none")


class AlertEventOut(BaseModel):
    state: str
    who: str
    when: str
    comment: str


class Page(BaseModel):
    """One page of a filtered listing; ``next`` is the URL of the following page, None at the end."""

    total: int
    limit: int
    offset: int
    next: str | None


class SitePage(Page):
    items: list[SiteOut]


class ScenePage(Page):
    items: list[SceneOut]


class ObservationPage(Page):
    items: list[ObservationOut]


class DetectionPage(Page):
    items: list[DetectionOut]


class ChangeRegionPage(Page):
    items: list[ChangeRegionOut]


class IndicatorPage(Page):
    items: list[IndicatorOut]


class AlertPage(Page):
    items: list[AlertOut]


class TrackRecord(BaseModel):
    """How earlier alerts at a site were judged: the context for a new one."""

    total: int
    by_state: dict[str, int]
    summary: str


class AlertDetail(BaseModel):
    alert: AlertOut
    site: SiteOut
    observation: ObservationOut
    scene: SceneOut = Field(description="provenance of the image that raised the alert")
    reference: ObservationOut | None = Field(description="the observation before, for the before/after view")
    history: list[AlertEventOut]
    assessments: list[AssessmentOut]
    picks: dict[str, str] = Field(description="each analyst's latest hypothesis pick, by author: analysts "
                                  "may disagree, none outvotes another")
    none_fits: bool = Field(False, description="no hypothesis fits the readings better than the site's "
                            "routine (every LR ≤ 1): their order is the priors' alone")
    track_record: TrackRecord


class SeriesOut(BaseModel):
    """One indicator of one zone over time, as parallel columns (oldest first)."""

    zone_id: str
    name: str
    zone_name: str = Field(description="the zone's name in the catalog")
    label: str = Field(description="the indicator in words, e.g. 'changed area'")
    observation: list[int] = Field(description="index of each value's observation in Timeline.observations")
    value: list[float | None] = Field(description="None means not observed, which is not zero")
    quality: list[float]
    baseline: dict[str, float] | None = Field(
        description="robust centre and band (median ± 3 scaled MAD) of the observed values, None if too few"
    )


class SpikeOut(BaseModel):
    """A value far outside its band that raised no alert, with the reason the stored data gives."""

    observation_id: str
    observation: int = Field(description="index of the value's observation in Timeline.observations")
    acquired: str
    acquired_text: str
    zone_id: str
    zone_name: str
    indicator: str
    indicator_name: str
    value: float
    value_text: str
    usual_text: str
    reason: str = Field(description='one line, e.g. "not alerted: poor visibility (quality 0.2, ...)"')


class Timeline(BaseModel):
    """Everything the site page plots: observations, indicator series with baseline bands, alerts."""

    site: SiteOut
    observations: list[ObservationOut]
    series: list[SeriesOut]
    unalerted: list[SpikeOut] = Field(
        description="values beyond twice their band's reach that raised no alert, each with its reason"
    )
    alerts: list[AlertOut]
    track_record: TrackRecord


class TriageIn(_Strict):
    state: AlertState
    comment: str = Field("", max_length=2000)


class AssessmentIn(_Strict):
    judgement: Likelihood
    confidence: Confidence
    hypotheses: list[str] = Field(default_factory=list, max_length=20)
    pick: str = Field("", max_length=64, description="the alert's hypothesis (pattern id, or 'none') the "
                      "analyst judges best; empty for no pick")
    text: str = Field("", max_length=10000)


class LoginIn(_Strict):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    name: str
    role: str
    csrf_token: str


class UserIn(_Strict):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    role: str


class UserOut(BaseModel):
    name: str
    role: str
    created: str
    disabled: bool = Field(description="a disabled user cannot log in and has no tokens or sessions")


class UserChange(_Strict):
    """What to change about a user; fields left out stay as they are."""

    role: str | None = Field(None, description="admin, analyst or viewer; ends the user's sessions")
    disabled: bool | None = Field(
        None, description="true ends the user's sessions and revokes their tokens; false lets them log in"
    )


class TokenIn(_Strict):
    label: str = Field("", max_length=200)
    expires_days: int | None = Field(
        None, ge=1, le=3650, description="days the token is valid (default: the token_lifetime_days setting)"
    )


class TokenOut(BaseModel):
    name: str
    token: str = Field(description="shown once; only its hash is stored")
    expires: str


class TokenInfo(BaseModel):
    """An issued token as stored: never the secret."""

    id: int
    label: str
    created: str
    expires: str
    expired: bool
