"""Briefing figures: an alert's before and after, side by side, annotated like published imagery analyses.

Both dates are shown at one zoom on the alert's zone, on one stretch (a brightness change
shows as one), with the detections outlined and called out by name and count ("9 trucks"),
the zone and change regions outlined, a scale bar, a north arrow (true north, turned by the UTM
grid's convergence), each image's date, sensor, resolution and valid fraction, and the
credit line from each scene's licence. Masked pixels (cloud, no data) are drawn as a grey
hatch: never filled from the other date.

Drawn with matplotlib's object API (no pyplot state), so the web server can render one per
request; saved as PNG and as PDF with embedded TrueType fonts (its text can be searched).
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np
import shapely
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from sitewatch import __version__
from sitewatch.app.compare import reference_for
from sitewatch.app.report.images import (
    CHANGE_COLOUR,
    CLASS_COLOURS,
    ChipPicture,
    class_words,
    load_chip_picture,
    shared_stretch,
)
from sitewatch.core import words
from sitewatch.core.indicators import indicator_label
from sitewatch.core.types import Alert, ChangeRegion, Detection, Observation, Scene, Site
from sitewatch.monitor.explain import describe_hypotheses
from sitewatch.store.protocol import Store

DEFAULT_MARGIN = 0.35
"""Context around the zone, as a fraction of its larger side."""
MASK_FACE = "#4a4a4a"
MASK_HATCH_COLOUR = "#9a9a9a"
_FIGURE_SIZE = (12.0, 7.4)  # inches: a report page's width
_PNG_DPI = 150
_PDF_FONT_TYPE = 42  # TrueType in the PDF: its text can be searched and extracted


@dataclass(frozen=True, slots=True)
class Side:
    """One date of the figure."""

    label: str
    observation: Observation
    scene: Scene
    picture: ChipPicture
    detections: tuple[Detection, ...]
    change_regions: tuple[ChangeRegion, ...] = ()


@dataclass(frozen=True, slots=True)
class BriefFiles:
    png: Path
    pdf: Path
    alert_id: str
    callouts: tuple[str, ...]
    """The callout texts of the after image, e.g. ("9 trucks", "1 crane")."""


def _to_grid(geometry: BaseGeometry, epsg: int) -> BaseGeometry:
    to_grid = Transformer.from_crs(4326, epsg, always_xy=True)
    return shapely.transform(geometry, lambda xy: np.column_stack(to_grid.transform(xy[:, 0], xy[:, 1])))


def view_bounds(
    site: Site, alert: Alert, picture: ChipPicture, margin: float
) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) in grid metres: the alert's zone with ``margin`` around it, within the
    chip; the whole chip when the alert names no zone."""
    height, width = picture.valid.shape
    left, top = picture.transform * (0, 0)
    right, bottom = picture.transform * (width, height)
    chip = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    zone = next((z for z in site.zones if z.id == alert.zone_id), None)
    if zone is None:
        return chip
    minx, miny, maxx, maxy = _to_grid(zone.geometry, site.utm_epsg).bounds
    pad = margin * max(maxx - minx, maxy - miny)
    bounds = (
        max(chip[0], minx - pad),
        max(chip[1], miny - pad),
        min(chip[2], maxx + pad),
        min(chip[3], maxy + pad),
    )
    if bounds[0] >= bounds[2] or bounds[1] >= bounds[3]:
        return chip  # the zone lies outside the chip: show what was seen
    return bounds


def panel_pixels(
    picture: ChipPicture, stretch: tuple[np.ndarray, np.ndarray], bounds: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """The chip's pixels inside ``bounds`` as RGB floats with its masked pixels hatched, which of them
    the image saw, and their extent (left, right, bottom, top).

    The hatch is drawn into the pixels (grey with lighter diagonal lines) rather than as a vector
    pattern under a transparent image: it then looks the same in every PDF viewer, and no pixel of
    anything else, another date included, can show through.
    """
    height, width = picture.valid.shape
    to_pixels = ~picture.transform
    cols, rows = zip(
        *(to_pixels * (x, y) for x, y in ((bounds[0], bounds[3]), (bounds[2], bounds[1]))), strict=True
    )
    col0, col1 = max(0, math.floor(min(cols))), min(width, math.ceil(max(cols)))
    row0, row1 = max(0, math.floor(min(rows))), min(height, math.ceil(max(rows)))
    low, high = stretch
    rgb = np.clip((picture.rgb[row0:row1, col0:col1] - low) / (high - low), 0.0, 1.0)
    seen = picture.valid[row0:row1, col0:col1]
    period = max(6, round(max(seen.shape) / 70))  # about 70 lines across the panel at any zoom
    row_index, col_index = np.indices(seen.shape)
    on_line = (row_index + col_index) % period < max(1, period // 4)
    hatch = np.where(on_line[..., None], _unit_rgb(MASK_HATCH_COLOUR), _unit_rgb(MASK_FACE))
    pixels = np.where(seen[..., None], rgb, hatch).astype(np.float32)
    left, top = picture.transform * (col0, row0)
    right, bottom = picture.transform * (col1, row1)
    return pixels, seen.copy(), (left, right, bottom, top)


def _unit_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)], np.float32)


