"""Change detection over a workspace: an observation's change evidence, and whole scenes.

:func:`detect_change` computes an observation's change evidence with the evidence step the
monitor runs (:mod:`sitewatch.pipeline.evidence`, whose docstring states the one rule: the
reference is the median composite of the observation's last three earlier good observations, every
chip aligned to the site's anchor, compared by the monitoring method) and stores its regions and
the shift applied to its chip in one transaction, replacing what either path stored before. An
observation the rule does not compare (too few earlier good observations, too clouded, refused by
co-registration) gets no regions, and the outcome says why: "not measured" must stay different
from "no change". With another reference or method it is a what-if comparison, shown and not
stored: an observation has one change evidence, the one its indicators were measured from.

Scenes outside a workspace, of any size, go through :func:`write_scene_change`: one shift and one
radiometric map for the scene, then window by window into a mask-and-probability GeoTIFF, with
the general change method of :func:`~sitewatch.analytics.change.choose_change_method`.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio

from sitewatch.analytics.change import ChangeDetector, choose_change_method, input_bands
from sitewatch.analytics.change.scene import DEFAULT_WINDOW, WindowChange, plan_scene, scene_change
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.coregister import Registration
from sitewatch.imagery.readers import band_names, ground_sample_distance

if TYPE_CHECKING:
    from sitewatch.store.protocol import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """What one change run found for one observation."""

    observation_id: str
    reference_observation_ids: tuple[str, ...]
    """The observations of the reference composite, oldest first (empty when not compared)."""
    detector: str
    registration: Registration | None
    """The shift applied to the observation's chip; None when compared as ingested or not compared."""
    regions: int
    changed_area_m2: float
    operating_point: str
    stored: bool
    """Whether the regions were stored as the observation's change evidence (not for a what-if)."""
    skipped: str | None = None
    """Why the observation was not compared, when it was not."""
    bands: tuple[str, ...] = ()
    """The chip's bands the detector was given, by name."""
    choice: str = ""
    """Why this detector: the monitoring rule's reason, or that the caller named it."""

    @property
    def reference_observation_id(self) -> str | None:
        """The newest observation of the reference (the regions' ``reference_observation_id``)."""
        return self.reference_observation_ids[-1] if self.reference_observation_ids else None


