"""One observation's evidence, computed without touching the store.

:class:`SiteEvidence` looks at a site's observations one at a time, in time order, and returns
each one's :class:`Evidence`: the co-registration applied to its chip, its change against the
reference (the probability map the indicators read and the regions drawn from it), its
detections, and everything :func:`~sitewatch.analytics.indicators.extract_indicators` needs. It
reads chip files and nothing else; the caller stores the result, in one transaction
(:meth:`Evidence.record`). The monitor (:mod:`sitewatch.pipeline.monitor`) and
``sitewatch change observation`` (:mod:`sitewatch.pipeline.change`) both run it, so an
observation's stored change evidence is the same whichever ran last.

**What an observation's change evidence is** (one rule, both paths):

* every chip of the site is aligned to the site's *anchor*, its first observation showing at
  least :data:`REFERENCE_VALID` of the grid, unless co-registration refuses most of the first
  :attr:`SiteChips.PROBES` good observations after it (the site's chips are then compared as
  ingested, already on the site grid); a chip that refuses while the site's chips register is
  not compared (its misregistration would show as change);
* the reference is the per-pixel median of its ``reference_size`` (3) last earlier good
  observations whose chips align; until that many exist, change is not measured (a thinner
  composite is a different measurement);
* the observation is radiometrically matched to the reference and compared by the monitoring
  method (:func:`~sitewatch.analytics.change.choose_monitoring_detector`: ``contrast`` within its
  0.1-2 m range, else ``cva``), made for object-scale change date after date, which the
  indicators need;
* the regions are the connected changed pixels, split at zone borders; their
  ``reference_observation_id`` is the newest observation of the composite.

The general change map of one pair (``choose_change_method``: the learned model, segments, IR-MAD)
is what ``sitewatch change scene`` computes; ``sitewatch change observation --method NAME`` (any
method) or ``--reference ID`` runs this step as a what-if, shown and not stored as the
observation's evidence.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sitewatch.analytics.change import (
    ChangeDetector,
    choose_monitoring_detector,
    get_change_detector,
    input_bands,
    take_bands,
)
from sitewatch.analytics.change.regions import change_regions
from sitewatch.analytics.indicators import (
    MIN_VISIBLE_FOR_COUNTS,
    ObservationEvidence,
    ZoneMasks,
    extract_indicators,
    zone_masks,
)
from sitewatch.analytics.objects import ObjectDetector
from sitewatch.core.errors import UnsupportedInputError, ValidationError
from sitewatch.core.indicators import CHANGED_AREA
from sitewatch.core.types import ChangeRegion, Detection, IndicatorValue, Observation, Scene, Site
from sitewatch.imagery.chips import Chip, chip_grid, read_chip
from sitewatch.imagery.coregister import CoregistrationError, Registration, coregister
from sitewatch.imagery.radiometry import RadiometryError, fit_radiometry
from sitewatch.pipeline.detect import FoundDetections, detection_problem, find_detections
from sitewatch.pipeline.models import with_change_model
from sitewatch.store.records import EvidenceRecord

log = logging.getLogger(__name__)

REFERENCE_VALID = 0.7
"""Share of the grid an observation must show to anchor co-registration or join a reference."""

ChipPath = Callable[[Observation], Path]
"""Where an observation's chip file is (``Workspace.chip_path``)."""


@dataclass(frozen=True, slots=True, eq=False)
class AlignedChip:
    """A chip's pixels as float32 after co-registration to the site's anchor observation."""

    pixels: np.ndarray
    valid: np.ndarray
    bands: tuple[str, ...]
    registered: bool | None = None
    """True: aligned to the anchor; False: co-registration refused although the site's chips
    register (so comparing it would show misregistration as change); None: not attempted."""
    registration: Registration | None = None
    """The shift applied (None unless ``registered``)."""


