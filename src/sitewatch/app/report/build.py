"""Build a self-contained HTML report of a workspace: the alert list first, then per site its alerts with
before and after side by side at full chip resolution (zoomable, embedded), then its charts."""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from sitewatch import __version__
from sitewatch.app.report.images import (
    CLASS_COLOURS,
    HATCH_COLOURS,
    load_chip_picture,
    render_picture,
    shared_stretch,
)
from sitewatch.app.report.plots import Series, timeline_svg
from sitewatch.core import words
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.indicators import IndicatorKind, indicator_label, indicator_spec
from sitewatch.core.types import Alert, Assessment, Observation, Scene, Site
from sitewatch.monitor.lifecycle import TrackRecord, track_record
from sitewatch.store.protocol import Store

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class AlertEvidence:
    """What the report shows for one alert."""

    alert: Alert
    site: Site
    after: Observation
    after_scene: Scene
    after_image: str
    """The after chip, every pixel, as a ``data:`` URI (the report is one file)."""
    before: Observation | None
    before_scene: Scene | None
    before_image: str | None
    width: int
    height: int
    """Pixels of the after chip (the before chip lies on the same site grid)."""
    detection_counts: dict[str, int]
    change_region_count: int
    assessments: tuple[Assessment, ...]

    @property
    def indicator_label(self) -> str:
        return indicator_label(self.alert.indicator)

    @property
    def zone_name(self) -> str | None:
        zone = next((z for z in self.site.zones if z.id == self.alert.zone_id), None)
        return zone.name if zone is not None else self.alert.zone_id


@dataclass(frozen=True, slots=True)
class SiteSection:
    site: Site
    observations: tuple[Observation, ...]
    alerts: tuple[AlertEvidence, ...]
    timeline: str
    indicator_plots: tuple[str, ...]
    track_record: TrackRecord
    """How the site's alerts were judged (all of them)."""


@dataclass(frozen=True, slots=True)
class ReportResult:
    path: Path
    sites: int
    observations: int
    alerts: int
    per_site: dict[str, int] = field(default_factory=dict)