def detect_change(
    ws: Store,
    observation_id: str,
    *,
    reference_id: str | None = None,
    method: str | None = None,
) -> ChangeOutcome:
    """Compute the observation's change evidence and store its regions (see the module docstring);
    with ``reference_id`` or ``method`` (a change detector's registry name) a what-if comparison
    against that observation or by that method, not stored."""
    # Imported here: the evidence step loads the object detector and the store, which
    # `sitewatch change scene` (write_scene_change, no workspace) would pay for at every start.
    from sitewatch.pipeline.evidence import EvidenceOptions, SiteEvidence
    from sitewatch.pipeline.models import workspace_change_card

    observation = ws.observation(observation_id)
    observations = ws.observations(observation.site_id)
    reference = None
    if reference_id is not None:
        reference = ws.observation(reference_id)
        if reference.site_id != observation.site_id:
            raise UnsupportedInputError(
                f"reference {reference.id} is of site {reference.site_id!r}, the observation of "
                f"{observation.site_id!r}; choose a reference of the same site")
        if reference.id == observation.id:
            raise UnsupportedInputError(f"reference {reference.id} is the observation itself; choose an "
                                        "earlier observation of the site")
    what_if = reference is not None or method is not None
    site = ws.site(observation.site_id)
    options = EvidenceOptions(min_valid_fraction=ws.settings.min_valid_fraction, change_detector=method,
                              change_model=workspace_change_card(ws.root))
    step = SiteEvidence(site, observations, {scene.id: scene for scene in ws.scenes(site.id)}, ws.chip_path,
                        options)
    earlier = observations[:[o.id for o in observations].index(observation.id)]
    evidence = step.observe(observation, earlier, references=[reference] if reference is not None else None)
    if not what_if:
        ws.record_evidence(evidence.record())
    change = evidence.change
    if change is None:
        return ChangeOutcome(observation.id, (), step.detector.name, evidence.registration, 0, 0.0, "",
                             stored=not what_if, skipped=evidence.change_skipped, choice=step.choice)
    return ChangeOutcome(
        observation_id=observation.id,
        reference_observation_ids=change.reference_ids,
        detector=change.detector,
        registration=evidence.registration,
        regions=len(change.regions),
        changed_area_m2=change.changed_area_m2,
        operating_point=change.operating_point,
        stored=not what_if,
        bands=change.bands,
        choice=change.choice,
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
WRITES_QUEUED = 2
"""Windows waiting for the writer thread at most: the compute runs ahead of the writing by this much
and no more, so memory stays that of a few windows."""


def _write_window(sink: rasterio.io.DatasetWriter, part: WindowChange) -> tuple[int, int]:
    """Encode one window's result as the output's two bands and write it; (valid, changed) pixels."""
    result, valid = part.result, part.valid
    mask = result.mask.astype(np.uint8)
    percent = np.rint(result.probability * 100).astype(np.uint8)
    mask[~valid] = NODATA
    percent[~valid] = NODATA
    sink.write(np.stack([mask, percent]), window=part.window)
    return int(valid.sum()), int(result.mask.sum())


def write_scene_change(
    before: Path,
    after: Path,
    output: Path,
    *,
    detector: ChangeDetector | None = None,
    window: int = DEFAULT_WINDOW,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    aligned: bool = False,
) -> SceneChangeOutcome:
    """Compare two co-gridded rasters of any size and write a 2-band uint8 GeoTIFF: band 1 the mask
    (1 changed, 0 not), band 2 the change probability in percent; 255 where not valid.

    One shift and one radiometric map for the scene, then window by window
    (:mod:`sitewatch.analytics.change.scene`). Windows are encoded and written by a thread of
    their own while the next ones are computed (compressing the output would otherwise add a third
    to the run); deflate at level 1, which on these two bands costs a quarter of the CPU of the
    default level for a file about a quarter larger. The file is written under a temporary name and moved into
    place at the end, so a failed run leaves any earlier output as it was. ``aligned``: the pair is
    already co-registered, no shift is measured (:func:`plan_scene`).
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
        plan = plan_scene(first, second, aligned=aligned)
        profile = {
            "driver": "GTiff", "width": first.width, "height": first.height, "count": 2, "dtype": "uint8",
            "crs": first.crs, "transform": first.transform, "nodata": NODATA, "tiled": True,
            "blockxsize": 512, "blockysize": 512, "compress": "deflate", "zlevel": 1,
        }
        pixel_area = (None if gsd is None else abs(first.transform.a * first.transform.e)
                      if first.crs.is_projected else gsd * gsd)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    windows = valid_pixels = changed_pixels = 0
    rule = ""
    try:
        # The writer is shut down (its queue written) before the file is closed; only it touches the file.
        with rasterio.open(partial, "w", **profile) as sink, \
                ThreadPoolExecutor(1, thread_name_prefix="sitewatch-write") as writer:
            sink.set_band_description(1, f"change mask ({detector.name})")
            sink.set_band_description(2, "change probability, percent")
            queued: deque[Future[tuple[int, int]]] = deque()
            for part in scene_change(before, after, detector, window=window, workers=workers, plan=plan,
                                     progress=progress, bands=bands):
                queued.append(writer.submit(_write_window, sink, part))
                windows += 1
                rule = part.result.rule
                while len(queued) > WRITES_QUEUED or (queued and queued[0].done()):
                    valid, changed = queued.popleft().result()
                    valid_pixels += valid
                    changed_pixels += changed
            for write in queued:
                valid, changed = write.result()
                valid_pixels += valid
                changed_pixels += changed
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