class SiteChips:
    """Reads a site's chips and aligns each to the site's anchor once; keeps the last few in memory.

    The anchor is the site's first observation with a good view. Whether a site's chips are
    co-registered at all is decided from fixed data, the first ``PROBES`` good observations
    after the anchor: when co-registration refuses most of them, the site's chips are compared
    as ingested (already resampled to the site grid) and that is logged once. So a pass over new
    observations aligns them exactly as a full re-run would.
    """

    PROBES = 3

    def __init__(self, observations: Sequence[Observation], chip_path: ChipPath, *, size: int,
                 coregistration: bool) -> None:
        self.observations = tuple(observations)
        """Every observation of the site, in time order (the probes are taken from them)."""
        self.chip_path = chip_path
        self.size = size
        self.coregistration = coregistration
        self.anchor: AlignedChip | None = None
        self.registrable: bool | None = None
        self.chips: OrderedDict[str, AlignedChip] = OrderedDict()
        self._files: OrderedDict[str, Chip] = OrderedDict()
        """The last few chips as read from their files, for the object detector (one read, not two)."""

    FILES_KEPT = 3

    def read(self, observation: Observation) -> Chip:
        """The observation's chip as stored (not aligned); read once for alignment and detection."""
        if observation.id in self._files:
            return self._files[observation.id]
        chip = read_chip(self.chip_path(observation))
        self._files[observation.id] = chip
        while len(self._files) > self.FILES_KEPT:
            self._files.popitem(last=False)
        return chip

    def set_anchor(self, good: Sequence[Observation]) -> None:
        """Fix the anchor (``good[0]``) and probe co-registration on the next good observations."""
        if self.anchor is not None:
            return
        chip = self.read(good[0])
        self.anchor = AlignedChip(chip.array.astype(np.float32), chip.valid, chip.bands)

    def _probe(self) -> bool:
        """Whether most of the first good observations after the anchor register to it.

        One success in three is no evidence that the site's images register: where the landscape
        changes between dates (water, crops, season), tiles disagree on most dates, and treating each
        of those refusals as "not observed" would blind the monitor to most of the site; the
        georeferenced site grid is then the better alignment."""
        good = [o for o in self.observations if o.valid_fraction >= REFERENCE_VALID][1:1 + self.PROBES]
        registered = sum(self._align(observation) is not None for observation in good)
        if 2 * registered <= len(good):
            site_id = good[0].site_id if good else "?"
            log.warning("site %s: co-registration refused on %d of its first %d good observations; comparing "
                        "its chips as ingested on the site grid", site_id, len(good) - registered, len(good))
        return 2 * registered > len(good) or not good

    def _align(self, observation: Observation) -> AlignedChip | None:
        chip = self.read(observation)
        if self.anchor is None:
            return None
        try:
            pixels, valid, registration = coregister(
                self.anchor.pixels, chip.array.astype(np.float32), valid_reference=self.anchor.valid,
                valid_moving=chip.valid)
        except CoregistrationError as refusal:
            log.info("%s: not co-registered (%s)", observation.id, refusal)
            return None
        return AlignedChip(pixels, valid, chip.bands, registered=True, registration=registration)

    def get(self, observation: Observation) -> AlignedChip:
        if observation.id in self.chips:
            self.chips.move_to_end(observation.id)
            return self.chips[observation.id]
        aligned: AlignedChip | None = None
        if self.anchor is not None and self.coregistration:
            if self.registrable is None:
                self.registrable = self._probe()
            if self.registrable:
                aligned = self._align(observation)
        if aligned is None:
            chip = self.read(observation)
            refused = self.anchor is not None and self.coregistration and bool(self.registrable)
            aligned = AlignedChip(chip.array.astype(np.float32), chip.valid, chip.bands,
                                  registered=False if refused else None)
        self.chips[observation.id] = aligned
        while len(self.chips) > self.size:
            self.chips.popitem(last=False)
        return aligned