def _nice_length(span: float) -> float:
    """A round scale-bar length near a fifth of ``span`` metres: 1, 2 or 5 times a power of ten."""
    target = span / 5
    power = 10 ** math.floor(math.log10(target))
    return max(step * power for step in (1, 2, 5) if step * power <= target)


def _north_angle(site: Site, centre: tuple[float, float]) -> float:
    """Angle of true north from the grid's up, in degrees clockwise (the UTM convergence)."""
    to_lonlat = Transformer.from_crs(site.utm_epsg, 4326, always_xy=True)
    to_grid = Transformer.from_crs(4326, site.utm_epsg, always_xy=True)
    lon, lat = to_lonlat.transform(*centre)
    x, y = to_grid.transform(lon, lat + 0.01)
    return math.degrees(math.atan2(x - centre[0], y - centre[1]))


def _outline(
    axes: Axes, geometry: BaseGeometry, colour: str | tuple[float, ...], *, width: float, style: str = "-"
) -> None:
    for part in getattr(geometry, "geoms", [geometry]):
        ring = getattr(part, "exterior", None)
        xs, ys = zip(*(ring.coords if ring is not None else part.coords), strict=True)
        axes.plot(xs, ys, color=colour, linewidth=width, linestyle=style, solid_joinstyle="miter")


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    return (colour[0] / 255, colour[1] / 255, colour[2] / 255)


def _callouts(
    axes: Axes, detections: Sequence[Detection], bounds: tuple[float, float, float, float]
) -> list[str]:
    """Outline the detections in view and label each class once, at the panel's edge, with a leader line
    to the middle of its group."""
    minx, miny, maxx, maxy = bounds
    view = shapely.box(minx, miny, maxx, maxy)
    groups: dict[str, list[Detection]] = defaultdict(list)
    for detection in detections:
        if detection.geometry.intersects(view):
            groups[detection.class_name].append(detection)
    labels = []
    placed: list[tuple[str, float]] = []  # (side, y) of labels already placed
    spacing = 0.07 * (maxy - miny)
    for class_name, group in sorted(groups.items(), key=lambda item: -len(item[1])):
        colour = _rgb(CLASS_COLOURS.get(class_name, (255, 255, 255)))
        for detection in group:
            _outline(axes, detection.geometry, colour, width=1.2)
        centres = np.array([[d.geometry.centroid.x, d.geometry.centroid.y] for d in group])
        cx, cy = np.median(centres, axis=0)
        side = "left" if cx > (minx + maxx) / 2 else "right"
        y = float(np.clip(cy, miny + spacing, maxy - 2 * spacing))
        while any(s == side and abs(y - other) < spacing for s, other in placed):
            y = y - spacing if y - spacing > miny + spacing else y + spacing
        placed.append((side, y))
        x = minx + 0.03 * (maxx - minx) if side == "left" else maxx - 0.03 * (maxx - minx)
        text = f"{len(group)} {class_words(class_name, len(group))}"
        labels.append(text)
        axes.annotate(
            text,
            xy=(float(cx), float(cy)),
            xytext=(x, y),
            ha=side,
            va="center",
            fontsize=10,
            fontweight="bold",
            color="black",
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": colour, "linewidth": 2},
            arrowprops={"arrowstyle": "-", "color": "white", "linewidth": 1.2, "shrinkA": 0, "shrinkB": 4},
        )
    return labels