def build_report(
    workspace: Store,
    out_dir: Path | None = None,
    *,
    site_ids: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> ReportResult:
    """Write ``report.html`` under ``out_dir`` (default ``<workspace>/report``): one file, its pictures
    embedded, so it can be mailed or archived as it is."""
    target = Path(out_dir) if out_dir is not None else workspace.root / "report"
    target.mkdir(parents=True, exist_ok=True)
    sites = [workspace.site(s) for s in site_ids] if site_ids else workspace.sites()
    sections = []
    for index, site in enumerate(sites):
        if progress is not None:
            progress(site.id, index, len(sites))
        sections.append(_site_section(workspace, site))
    if progress is not None:
        progress("done", len(sites), len(sites))

    environment = Environment(
        loader=PackageLoader("sitewatch.app.report", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    # Words, as on the dashboard: names for machine names, times to the minute, numbers rounded.
    environment.filters.update(human=words.human_name, when=words.when, p=words.p_value, amount=words.amount)
    html = environment.get_template("report.html").render(
        title=f"sitewatch report — {workspace.settings.name}",
        generated=datetime.now(UTC),
        version=__version__,
        workspace=str(workspace.root),
        sections=sections,
        alerts=sorted((e for s in sections for e in s.alerts), key=lambda e: e.alert.acquired, reverse=True),
        class_colours=CLASS_COLOURS,
        hatch_colours=HATCH_COLOURS,
        jpeg_quality=JPEG_QUALITY,
    )
    path = target / "report.html"
    temporary = path.with_suffix(".html.tmp")
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(path)
    return ReportResult(
        path=path,
        sites=len(sections),
        observations=sum(len(s.observations) for s in sections),
        alerts=sum(len(s.alerts) for s in sections),
        per_site={s.site.id: len(s.alerts) for s in sections},
    )


def _site_section(workspace: Store, site: Site) -> SiteSection:
    observations = tuple(workspace.observations(site.id))
    alerts = sorted(workspace.alerts(site_id=site.id), key=lambda a: a.acquired)
    evidence = tuple(_alert_evidence(workspace, site, alert, observations) for alert in alerts)
    timeline = timeline_svg(
        [Series("valid fraction", tuple(o.acquired for o in observations),
                tuple(o.valid_fraction for o in observations))],
        observations=[o.acquired for o in observations],
        alerts=[a.acquired for a in alerts],
        title=f"{site.name}: observations (valid fraction) and alerts",
        height=150,
    )
    plots = []
    for zone in site.zones:
        values = workspace.indicators(site.id, zone_id=zone.id)
        by_name: dict[str, list[tuple[datetime, float | None]]] = {}
        for value in sorted(values, key=lambda v: v.acquired):
            by_name.setdefault(value.name, []).append((value.acquired, value.value))
        if not by_name:
            continue
        zone_alerts = [a.acquired for a in alerts if a.zone_id in (None, zone.id)]
        for unit, names in _by_unit(by_name).items():  # one axis per unit: counts beside m² vanish
            series = [Series(words.human_name(name), tuple(t for t, _ in by_name[name]),
                             tuple(v for _, v in by_name[name]))
                      for name in names]
            plots.append(timeline_svg(series, alerts=zone_alerts,
                                      title=f"{zone.name} ({words.human_name(zone.kind.value)}): {unit}"))
    return SiteSection(site, observations, evidence, timeline, tuple(plots), track_record(alerts))


def _by_unit(by_name: dict[str, list[tuple[datetime, float | None]]]) -> dict[str, list[str]]:
    """Indicator names grouped by what their values count: objects, square metres, index values."""
    groups: dict[str, list[str]] = {}
    for name in sorted(by_name):
        try:
            spec = indicator_spec(name)
        except UnsupportedInputError:
            label = "other"
        else:
            labels = {IndicatorKind.COUNT: "counts", IndicatorKind.AREA: "areas (m²)"}
            label = labels.get(spec.kind, spec.kind.value)
        groups.setdefault(label, []).append(name)
    return groups


def _alert_evidence(
    workspace: Store, site: Site, alert: Alert, observations: Sequence[Observation]
) -> AlertEvidence:
    after = workspace.observation(alert.observation_id)
    min_valid = workspace.settings.min_valid_fraction
    earlier = [
        o for o in observations if o.acquired < after.acquired and o.valid_fraction >= min_valid
    ]
    before = earlier[-1] if earlier else None
    detections = workspace.detections(observation_id=after.id)
    regions = workspace.change_regions(observation_id=after.id)
    after_picture = load_chip_picture(workspace.chip_path(after))
    pictures = [after_picture]
    before_picture = None
    if before is not None:
        before_picture = load_chip_picture(workspace.chip_path(before))
        pictures.append(before_picture)
    stretch = shared_stretch(pictures)
    after_image = render_picture(after_picture, stretch, detections=detections, change_regions=regions,
                                 max_size=None, hatched=True)
    before_uri = None
    if before is not None and before_picture is not None:
        before_uri = _data_uri(render_picture(
            before_picture, stretch, detections=workspace.detections(observation_id=before.id),
            max_size=None, hatched=True))
    return AlertEvidence(
        alert=alert,
        site=site,
        after=after,
        after_scene=workspace.scene(after.scene_id),
        after_image=_data_uri(after_image),
        before=before,
        before_scene=workspace.scene(before.scene_id) if before is not None else None,
        before_image=before_uri,
        width=after_image.width,
        height=after_image.height,
        detection_counts=dict(Counter(d.class_name for d in detections)),
        change_region_count=len(regions),
        assessments=tuple(workspace.assessments(alert.id)),
    )


JPEG_QUALITY = 92
"""Chips are embedded at full resolution as JPEG (4:4:4, no chroma loss): a 1200-pixel chip of a
noisy sensor is ~0.4 MB so, where PNG would make the report several times heavier."""


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
