"""Change detection over a workspace: an observation against its site's reference, regions stored.

The reference of a site is its earliest observation with enough valid pixels (or one the caller
names). The observation is co-registered to it by phase correlation and its radiometry mapped onto
the reference's on pseudo-invariant pixels before the detector runs, so that geolocation error and
illumination do not read as change. When co-registration refuses (too little overlap or texture,
tiles disagreeing), nothing is stored: an unregistered pair would report edges as change, and "not
measured" must stay different from "no change". Re-running replaces the observation's regions.

Scenes outside a workspace, of any size, go through :func:`write_scene_change`: one shift and one
radiometric map for the scene, then window by window into a mask-and-probability GeoTIFF.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio import features

from sitewatch.analytics.change import ChangeDetector, choose_change_method, input_bands, take_bands
from sitewatch.analytics.change.learned import SHIPPED_MODEL, LearnedBuildings, LearnedSite
from sitewatch.analytics.change.regions import change_regions
from sitewatch.analytics.change.scene import DEFAULT_WINDOW, plan_scene, scene_change
from sitewatch.core.errors import NotFoundError, UnsupportedInputError
from sitewatch.core.types import Observation
from sitewatch.imagery.chips import read_chip
from sitewatch.imagery.coregister import CoregistrationError, Registration, coregister
from sitewatch.imagery.grid import lonlat_to_crs
from sitewatch.imagery.radiometry import RadiometryError, fit_radiometry
from sitewatch.imagery.readers import band_names, ground_sample_distance
from sitewatch.store.workspace import Workspace, models_dir

log = logging.getLogger(__name__)


def workspace_change_card(root: Path) -> Path:
    """Where the change model fine-tuned for the workspace at ``root`` has its card."""
    return models_dir(root) / f"{SHIPPED_MODEL}.json"


def with_workspace_model(detector: ChangeDetector, root: Path) -> ChangeDetector:
    """A learned detector running the workspace's fine-tuned change model where the workspace has
    one (``sitewatch train change --pairs DIR``); any other detector as it is."""
    card = workspace_change_card(root)
    if isinstance(detector, LearnedBuildings | LearnedSite) and detector.model is None and card.is_file():
        return dataclasses.replace(detector, model=card)
    return detector

@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """What one change run did for one observation."""

    observation_id: str
    reference_observation_id: str
    detector: str
    registration: Registration | None
    """The shift applied; None when co-registration refused (see ``skipped``)."""
    regions: int
    changed_area_m2: float
    operating_point: str
    skipped: str | None = None
    """Why nothing was stored, when nothing was."""
    bands: tuple[str, ...] = ()
    """The chip's bands the detector was given, by name."""
    choice: str = ""
    """Why this detector: :func:`~sitewatch.analytics.change.choose_change_method`'s reason, or that
    the caller named it."""


def reference_for(ws: Workspace, observation: Observation, min_valid_fraction: float) -> Observation:
    """The site's earliest observation other than ``observation`` with enough valid pixels."""
    for candidate in ws.observations(observation.site_id):
        if candidate.id != observation.id and candidate.valid_fraction >= min_valid_fraction:
            return candidate
    raise NotFoundError(
        f"site {observation.site_id!r} has no other observation with at least {min_valid_fraction:.0%} valid "
        "pixels to compare with; ingest an earlier image of the site first"
    )


def detect_change(
    ws: Workspace,
    observation_id: str,
    *,
    reference_id: str | None = None,
    detector: ChangeDetector | None = None,
    min_area_m2: float = 10.0,
) -> ChangeOutcome:
    """Compare an observation with its reference and store its change regions (replacing earlier ones)."""
    observation = ws.observation(observation_id)
    reference = (
        ws.observation(reference_id) if reference_id
        else reference_for(ws, observation, ws.settings.min_valid_fraction)
    )
    if reference.site_id != observation.site_id:
        raise UnsupportedInputError(
            f"reference {reference.id} is of site {reference.site_id!r}, the observation of "
            f"{observation.site_id!r}; choose a reference of the same site"
        )
    site = ws.site(observation.site_id)
    reference_chip = read_chip(ws.chip_path(reference))
    observation_chip = read_chip(ws.chip_path(observation))
    with rasterio.open(ws.chip_path(observation)) as dataset:
        transform = dataset.transform
        epsg = dataset.crs.to_epsg() if dataset.crs is not None else None
    if epsg is None:
        raise UnsupportedInputError(f"chip of {observation.id} has no EPSG CRS; re-ingest the scene")
    if reference_chip.array.shape != observation_chip.array.shape:
        raise UnsupportedInputError(
            f"observation {observation.id} {observation_chip.array.shape} and reference {reference.id} "
            f"{reference_chip.array.shape} are not on one site grid; re-ingest both scenes"
        )
    before = reference_chip.array.astype(np.float32)
    if detector is None:
        choice = choose_change_method(float(abs(transform.a)), reference_chip.bands)
        model, bands, why = choice.detector(), choice.bands, choice.reason
    else:
        model, bands, why = detector, input_bands(detector, reference_chip.bands), "named by the caller"
    model = with_workspace_model(model, ws.root)
    used = tuple(reference_chip.bands[b] for b in bands)
    try:
        after, valid_after, registration = coregister(
            before, observation_chip.array.astype(np.float32),
            valid_reference=reference_chip.valid, valid_moving=observation_chip.valid,
        )
    except CoregistrationError as refusal:
        log.warning("observation %s not co-registered to %s: %s", observation.id, reference.id, refusal)
        return ChangeOutcome(observation.id, reference.id, model.name, None, 0, 0.0, "", skipped=str(refusal),
                             bands=used, choice=why)
    valid = reference_chip.valid & valid_after
    try:
        after = fit_radiometry(before, after, valid=valid).apply(after)
    except RadiometryError as problem:
        log.info("observation %s: radiometry left as is (%s)", observation.id, problem)
    result = model(take_bands(before, bands), take_bands(after, bands), valid=valid)
    zones = {
        zone.id: features.rasterize(
            [(lonlat_to_crs(zone.geometry, epsg), 1)], out_shape=valid.shape, transform=transform,
            fill=0, dtype="uint8",
        ).astype(bool)
        for zone in site.zones
    }
    regions = change_regions(
        result, transform, observation_id=observation.id, reference_observation_id=reference.id,
        zone_masks=zones, min_area_m2=min_area_m2,
    )
    ws.replace_change_regions(observation.id, regions)
    return ChangeOutcome(
        observation_id=observation.id,
        reference_observation_id=reference.id,
        detector=model.name,
        registration=registration,
        regions=len(regions),
        changed_area_m2=float(sum(r.area_m2 for r in regions)),
        operating_point=result.rule,
        bands=used,
        choice=why,
    )