def _scale_bar(axes: Axes, bounds: tuple[float, float, float, float]) -> None:
    minx, miny, maxx, maxy = bounds
    length = _nice_length(maxx - minx)
    x0, y0 = minx + 0.04 * (maxx - minx), miny + 0.05 * (maxy - miny)
    thick = 0.012 * (maxy - miny)
    for index, colour in enumerate(("black", "white")):
        axes.add_patch(
            Rectangle(
                (x0 + index * length / 2, y0),
                length / 2,
                thick,
                facecolor=colour,
                edgecolor="black",
                linewidth=0.8,
                zorder=5,
            )
        )
    label = f"{length:g} m" if length < 1000 else f"{length / 1000:g} km"
    axes.text(
        x0 + length / 2,
        y0 + 2.2 * thick,
        label,
        ha="center",
        va="bottom",
        fontsize=9,
        color="white",
        fontweight="bold",
        zorder=5,
        bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.5, "edgecolor": "none"},
    )


def _north_arrow(axes: Axes, angle: float) -> None:
    """An arrow in the panel's top-right corner (axes fraction), turned ``angle`` degrees clockwise."""
    cx, cy, length = 0.93, 0.83, 0.09
    dx, dy = length * math.sin(math.radians(angle)), length * math.cos(math.radians(angle))
    axes.annotate(
        "",
        xy=(cx + dx / 2, cy + dy / 2),
        xytext=(cx - dx / 2, cy - dy / 2),
        xycoords="axes fraction",
        arrowprops={"arrowstyle": "-|>,head_width=0.45,head_length=0.9", "color": "white", "linewidth": 2.2},
    )
    axes.text(
        cx + 0.7 * dx,
        cy + 0.7 * dy + 0.02,
        "N",
        transform=axes.transAxes,
        ha="center",
        va="bottom",
        fontsize=12,
        fontweight="bold",
        color="white",
        bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.5, "edgecolor": "none"},
    )


def _caption(side: Side) -> str:
    scene = side.scene
    parts = [f"{scene.sensor}", f"{scene.gsd:.2g} m"]
    if scene.off_nadir is not None:
        parts.append(f"off-nadir {scene.off_nadir:.0f}°")
    parts.append(f"{100 * side.observation.valid_fraction:.0f} % of site seen")
    return ", ".join(parts)


def draw_panel(
    axes: Axes,
    side: Side,
    site: Site,
    zone: BaseGeometry | None,
    stretch: tuple[np.ndarray, np.ndarray],
    bounds: tuple[float, float, float, float],
) -> list[str]:
    minx, miny, maxx, maxy = bounds
    pixels, seen, extent = panel_pixels(side.picture, stretch, bounds)
    axes.imshow(pixels, extent=extent, interpolation="nearest", zorder=1)
    if zone is not None:
        _outline(axes, zone, "white", width=1.4, style="--")
    for region in side.change_regions:
        _outline(axes, region.geometry, _rgb(CHANGE_COLOUR), width=1.6, style=":")
    callouts = _callouts(axes, side.detections, bounds)
    axes.set_xlim(minx, maxx)
    axes.set_ylim(miny, maxy)
    axes.set_aspect("equal")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.text(
        0.015,
        0.985,
        f"{side.label}  {side.observation.acquired:%Y-%m-%d %H:%M} UTC",
        transform=axes.transAxes,
        ha="left",
        va="top",
        fontsize=12,
        fontweight="bold",
        color="white",
        bbox={"facecolor": "black", "alpha": 0.75, "pad": 3, "edgecolor": "none"},
        zorder=6,
    )
    axes.set_xlabel(_caption(side), fontsize=9, loc="left")
    _scale_bar(axes, bounds)
    _north_arrow(axes, _north_angle(site, ((minx + maxx) / 2, (miny + maxy) / 2)))
    masked = 1 - float(seen.mean()) if seen.size else 0.0
    if masked > 0:
        axes.text(
            0.985,
            0.015,
            f"hatched: not seen ({100 * masked:.0f} % of view)",
            transform=axes.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="white",
            bbox={"facecolor": "black", "alpha": 0.6, "pad": 2, "edgecolor": "none"},
            zorder=6,
        )
    return callouts


def _lines(text: str, *, width: int, count: int) -> str:
    """``text`` wrapped to at most ``count`` lines, the last cut with an ellipsis when it runs on."""
    lines = textwrap.wrap(text, width)
    if len(lines) > count:
        lines = [
            *lines[: count - 1],
            textwrap.shorten(" ".join(lines[count - 1 :]), width - 1, placeholder=" …"),
        ]
    return "\n".join(lines)


def credit_line(scenes: Sequence[Scene]) -> str:
    """ "Imagery: …" from each scene's attribution and licence, each credit once."""
    credits: list[str] = []
    for scene in scenes:
        source = scene.attribution or scene.sensor
        credit = f"{source} ({scene.license})" if scene.license else source
        if credit not in credits:
            credits.append(credit)
    return "Imagery: " + "; ".join(credits)


