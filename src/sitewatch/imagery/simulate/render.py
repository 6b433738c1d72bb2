"""Render one image of a site: the static background, season, shadows, objects, atmosphere, sensor.

:class:`SiteRenderer` does the costly work once per site (layout, background textures) and
then renders any date in a few hundred milliseconds with vectorised changes. It is usable
in memory (detector training) without writing files; :func:`render_scene` is the one-call form.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy.special import ndtri

from sitewatch.core.timeutil import ensure_utc
from sitewatch.core.types import Site
from sitewatch.imagery.simulate.activity import (
    SceneObject,
    check_capacity,
    objects_on,
    place_objects,
    standing_structures,
)
from sitewatch.imagery.simulate.layout import Grid, ResolvedLayout, resolve_layout
from sitewatch.imagery.simulate.painters import mark_object_shadow, paint_object
from sitewatch.imagery.simulate.raster import (
    blur_psf,
    fractal_noise,
    hull,
    mark_shadow,
    pixel_indices,
    upsample,
)
from sitewatch.imagery.simulate.scenario import (
    MOVABLE_CLASSES,
    CloudModel,
    Scenario,
    ScenarioError,
    SiteScenario,
)
from sitewatch.imagery.simulate.sites import site_by_id
from sitewatch.imagery.simulate.sun import SunPosition, solar_position
from sitewatch.imagery.simulate.terrain import Background, build_background, season_colour

SHADOW_TINT = np.array([0.36, 0.40, 0.50], dtype=np.float32)
WALL_COLOUR = np.array([104.0, 102.0, 98.0], dtype=np.float32)
CLOUD_COLOUR = np.array([238.0, 240.0, 244.0], dtype=np.float32)
HAZE_COLOUR = np.array([190.0, 196.0, 206.0], dtype=np.float32)
COARSE = 16
"""Pixels per cell of the coarse grids that haze and clouds are generated on."""
CLOUD_MARGIN = 24
CLOUD_HEIGHT_M = 1200.0
NORMAL_LUT = ndtri((np.arange(256) + 0.5) / 256).astype(np.float32)
"""Standard normal quantiles of 256 equal-probability bins."""


@dataclass(frozen=True, slots=True)
class Conditions:
    """How one image was taken: sun, atmosphere, view and sensor state."""

    when: datetime
    sun: SunPosition
    shift: tuple[int, int]
    """True misregistration (rows, cols): a ground feature at nominal pixel (r, c) appears at (r+dy, c+dx)."""
    cloud_target: float
    """Fraction of the image to cover with cloud (the measured fraction is in the result)."""
    haze: float
    gain: float
    white_balance: tuple[float, float, float]
    off_nadir: float
    """Degrees from nadir; tall things lean away from the sensor."""
    view_azimuth: float
    """Degrees clockwise from north, from the scene towards the sensor."""
    noise_sigma: float

    @property
    def lean(self) -> tuple[float, float]:
        """Displacement (east, north) in metres per metre of height."""
        away = math.radians(self.view_azimuth + 180.0)
        slope = math.tan(math.radians(self.off_nadir))
        return slope * math.sin(away), slope * math.cos(away)


@dataclass(frozen=True)
class RenderedScene:
    """One rendered image with everything needed to write it and its ground truth."""

    site_id: str
    image: np.ndarray
    """(rows, cols, 3) uint8 red, green, blue."""
    grid: Grid
    conditions: Conditions
    objects: tuple[SceneObject, ...]
    cloud_fraction: float
    """Fraction of pixels whose cloud opacity exceeds 0.5."""
    cloud_mask: np.ndarray
    """(rows, cols) bool: pixels under cloud opacity > 0.5."""


def _cloud_opacity(coarse: np.ndarray, threshold: float, shape: tuple[int, int]) -> np.ndarray:
    """Cloud opacity 0..1, thresholded at full resolution so edges are smooth, softly ramped."""
    alpha = upsample(coarse, shape)
    alpha -= threshold
    alpha *= 1.6
    alpha += 0.5
    np.clip(alpha, 0.0, 1.0, out=alpha)
    return alpha


def site_seed(seed: int, site_id: str, *parts: int) -> np.random.Generator:
    """A generator for one purpose of one site, independent of the order sites are rendered in."""
    return np.random.default_rng([seed, zlib.crc32(site_id.encode()), *parts])


def draw_conditions(
    when: datetime,
    site: Site,
    clouds: CloudModel,
    rng: np.random.Generator,
    *,
    max_shift_px: int = 3,
    max_off_nadir: float = 10.0,
    cloud_fraction: float | None = None,
    max_cloud: float = 1.0,
    shift: tuple[int, int] | None = None,
) -> Conditions:
    centre = site.geometry.centroid
    moment = ensure_utc(when)
    sun = solar_position(moment, centre.y, centre.x)
    kind = rng.choice(4, p=[clouds.clear, clouds.partial, clouds.mostly, clouds.full])
    ranges = ((0.0, 0.0), (0.04, 0.45), (0.5, 0.85), (0.9, 0.99))
    target = min(float(rng.uniform(*ranges[kind])), max_cloud) if cloud_fraction is None else cloud_fraction
    drawn_shift = (
        int(rng.integers(-max_shift_px, max_shift_px + 1)),
        int(rng.integers(-max_shift_px, max_shift_px + 1)),
    )
    return Conditions(
        when=moment,
        sun=sun,
        shift=drawn_shift if shift is None else shift,
        cloud_target=target,
        haze=float(rng.uniform(0.0, 0.12) + 0.25 * target),
        gain=float((0.78 + 0.32 * math.sin(math.radians(sun.elevation))) * rng.uniform(0.94, 1.06)),
        white_balance=(float(rng.uniform(0.97, 1.03)), 1.0, float(rng.uniform(0.96, 1.04))),
        off_nadir=float(rng.uniform(0.0, max_off_nadir)),
        view_azimuth=float(rng.uniform(0.0, 360.0)),
        noise_sigma=float(rng.uniform(1.5, 3.5)),
    )


class SiteRenderer:
    """Renders images of one site; the layout and background are built once, here."""

    def __init__(self, site: Site, plan: SiteScenario, gsd: float, seed: int) -> None:
        self.site = site
        self.plan = plan
        self.seed = seed
        self.layout: ResolvedLayout = resolve_layout(site, plan, gsd, site_seed(seed, site.id, 0))
        check_capacity(plan, self.layout)
        self.background: Background = build_background(self.layout, site_seed(seed, site.id, 1))
        self._canvas = np.empty_like(self.background.ground)

    @property
    def grid(self) -> Grid:
        return self.layout.grid

    def render_date(
        self,
        when: datetime,
        clouds: CloudModel,
        *,
        cloud_fraction: float | None = None,
        max_cloud: float = 1.0,
        shift: tuple[int, int] | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> RenderedScene:
        """The image of ``when`` with the scenario's activity on that date (seeded by site and date).

        ``cloud_fraction`` and ``shift`` force those conditions (tests, training); ``max_cloud``
        caps the random cloud cover. ``counts`` (class -> number, e.g. ``{"car": 80, "crane": 2}``)
        replaces the scenario's traffic and events with that many objects anywhere on the site,
        for detector training; a count beyond the free slots is cut to fit.
        """
        moment = ensure_utc(when)
        rng = site_seed(self.seed, self.site.id, 2, moment.toordinal(), moment.hour * 60 + moment.minute)
        if counts is None:
            objects = objects_on(self.plan, self.layout, moment.date(), rng)
        else:
            unknown = sorted(set(counts) - set(MOVABLE_CLASSES))
            if unknown:
                raise ScenarioError(
                    f"counts name unknown class(es) {unknown}; use {', '.join(MOVABLE_CLASSES)}"
                )
            requests: list[tuple[str | None, str, int]] = [(None, cls, int(n)) for cls, n in counts.items()]
            objects = place_objects(self.layout, requests, rng)
            objects += standing_structures(self.plan, self.layout, moment.date())
        conditions = draw_conditions(
            moment, self.site, clouds, rng, cloud_fraction=cloud_fraction, max_cloud=max_cloud, shift=shift
        )
        return self.render(objects, conditions, rng)

    def render(
        self, objects: Sequence[SceneObject], conditions: Conditions, rng: np.random.Generator
    ) -> RenderedScene:
        background = self.background
        grid = self.grid
        pad = background.pad
        rows, cols = background.shape
        # One canvas buffer per renderer: fresh 20-30 MB arrays per image cost more in page
        # faults than the arithmetic. The returned image is a new uint8 array, so reuse is safe.
        canvas = self._canvas
        np.multiply(background.vegetation[..., None], season_colour(conditions.when.date()), out=canvas)
        canvas += background.ground

        # Shadows of buildings, structures and objects darken the ground; roofs are re-painted after.
        sun = conditions.sun
        lean = conditions.lean
        shadow = np.zeros((rows, cols), dtype=bool)
        for _, _, height, corners in background.roofs:
            mark_shadow(shadow, grid, corners, sun.shadow_vector(height), pad)
        for obj in objects:
            mark_object_shadow(shadow, grid, obj, sun, pad)
        canvas[shadow] *= SHADOW_TINT
        flat = canvas.reshape(-1, 3)
        for start, stop, height, corners in background.roofs:
            dx, dy = lean[0] * height, lean[1] * height
            offset_cols, offset_rows = round(dx / grid.gsd), round(-dy / grid.gsd)
            if offset_cols or offset_rows:
                walls = hull(np.vstack([corners, corners + np.array([dx, dy])]))
                wall_rows, wall_cols = pixel_indices(grid, walls, (rows, cols), pad)
                canvas[wall_rows, wall_cols] = (
                    WALL_COLOUR * np.where(shadow[wall_rows, wall_cols], 0.6, 1.0)[:, None]
                )
            index = background.roof_index[start:stop] + offset_rows * cols + offset_cols
            np.clip(index, 0, flat.shape[0] - 1, out=index)
            flat[index] = background.roof_colour[start:stop]
        for obj in objects:
            paint_object(canvas, grid, obj, lean, pad, rng)

        # Misregistration: crop the padded canvas off-centre.
        dy_px, dx_px = conditions.shift
        image = canvas[pad - dy_px : pad - dy_px + grid.height, pad - dx_px : pad - dx_px + grid.width]
        image = blur_psf(image)
        gain = np.array(conditions.white_balance, dtype=np.float32) * np.float32(conditions.gain)
        coarse_shape = (grid.height // COARSE + 3, grid.width // COARSE + 3)
        haze_coarse = 0.75 + 0.25 * fractal_noise(coarse_shape, rng, (6.0, 2.0))
        # The cloud field extends beyond the image so that cloud shadows, displaced along the
        # sun direction (by at most CLOUD_MARGIN coarse cells), come from clouds off the image too.
        margin = CLOUD_MARGIN
        cloud_field = fractal_noise(
            (coarse_shape[0] + 2 * margin, coarse_shape[1] + 2 * margin),
            rng,
            (24.0, 10.0, 4.0),
            (1.0, 0.45, 0.2),
        )
        haze = upsample(np.clip(conditions.haze * haze_coarse, 0.0, 0.9), image.shape[:2])
        # Exposure and haze in two in-place passes: image * gain * (1 - haze) + haze colour * haze.
        image *= (1.0 - haze)[..., None] * gain
        image += haze[..., None] * HAZE_COLOUR
        cloud_mask = np.zeros(image.shape[:2], dtype=bool)
        if conditions.cloud_target > 0:
            rows_c, cols_c = coarse_shape
            clouds = cloud_field[margin : margin + rows_c, margin : margin + cols_c]
            threshold = float(np.quantile(clouds, 1.0 - conditions.cloud_target))
            east, north = sun.shadow_vector(CLOUD_HEIGHT_M)
            step = grid.gsd * COARSE
            down = int(np.clip(round(north / step), -margin, margin))  # shadow moves north: take from south
            left = int(np.clip(round(east / step), -margin, margin))
            shadows = cloud_field[
                margin + down : margin + down + rows_c, margin - left : margin - left + cols_c
            ]
            alpha = _cloud_opacity(clouds, threshold, image.shape[:2])
            image *= (1.0 - 0.3 * _cloud_opacity(shadows, threshold, image.shape[:2]))[..., None]
            # Thick cloud cores are brighter than their thin edges.
            image += (CLOUD_COLOUR * (0.93 + 0.07 * alpha)[..., None] - image) * alpha[..., None]
            cloud_mask = alpha > 0.5
        # Fresh sensor noise per image, drawn as bytes through an inverse-normal lookup table:
        # a third of the cost of normal deviates, and never a pattern that repeats between dates
        # (a repeated pattern would give co-registration a false peak).
        image += (NORMAL_LUT * conditions.noise_sigma)[rng.integers(0, 256, image.shape, dtype=np.uint8)]
        pixels = np.clip(image, 0, 255).astype(np.uint8)
        return RenderedScene(
            site_id=self.site.id,
            image=pixels,
            grid=grid,
            conditions=conditions,
            objects=tuple(objects),
            cloud_fraction=float(cloud_mask.mean()),
            cloud_mask=cloud_mask,
        )


def render_scene(
    scenario: Scenario,
    site_id: str,
    when: datetime,
    *,
    seed: int,
    gsd: float | None = None,
    clouds: CloudModel | None = None,
    cloud_fraction: float | None = None,
    shift: tuple[int, int] | None = None,
    counts: Mapping[str, int] | None = None,
) -> RenderedScene:
    """Render one image of ``site_id`` on ``when`` in memory, with the scenario's activity of that date.

    ``counts`` (class -> number) puts that many objects of each class anywhere on the site
    instead, e.g. to render training images with every class at a chosen ``gsd``.
    For many images of one site build a :class:`SiteRenderer` once and call ``render_date`` or
    ``render`` (with your own objects) on it: that skips rebuilding the background.
    """
    plan = scenario.site(site_id)
    site = site_by_id(site_id)
    renderer = SiteRenderer(site, plan, gsd if gsd is not None else effective_gsd(site, scenario.gsd), seed)
    return renderer.render_date(
        when, clouds or scenario.clouds, cloud_fraction=cloud_fraction, shift=shift, counts=counts
    )


def effective_gsd(site: Site, requested: float) -> float:
    """The GSD a site is rendered at: the request, but never finer than the site grid's own GSD.

    Ingest resamples every image to the site grid, so rendering finer than it only costs time.
    """
    return max(requested, site.gsd)
