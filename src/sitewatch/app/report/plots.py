"""Small inline-SVG plots for reports: no plotting library, crisp at any zoom."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a timeline plot; ``None`` values are gaps (not observed)."""

    label: str
    times: tuple[datetime, ...]
    values: tuple[float | None, ...]


def _tick(value: float) -> str:
    """A short axis label: 1290 → "1.29k", 2.5e6 → "2.5M" (the margin holds five characters)."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def timeline_svg(
    series: Sequence[Series],
    *,
    observations: Sequence[datetime] = (),
    alerts: Sequence[datetime] = (),
    width: int = 900,
    height: int = 220,
    title: str = "",
) -> str:
    """An SVG timeline: one line per series, ticks for observations, red bars for alerts."""
    margin_left, margin_right, margin_top, margin_bottom = 48, 12, 22, 34
    times = [t for s in series for t in s.times] + list(observations) + list(alerts)
    if not times:
        return '<p class="empty">No observations yet.</p>'
    start, end = min(times).timestamp(), max(times).timestamp()
    span = max(end - start, 86400.0)
    values = [v for s in series for v in s.values if v is not None]
    top = max(values) if values else 1.0
    bottom = min(0.0, min(values)) if values else 0.0
    if top <= bottom:
        top = bottom + 1.0
    plot_w = width - margin_left - margin_right
    plot_h = height - margin_top - margin_bottom

    def x(t: datetime) -> float:
        return margin_left + (t.timestamp() - start) / span * plot_w

    def y(v: float) -> float:
        return margin_top + (1.0 - (v - bottom) / (top - bottom)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="timeline" role="img" aria-label="{escape(title)}">',
        f'<text x="{margin_left}" y="14" class="title">{escape(title)}</text>',
        f'<line x1="{margin_left}" y1="{margin_top + plot_h}" x2="{width - margin_right}" '
        f'y2="{margin_top + plot_h}" class="axis"/>',
        f'<text x="{margin_left - 4}" y="{y(top) + 4:.1f}" class="tick" '
        f'text-anchor="end">{_tick(top)}</text>',
        f'<text x="{margin_left - 4}" y="{y(bottom) + 4:.1f}" class="tick" '
        f'text-anchor="end">{_tick(bottom)}</text>',
    ]
    for moment in alerts:
        parts.append(
            f'<rect x="{x(moment) - 2:.1f}" y="{margin_top}" width="4" height="{plot_h}" class="alert">'
            f"<title>alert {moment:%Y-%m-%d}</title></rect>"
        )
    for moment in observations:
        parts.append(
            f'<line x1="{x(moment):.1f}" y1="{margin_top + plot_h}" x2="{x(moment):.1f}" '
            f'y2="{margin_top + plot_h + 5}" class="obs"/>'
        )
    for index, line in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for moment, value in zip(line.times, line.values, strict=True):
            if value is None:
                segments.append([])
                continue
            segments[-1].append(f"{x(moment):.1f},{y(value):.1f}")
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    'stroke-width="1.5"/>'
                )
            for point in points:
                cx, cy = point.split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
        legend_x = margin_left + 8 + index * 150
        parts.append(
            f'<text x="{legend_x}" y="{height - 6}" class="legend" fill="{colour}">'
            f"■ {escape(line.label)}</text>"
        )
    first, last = min(times), max(times)
    parts.append(
        f'<text x="{margin_left}" y="{margin_top + plot_h + 18}" class="tick">{first:%Y-%m-%d}</text>'
    )
    parts.append(
        f'<text x="{width - margin_right}" y="{margin_top + plot_h + 18}" class="tick" '
        f'text-anchor="end">{last:%Y-%m-%d}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