@dataclass(frozen=True, slots=True)
class SceneChangeOutcome:
    """What :func:`write_scene_change` did."""

    output: str
    detector: str
    operating_point: str
    registration: Registration
    windows: int
    valid_pixels: int
    changed_pixels: int
    changed_area_m2: float | None
    """None when the rasters have no CRS (pixel size unknown)."""
    seconds: float
    bands: tuple[str, ...] = ()
    """The rasters' bands the detector was given, by name."""
    choice: str = ""
    """Why this detector: :func:`~sitewatch.analytics.change.choose_change_method`'s reason, or that
    the caller named it."""


NODATA = 255
"""Output value where either date has no valid pixel."""


def write_scene_change(
    before: Path,
    after: Path,
    output: Path,
    *,
    detector: ChangeDetector | None = None,
    window: int = DEFAULT_WINDOW,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SceneChangeOutcome:
    """Compare two co-gridded rasters of any size and write a 2-band uint8 GeoTIFF: band 1 the mask
    (1 changed, 0 not), band 2 the change probability in percent; 255 where not valid.

    One shift and one radiometric map for the scene, then window by window
    (:mod:`sitewatch.analytics.change.scene`). The file is written under a temporary name and
    moved into place at the end, so a failed run leaves any earlier output as it was.
    """
    started = time.monotonic()
    with rasterio.open(before) as first, rasterio.open(after) as second:
        names = band_names(first)
        # a raster without a CRS has no known pixel size (the rule's fallback applies)
        gsd = ground_sample_distance(first, before) if first.crs is not None else None
        if detector is None:
            choice = choose_change_method(gsd, names)
            detector, bands, why = choice.detector(), choice.bands, choice.reason
        else:
            bands, why = input_bands(detector, names), "named by the caller"
        plan = plan_scene(first, second)
        profile = {
            "driver": "GTiff", "width": first.width, "height": first.height, "count": 2, "dtype": "uint8",
            "crs": first.crs, "transform": first.transform, "nodata": NODATA, "tiled": True,
            "blockxsize": 512, "blockysize": 512, "compress": "deflate",
        }
        pixel_area = (None if gsd is None else abs(first.transform.a * first.transform.e)
                      if first.crs.is_projected else gsd * gsd)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    windows = valid_pixels = changed_pixels = 0
    rule = ""
    try:
        with rasterio.open(partial, "w", **profile) as sink:
            sink.set_band_description(1, f"change mask ({detector.name})")
            sink.set_band_description(2, "change probability, percent")
            for part in scene_change(before, after, detector, window=window, workers=workers, plan=plan,
                                     progress=progress, bands=bands):
                result, valid = part.result, part.valid
                mask = result.mask.astype(np.uint8)
                percent = np.rint(result.probability * 100).astype(np.uint8)
                mask[~valid] = NODATA
                percent[~valid] = NODATA
                sink.write(np.stack([mask, percent]), window=part.window)
                windows += 1
                valid_pixels += int(valid.sum())
                changed_pixels += int(result.mask.sum())
                rule = result.rule
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return SceneChangeOutcome(
        output=str(output), detector=detector.name, operating_point=rule, registration=plan.registration,
        windows=windows, valid_pixels=valid_pixels, changed_pixels=changed_pixels,
        changed_area_m2=None if pixel_area is None else changed_pixels * pixel_area,
        seconds=time.monotonic() - started,
        bands=tuple(names[b] for b in bands), choice=why,
    )