def brief_figure(
    ws: Store, alert_id: str, *, margin: float = DEFAULT_MARGIN
) -> tuple[Figure, tuple[str, ...]]:
    """The briefing figure of an alert and the callout texts of its after image."""
    alert = ws.alert(alert_id)
    site = ws.site(alert.site_id)
    after = ws.observation(alert.observation_id)
    before = reference_for(ws, after)
    sides = []
    if before is not None:
        sides.append(
            Side(
                "BEFORE",
                before,
                ws.scene(before.scene_id),
                load_chip_picture(ws.chip_path(before)),
                tuple(ws.detections(observation_id=before.id)),
            )
        )
    sides.append(
        Side(
            "AFTER",
            after,
            ws.scene(after.scene_id),
            load_chip_picture(ws.chip_path(after)),
            tuple(ws.detections(observation_id=after.id)),
            tuple(ws.change_regions(observation_id=after.id)),
        )
    )
    stretch = shared_stretch([s.picture for s in sides])
    bounds = view_bounds(site, alert, sides[-1].picture, margin)
    zone = next((z for z in site.zones if z.id == alert.zone_id), None)
    zone_grid = _to_grid(zone.geometry, site.utm_epsg) if zone is not None else None

    figure = Figure(figsize=_FIGURE_SIZE, facecolor="white")
    title = f"{site.name}: {zone.name}" if zone is not None else site.name
    figure.text(0.02, 0.968, textwrap.shorten(title, 90), fontsize=16, fontweight="bold", va="top")
    figure.text(
        0.02,
        0.922,
        textwrap.shorten(f"{indicator_label(alert.indicator)} · {alert.acquired:%Y-%m-%d}", 140),
        fontsize=11,
        va="top",
    )
    # The competing hypotheses get a line of their own (the explanation's three lines would cut them).
    hypotheses = describe_hypotheses(alert.hypotheses)
    explanation = alert.explanation
    if hypotheses:
        explanation = explanation.replace(hypotheses, " ").replace("  ", " ")
    top = 0.888
    hypothesis_lines = _lines(hypotheses, width=140, count=2) if hypotheses else ""
    if hypothesis_lines:  # up to two lines: the lead and its nearest rivals with their LRs
        figure.text(0.02, top, hypothesis_lines, fontsize=9.5, fontweight="bold", va="top", color="#1d2433")
        top -= 0.027 * (hypothesis_lines.count("\n") + 1)
    figure.text(
        0.02, top, _lines(explanation, width=160, count=3 if not hypotheses else 2), fontsize=9, va="top",
        color="#333333",
    )
    panels_top = min(0.81, top - 0.05)  # below the text, however many lines it took
    width = 0.96 / len(sides)
    callouts: list[str] = []
    for index, side in enumerate(sides):
        axes = figure.add_axes((0.02 + index * width + 0.005, 0.13, width - 0.01, panels_top - 0.13))
        callouts = draw_panel(axes, side, site, zone_grid, stretch, bounds)
    p_text = f", p = {words.p_value(alert.p_value)}" if alert.p_value is not None else ""
    figure.text(0.02, 0.045, credit_line([s.scene for s in sides]), fontsize=8.5, va="bottom")
    figure.text(
        0.02,
        0.015,
        f"Analysis: sitewatch {__version__}, alert {alert.id} ({alert.state.value.replace('_', ' ')}"
        f"{p_text}); detections outlined, zone dashed, change dotted red. "
        f"Made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        fontsize=8,
        va="bottom",
        color="#555555",
    )
    return figure, tuple(callouts)


def save_brief(figure: Figure, target: Path | IO[bytes], fmt: str) -> None:
    """Save as ``png`` or ``pdf`` (fonts embedded as TrueType, so the PDF's words can be found)."""
    with rc_context({"pdf.fonttype": _PDF_FONT_TYPE}):
        figure.savefig(target, format=fmt, dpi=_PNG_DPI, facecolor="white")


def write_brief(ws: Store, alert_id: str, out: Path, *, margin: float = DEFAULT_MARGIN) -> BriefFiles:
    """Write ``out``.png and ``out``.pdf (``out`` without its suffix)."""
    figure, callouts = brief_figure(ws, alert_id, margin=margin)
    stem = out.with_suffix("") if out.suffix.lower() in (".png", ".pdf") else out
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")
    save_brief(figure, png, "png")
    save_brief(figure, pdf, "pdf")
    return BriefFiles(png=png, pdf=pdf, alert_id=alert_id, callouts=callouts)