def reference_composite(chips: Sequence[AlignedChip]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel median of up to three chips over their valid pixels, and where any was valid.

    Three is enough to drop a car parked on one date, and a min/max network over three
    arrays costs a few element-wise passes, where a general median over millions of pixels
    costs seconds. Where one chip is invalid the larger of the other two is used; where two
    are, the remaining one.

    The passes run in place; when every chip sees every pixel (valid pixels are finite, so fmin and
    fmax are minimum and maximum) no NaN layers are made at all.
    """
    if not 1 <= len(chips) <= 3:
        raise UnsupportedInputError(f"a reference composite takes 1 to 3 chips, got {len(chips)}")
    valid = chips[0].valid.copy()
    every = chips[0].valid.copy()
    for chip in chips[1:]:
        valid |= chip.valid
        every &= chip.valid
    complete = bool(every.all())
    if complete:
        layers = [np.asarray(c.pixels, np.float32) for c in chips]
    else:
        layers = [np.where(c.valid, np.asarray(c.pixels, np.float32), np.float32(np.nan)) for c in chips]
    if len(layers) == 1:
        composite = layers[0].copy() if complete else layers[0]
    elif len(layers) == 2:
        composite = np.add(layers[0], layers[1])
        composite *= np.float32(0.5)
        if not complete:
            np.copyto(composite, np.fmax(layers[0], layers[1]), where=np.isnan(composite))
    else:
        composite = np.fmin(layers[0], layers[1])
        high = np.fmax(layers[0], layers[1])
        np.fmin(high, layers[2], out=high)
        np.fmax(composite, high, out=composite)
    if not complete:
        np.nan_to_num(composite, copy=False, nan=0.0)
    return composite, valid


def _match_radiometry(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``after`` mapped onto ``before``'s radiometry, fitted on every 4th pixel (16 times faster)."""
    try:
        fit = fit_radiometry(before[:, ::4, ::4], after[:, ::4, ::4], valid=valid[::4, ::4])
    except RadiometryError as problem:
        log.info("radiometry left as is (%s)", problem)
        return after
    return fit.apply(after)


@dataclass(frozen=True, slots=True, eq=False)
class ChangeEvidence:
    """The observation compared with its reference composite."""

    reference_ids: tuple[str, ...]
    """The observations of the reference composite, oldest first."""
    detector: str
    choice: str
    """Why this detector (the monitoring rule's reason, or that it was named)."""
    bands: tuple[str, ...]
    """The chip's bands the detector was given, by name."""
    operating_point: str
    regions: tuple[ChangeRegion, ...]
    """Connected changed pixels, split at zone borders; empty when they could not be drawn
    (``regions_problem``): the indicators read the probability map itself."""
    regions_problem: str | None = None

    @property
    def changed_area_m2(self) -> float:
        return float(sum(r.area_m2 for r in self.regions))


@dataclass(frozen=True, slots=True, eq=False)
class Evidence:
    """What the detectors saw in one observation."""

    observation: Observation
    measured: ObservationEvidence
    """What the indicators need (pixels on the site grid; None fields: not measured)."""
    masks: ZoneMasks
    registration: Registration | None = None
    """The shift applied to the chip; None when it is compared as ingested (or refused)."""
    looked: bool = False
    """Whether the chip was read at all (a view too clouded for anything is not)."""
    change: ChangeEvidence | None = None
    change_skipped: str | None = None
    """Why change was not measured, when it was not."""
    detections: tuple[Detection, ...] | None = None
    """None: the object detector was not asked; empty with ``detection_skipped``: it could not look."""
    detection_classes: tuple[str, ...] = ()
    detection_skipped: str | None = None

    def indicators(self, site: Site, *, min_visible_fraction: float) -> list[IndicatorValue]:
        """The zone indicators of this evidence; "not observed" rows when nothing was measurable, so
        the observation counts as done."""
        values = extract_indicators(site, self.observation, self.masks, self.measured,
                                    min_visible_fraction=min_visible_fraction)
        if not values:
            values = [IndicatorValue(self.observation.id, site.id, zone_id, CHANGED_AREA.name, None, 0.0,
                                     self.observation.acquired) for zone_id in self.masks.zone_ids]
        return values

    def record(self, *, indicators: Sequence[IndicatorValue] | None = None) -> EvidenceRecord:
        """What to store for this observation, in one transaction: the shift applied to its chip (when
        it was read), its change regions (none when change was not measured), its detections (when
        the detector was asked) and ``indicators`` (when given)."""
        shift, confidence = ((self.registration.shift, self.registration.confidence) if self.registration
                             else ((0.0, 0.0), None))
        return EvidenceRecord(
            observation_id=self.observation.id,
            registration=(shift, confidence) if self.looked else None,
            change_regions=self.change.regions if self.change is not None else (),
            detections=self.detections,
            indicators=tuple(indicators) if indicators is not None else None,
        )


@dataclass(frozen=True, slots=True)
class EvidenceOptions:
    """How a site's observations are looked at; the defaults are the monitor's."""

    min_valid_fraction: float
    """Share of the grid an observation must show for change (the workspace's setting)."""
    reference_size: int = 3
    """Earlier good observations in the reference composite (1 to 3)."""
    coregistration: bool = True
    change_detector: str | None = None
    """Registry name of a change detector; None: the monitoring rule for the site's GSD."""
    change_model: Path | None = None
    """Card of a change model fine-tuned for the workspace, run by a learned detector named here
    (:func:`~sitewatch.pipeline.models.with_change_model`); None: the shipped model."""

    def __post_init__(self) -> None:
        if not isinstance(self.reference_size, int) or not 1 <= self.reference_size <= 3:
            raise ValidationError("EvidenceOptions", "reference_size",
                                  f"{self.reference_size!r} must be 1, 2 or 3")


class SiteEvidence:
    """Computes one site's evidence observation by observation (see the module docstring).

    ``observations`` are every observation of the site in time order, ``scenes`` the site's scenes
    by id (their GSD and view angle), ``known_detections`` the stored detections of earlier
    observations that may serve as a reference (those computed here are remembered as they come);
    ``object_detector`` None means no object detection. Nothing here writes anywhere.
    """

    def __init__(self, site: Site, observations: Sequence[Observation], scenes: Mapping[str, Scene],
                 chip_path: ChipPath, options: EvidenceOptions, *,
                 object_detector: ObjectDetector | None = None,
                 known_detections: Mapping[str, Sequence[Detection]] | None = None) -> None:
        self.site = site
        self.scenes = scenes
        self.chip_path = chip_path
        self.options = options
        self.object_detector = object_detector
        self.known_detections = {key: tuple(value) for key, value in (known_detections or {}).items()}
        self.detector: ChangeDetector
        if self.options.change_detector:
            self.detector = with_change_model(get_change_detector(self.options.change_detector),
                                              self.options.change_model)
            self.choice = "named by the caller"
        else:
            self.detector, self.choice = choose_monitoring_detector(site.gsd)
        self.chips = SiteChips(observations, chip_path, size=2 * self.options.reference_size + 1,
                               coregistration=self.options.coregistration)
        self._masks: ZoneMasks | None = None

    def masks(self, observation: Observation) -> ZoneMasks:
        """Zone masks on the grid the site's chips were written on (read from a chip, once)."""
        if self._masks is None:
            self._masks = zone_masks(self.site, chip_grid(self.chip_path(observation)))
        return self._masks

    def _references(self, good: Sequence[Observation]) -> list[Observation]:
        """The last ``reference_size`` of ``good`` whose chips align (among the last twice as many)."""
        size = self.options.reference_size
        references: list[Observation] = []
        for candidate in reversed(good[-2 * size:]):
            if len(references) == size:
                break
            if self.chips.get(candidate).registered is not False:
                references.insert(0, candidate)
        return references

    def observe(self, observation: Observation, earlier: Sequence[Observation], *,
                references: Sequence[Observation] | None = None) -> Evidence:
        """The evidence of ``observation`` given the site's ``earlier`` observations (time order).

        ``references`` replaces the rule's reference composite with up to three observations of the
        site: a what-if comparison, not the observation's change evidence.
        """
        masks = self.masks(observation)
        valid = observation.valid_fraction
        change = valid >= self.options.min_valid_fraction
        if not (change or (self.object_detector is not None and valid >= MIN_VISIBLE_FOR_COUNTS)):
            # Too clouded for anything, not even a gap in the clouds to count vehicles through.
            nothing = ObservationEvidence(valid=np.zeros(masks.shape, bool), gsd=self.site.gsd)
            return Evidence(observation, nothing, masks, change_skipped=self._too_clouded(valid))
        scene = self.scenes[observation.scene_id]
        # Objects are counted in a thread while the chips are aligned and the change is measured here:
        # onnxruntime releases the GIL, so the detector's threads and this one's numpy share the cores
        # instead of taking turns (the same results).
        with ThreadPoolExecutor(1, thread_name_prefix="sitewatch-detect") as counter:
            counting = self._start_detections(counter, observation, scene)
            good = [o for o in earlier if o.valid_fraction >= REFERENCE_VALID]
            if good:
                self.chips.set_anchor(good)
            chip = self.chips.get(observation)
            # Detections alone need no reference: do not read or align any.
            chosen = list(references) if references is not None else self._references(good) if change else []
            return self._observe(observation, scene, chip, chosen, masks, counting, change=change,
                                 named=references is not None)

    def _observe(self, observation: Observation, scene: Scene, chip: AlignedChip, chosen: list[Observation],
                 masks: ZoneMasks, counting: Future[FoundDetections] | None, *, change: bool,
                 named: bool) -> Evidence:
        why = self._not_compared(observation, chip, chosen, change=change, named=named)
        if why is not None:
            detections, classes, skipped, previous = self._detections(counting, observation, chosen, masks)
            measured = ObservationEvidence(valid=chip.valid, gsd=scene.gsd, detections=detections,
                                           detection_classes=classes, off_nadir=scene.off_nadir)
            return Evidence(observation, measured, masks, registration=chip.registration, looked=True,
                            change_skipped=why, detections=detections, detection_classes=classes,
                            detection_skipped=skipped)
        before, before_valid = reference_composite([self.chips.get(o) for o in chosen])
        valid_pixels = chip.valid & before_valid
        after = _match_radiometry(before, chip.pixels, valid_pixels)
        read = input_bands(self.detector, chip.bands)  # an RGB-only method gets RGB, by name
        result = self.detector(take_bands(before, read), take_bands(after, read), valid=valid_pixels)
        by_zone = dict(zip(masks.zone_ids, masks.masks, strict=True)) if self.site.zones else None
        problem = None
        try:
            regions: tuple[ChangeRegion, ...] = tuple(change_regions(
                result, masks.transform, observation_id=observation.id,
                reference_observation_id=chosen[-1].id, zone_masks=by_zone,
            ))
        except ValidationError as error:
            # Regions are for display; the indicators come from the probability map itself.
            log.warning("%s: change regions not drawn (%s)", observation.id, error)
            regions, problem = (), str(error)
        detections, classes, skipped, previous = self._detections(counting, observation, chosen, masks)
        measured = ObservationEvidence(
            valid=valid_pixels,
            gsd=scene.gsd,
            change_probability=result.probability,
            detections=detections,
            detection_classes=classes,
            reference_detections=previous,
            brightness_change=(after - before).mean(axis=0),
            bands={name.lower(): after[i] for i, name in enumerate(chip.bands)},
            off_nadir=scene.off_nadir,  # no haze term: ingest masked the clouds themselves
        )
        compared = ChangeEvidence(
            reference_ids=tuple(o.id for o in chosen), detector=self.detector.name, choice=self.choice,
            bands=tuple(chip.bands[b] for b in read), operating_point=result.rule, regions=regions,
            regions_problem=problem,
        )
        return Evidence(observation, measured, masks, registration=chip.registration, looked=True,
                        change=compared, detections=detections, detection_classes=classes,
                        detection_skipped=skipped)

    def _not_compared(self, observation: Observation, chip: AlignedChip, references: Sequence[Observation],
                      *, change: bool, named: bool) -> str | None:
        """Why ``observation`` is not compared with ``references``; None when it is.

        Change against a thinner composite is not the same measurement, and a chip that would not
        co-register (or a reference that would not) would show its misregistration as change: not
        observed, which is not "no change"."""
        if not change:
            return self._too_clouded(observation.valid_fraction)
        if chip.registered is False:
            return f"{observation.id} did not co-register to its site's anchor"
        if named:
            if not references:
                return "no reference observation given"
            refused = [o.id for o in references if self.chips.get(o).registered is False]
            if refused:
                return f"reference {', '.join(refused)} did not co-register to its site's anchor"
            return None
        if len(references) < self.options.reference_size:
            return (f"{len(references)} earlier observation(s) showing {REFERENCE_VALID:.0%} of the grid and "
                    f"co-registered; the reference composite needs {self.options.reference_size}")
        return None

    def _too_clouded(self, valid: float) -> str:
        return (f"{valid:.0%} of the site grid observed, under the workspace's min_valid_fraction "
                f"{self.options.min_valid_fraction:.0%}")

    def _start_detections(self, counter: ThreadPoolExecutor, observation: Observation,
                          scene: Scene) -> Future[FoundDetections] | None:
        """The object detector run on the observation's chip in ``counter``'s thread (None without one);
        the chip is read here, so the thread touches none of this object's state."""
        if self.object_detector is None:
            return None
        path = self.chip_path(observation)
        return counter.submit(find_detections, self.site, observation, self.chips.read(observation),
                              chip_grid(path), image_gsd=scene.gsd, detector=self.object_detector)

    def _detections(
        self, counting: Future[FoundDetections] | None, observation: Observation,
        references: Sequence[Observation], masks: ZoneMasks,
    ) -> tuple[tuple[Detection, ...] | None, tuple[str, ...], str | None, tuple[Detection, ...] | None]:
        """(detections, classes looked for, why skipped, the last reference's detections) of the run
        :meth:`_start_detections` started."""
        if counting is None or self.object_detector is None:
            return None, (), None, None
        found = counting.result()
        if found.summary.skipped is not None:
            # Objects the detector cannot resolve are not observed: no counts, not zero counts.
            log.info("%s: object detection skipped: %s", observation.id, found.summary.skipped)
            return (), (), found.summary.skipped, None
        self.known_detections[observation.id] = found.detections
        previous = None
        last = references[-1] if references else None
        # A reference the detector could not look at has no boxes, which is not "no structures".
        if last is not None and detection_problem(
                self.object_detector.info, grid_gsd=abs(masks.transform.a),
                image_gsd=self.scenes[last.scene_id].gsd, bands=self.chips.get(last).bands) is None:
            previous = self.known_detections.get(last.id, ())
        return found.detections, found.summary.classes, None, previous
