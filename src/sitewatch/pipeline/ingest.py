"""Ingest images into a workspace: describe each, cut a chip per covered site, store all at once.

Per file: :func:`~sitewatch.imagery.readers.inspect_image` → skip when the scene is stored →
the catalog sites whose outline meets the footprint → per site a chip on the site grid, written
to the workspace's staging folder → :meth:`Workspace.add_scene` records the scene and its
observations and moves the chips in one transaction. A bad file is reported and the batch goes
on; nothing of a failed file stays in the store.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from rasterio.errors import RasterioError

from sitewatch.core.errors import (
    ImageryError,
    NoSiteCoverageError,
    NoValidPixelsError,
    SitewatchError,
    ValidationError,
)
from sitewatch.core.parallel import Scheduler, run_jobs
from sitewatch.core.types import Observation, Scene, Site
from sitewatch.imagery.chips import Chip, extract_chip, write_chip
from sitewatch.imagery.clouds import cloud_mask
from sitewatch.imagery.errors import MissingAcquisitionTimeError
from sitewatch.imagery.grid import site_grid
from sitewatch.imagery.readers import (
    DEFAULT_LIMITS,
    SCENE_ID_LENGTH,
    ImageLimits,
    ImageSource,
    band_names,
    footprint_lonlat,
    given_band_names,
    ground_sample_distance,
    inspect_image,
    open_image,
    remote_href,
    sha256_file,
)
from sitewatch.imagery.stac import StacAssetRef, StacEntry, StacProblem, StacQuery, stac_entries, union_area
from sitewatch.pipeline.tasks import WorkspaceTarget
from sitewatch.store import chip_relpath
from sitewatch.store.chips import CHIP_PROBLEM, chip_problem
from sitewatch.store.protocol import Store
from sitewatch.store.records import SourceCursor

log = logging.getLogger(__name__)

FINAL_FAILURES = (NoSiteCoverageError, NoValidPixelsError)
"""Failures of an item read whole that reading it again cannot change: the cursor moves past them."""

RASTER_SUFFIXES = frozenset({
    ".tif", ".tiff", ".gtif", ".gtiff", ".jp2", ".j2k", ".jpx", ".img", ".vrt", ".ntf", ".nitf",
    ".dat", ".bsq", ".bil", ".bip", ".envi",
})
"""File suffixes taken as rasters when a folder is expanded (case-insensitive)."""
SIDECAR_SUFFIXES = frozenset({
    ".hdr", ".ovr", ".aux", ".xml", ".json", ".geojson", ".msk", ".md", ".txt", ".imd", ".rpb", ".til",
    ".tfw", ".tifw", ".j2w", ".wld", ".prj", ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".html", ".csv",
})
"""Suffixes of files beside rasters (headers, overviews, metadata, quick-looks) never ingested."""


class FileStatus(StrEnum):
    """What ingest did with one file."""

    INGESTED = "ingested"
    SKIPPED = "skipped"
    REPAIRED = "repaired"
    """Already stored, and its missing or corrupt chips were recreated from it."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """The result of one file."""

    path: Path | str
    """The file, or for STAC the asset's URL (the item's when no asset was chosen)."""
    status: FileStatus
    message: str
    """Why it was skipped or failed (names the file, or the item and asset), or a short summary."""
    scene_id: str | None = None
    site_ids: tuple[str, ...] = ()
    """Sites that got an observation (ingested only)."""
    final: bool = False
    """Failed for a reason that reading it again will not change (its pixels miss every site)."""


@dataclass(frozen=True, slots=True)
class IngestReport:
    """Per-file outcomes of one ingest run, in the order the files were processed."""

    outcomes: tuple[FileOutcome, ...] = field(default_factory=tuple)

    def _with(self, status: FileStatus) -> tuple[FileOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is status)

    @property
    def ingested(self) -> tuple[FileOutcome, ...]:
        return self._with(FileStatus.INGESTED)

    @property
    def skipped(self) -> tuple[FileOutcome, ...]:
        return self._with(FileStatus.SKIPPED)

    @property
    def repaired(self) -> tuple[FileOutcome, ...]:
        return self._with(FileStatus.REPAIRED)

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return self._with(FileStatus.FAILED)

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (paths as strings)."""
        return {
            "ingested": len(self.ingested),
            "skipped": len(self.skipped),
            "repaired": len(self.repaired),
            "failed": len(self.failed),
            "files": [
                {"path": str(o.path), "status": o.status.value, "message": o.message,
                 "scene_id": o.scene_id, "sites": list(o.site_ids)}
                for o in self.outcomes
            ],
        }


ProgressCallback = Callable[[Path, int, int, FileOutcome | None], None]
"""``progress(path, index, total, outcome)``: called with ``outcome=None`` before a file, then with it."""
StacProgressCallback = Callable[[str, int, int, FileOutcome | None], None]
"""The same for STAC: ``progress(href, ...)`` with the asset's URL (the item's label when it is bad)."""
RepairProgressCallback = Callable[[Path | str, int, int, FileOutcome | None], None]
"""The same for repairs: the scene's file, or its STAC asset's URL."""


def _is_sidecar(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".aux.xml", ".stac.json")) or path.suffix.lower() in SIDECAR_SUFFIXES


def _has_envi_header(path: Path) -> bool:
    """True for ENVI data files: ``x`` or ``x.dat`` with ``x.hdr`` (any case) beside them."""
    stems = {path.name.lower(), path.stem.lower()}
    try:
        siblings = path.parent.iterdir()
        return any(s.suffix.lower() == ".hdr" and s.stem.lower() in stems for s in siblings)
    except OSError:
        return False


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files to ingest: files as given, folders searched recursively for rasters (sorted).

    Inside folders, a file counts as a raster when its suffix is in :data:`RASTER_SUFFIXES` or it
    is an ENVI data file with a ``.hdr`` beside it; sidecars (``.hdr``, ``.aux.xml``, ``.ovr``,
    ``.json``, quick-look JPEGs, ...) are left out. A path given twice is ingested once.
    """
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for candidate in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in candidate.relative_to(path).parts):
                    continue  # hidden folders and files (.git, .staging, ...)
                if _is_sidecar(candidate):
                    continue
                if candidate.suffix.lower() in RASTER_SUFFIXES or _has_envi_header(candidate):
                    found.append(candidate)
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def covered_sites(scene: Scene, sites: Sequence[Site]) -> list[Site]:
    """Sites whose outline intersects the scene footprint (touching edges do not count)."""
    return [site for site in sites if site.geometry.intersects(scene.footprint)
            and site.geometry.intersection(scene.footprint).area > 0]


def ingest(workspace: Store, paths: Sequence[Path], *, acquired: datetime | None = None,
           sensor: str | None = None, bands: Sequence[str] | None = None,
           progress: ProgressCallback | None = None, scheduler: Scheduler | None = None,
           shared_folder: str | None = None) -> IngestReport:
    """Ingest ``paths`` (files or folders) into ``workspace``; returns what happened to each file.

    ``acquired``, ``sensor`` and ``bands`` (band names in file order, e.g. red, green, blue, nir)
    apply to every file and win over what the files say; the scene and its chips keep the names,
    which is how RGB-only steps find red, green and blue, and the vegetation index red and nir,
    in files that do not name their bands. Files that fail are reported in the result, never
    raised, so one bad file does not stop a batch.

    ``scheduler`` (default: in this process) ingests the files side by side, one dask task per file
    that opens the workspace itself (``shared_folder``: the folder as its workers mount it); each
    scene is stored in one transaction under its unique id, so a file whose worker was lost is
    simply ingested again by another.
    """
    files = expand_paths(paths)
    if scheduler is not None and not scheduler.in_process:
        return _ingest_in_tasks(WorkspaceTarget.of(workspace, shared_folder), files, scheduler,
                                acquired=acquired, sensor=sensor, bands=bands, progress=progress)
    sites = workspace.sites()
    limits = image_limits(workspace)
    outcomes: list[FileOutcome] = []
    for index, path in enumerate(files):
        if progress is not None:
            progress(path, index, len(files), None)
        outcome = _ingest_file(workspace, path, sites, acquired=acquired, sensor=sensor, bands=bands,
                               limits=limits)
        log.info("%s: %s", outcome.status.value, outcome.message)
        outcomes.append(outcome)
        if progress is not None:
            progress(path, index, len(files), outcome)
    return IngestReport(tuple(outcomes))


def _ingest_task(target: WorkspaceTarget, path: Path, acquired: datetime | None, sensor: str | None,
                 bands: Sequence[str] | None, report: Callable[[object], None]) -> FileOutcome:
    """One file's ingest in a dask task, with its own connection to the store."""
    with target.open() as workspace:
        return _ingest_file(workspace, path, workspace.sites(), acquired=acquired, sensor=sensor, bands=bands,
                            limits=image_limits(workspace))


def _ingest_in_tasks(target: WorkspaceTarget, files: Sequence[Path], scheduler: Scheduler, *,
                     acquired: datetime | None, sensor: str | None, bands: Sequence[str] | None,
                     progress: ProgressCallback | None) -> IngestReport:
    finished = 0

    def done(index: int, outcome: FileOutcome) -> None:
        nonlocal finished
        log.info("%s: %s", outcome.status.value, outcome.message)
        if progress is not None:  # as in-process: the file named, then its outcome
            progress(files[index], finished, len(files), None)
            progress(files[index], finished, len(files), outcome)
        finished += 1

    jobs = [(target, path.resolve(), acquired, sensor, bands) for path in files]
    outcomes = run_jobs(_ingest_task, jobs, scheduler,
                        names=[f"ingest-{path.name}" for path in files], on_done=done)
    return IngestReport(tuple(outcomes))


def _ingest_file(workspace: Store, path: Path, sites: Sequence[Site], *, acquired: datetime | None,
                 sensor: str | None, bands: Sequence[str] | None, limits: ImageLimits) -> FileOutcome:
    try:
        # Checked before reading tags: re-ingesting a stored file must not need --acquired again.
        checksum = sha256_file(path) if path.is_file() else None
        if checksum is not None and workspace.has_scene(checksum[:SCENE_ID_LENGTH]):
            return _repair_scene(workspace, path, workspace.scene(checksum[:SCENE_ID_LENGTH]))
        scene = inspect_image(path, acquired=acquired, sensor=sensor, checksum=checksum, bands=bands,
                              limits=limits)
        site_ids = _store_scene(workspace, path, scene, sites, limits)
    except Exception as error:  # any failure of one file (a crafted header, a bug) is that file's, reported
        if not isinstance(error, SitewatchError | RasterioError | OSError):
            log.warning("%s: unexpected %s while ingesting", path, type(error).__name__, exc_info=True)
        return FileOutcome(path, FileStatus.FAILED, _naming(path, str(error) or type(error).__name__))
    if site_ids is None:
        return FileOutcome(path, FileStatus.SKIPPED, f"{path}: already ingested (scene {scene.id})",
                           scene_id=scene.id)
    return FileOutcome(path, FileStatus.INGESTED,
                       f"{path}: scene {scene.id} over {', '.join(site_ids)}",
                       scene_id=scene.id, site_ids=tuple(site_ids))


def _without_clouds(chip: Chip, gsd: float) -> Chip:
    """``chip`` with opaque cloud masked out of its valid pixels (kept in the file, for display)."""
    clouds = cloud_mask(chip.array, chip.valid, chip.bands, gsd)
    if not clouds.any():
        return chip
    return Chip(array=chip.array, valid=chip.valid & ~clouds, bands=chip.bands)


def _store_scene(workspace: Store, path: ImageSource, scene: Scene, sites: Sequence[Site],
                 limits: ImageLimits, *, cursor: SourceCursor | None = None) -> list[str] | None:
    """Cut, stage and record the chips of ``scene``; the site ids stored, or None if already stored."""
    covered = covered_sites(scene, sites)
    if not covered:
        west, south, east, north = scene.footprint.bounds
        raise NoSiteCoverageError(
            f"{path}: its footprint (lon {west:.5f}..{east:.5f}, lat {south:.5f}..{north:.5f}) covers "
            f"none of the workspace's {len(sites)} site(s); add a site there (`sitewatch sites add FILE`) "
            "or check the image's georeferencing"
        )
    staging = workspace.staging_dir()
    staged: list[tuple[Observation, Path]] = []
    refused: list[SitewatchError] = []
    try:
        for site in covered:
            try:  # a problem with one site (an absurd grid) never blocks another site's chip
                grid = site_grid(site)
            except SitewatchError as error:
                log.warning("%s: no chip for site %s: %s", path, site.id, error)
                refused.append(error)
                continue
            chip = extract_chip(path, grid, bands=scene.bands, limits=limits)
            if chip.valid_fraction <= 0.0:
                log.info("%s: no valid pixels over site %s; no observation for it", path, site.id)
                continue
            chip = _without_clouds(chip, grid.gsd)
            observation_id = f"{site.id}-{scene.id}"
            chip_file = staging / f"{observation_id}.{uuid.uuid4().hex[:8]}.tif"
            try:
                write_chip(chip, grid, chip_file)
                checksum = sha256_file(chip_file)  # kept so `sitewatch check` can tell a chip is whole
            except BaseException:
                chip_file.unlink(missing_ok=True)
                raise
            staged.append((
                Observation(
                    id=observation_id,
                    site_id=site.id,
                    scene_id=scene.id,
                    acquired=scene.acquired,
                    chip_path=chip_relpath(site.id, observation_id),
                    valid_fraction=chip.valid_fraction,
                    chip_sha256=checksum,
                ),
                chip_file,
            ))
        if not staged and refused:
            raise refused[0]
        if not staged:
            names = ", ".join(site.id for site in covered)
            raise NoValidPixelsError(
                f"{path}: the footprint covers site(s) {names} but every pixel over them is nodata, "
                "masked or NaN; check the image's nodata value and mask (gdalinfo -stats)"
            )
        stored = workspace.add_scene(scene, staged, cursor=cursor)
    finally:
        for _, chip_file in staged:
            chip_file.unlink(missing_ok=True)  # moved by add_scene on success; a leftover otherwise
    return [observation.site_id for observation, _ in staged] if stored else None


def image_limits(workspace: Store) -> ImageLimits:
    """The largest image header ``workspace``'s settings let ingest read."""
    return ImageLimits(max_bands=workspace.settings.max_image_bands,
                       max_pixels=workspace.settings.max_image_pixels)


def ingest_stac(workspace: Store, source: str, *, site_ids: Sequence[str] = (),
                since: datetime | None = None, until: datetime | None = None,
                collections: Sequence[str] = (), max_cloud: float | None = None,
                max_off_nadir: float | None = None, max_gsd: float | None = None,
                progress: StacProgressCallback | None = None, cursor: SourceCursor | None = None,
                late: timedelta = timedelta(0),
                should_stop: Callable[[], bool] | None = None) -> IngestReport:
    """Ingest the items of the STAC ``source`` (API URL, ``catalog.json`` or ItemCollection) over the
    workspace's sites (or only ``site_ids``) that pass the filters.

    Per item, one asset (:func:`~sitewatch.imagery.stac.choose_asset`) is read, and of it only the
    windows over the sites. The scene keeps the item's time, sensor, GSD, angles, cloud cover, licence
    and attribution, and its id, collection, self link and asset. An asset already stored (same
    collection, item id and href) is skipped without being opened; a bad item or asset fails alone,
    named, and the batch goes on. Raises :class:`~sitewatch.imagery.stac.StacSourceError` only when
    the source itself cannot be read.

    With ``cursor`` (`sitewatch watch`), items are read in time order from the cursor on, and the
    cursor moves past each item done, in the transaction that stores its scene (see
    :func:`_advance`); ``should_stop()`` is asked before each item, and a true answer ends the run
    there (the report then holds the items done). Items acquired up to ``late`` before the cursor are
    looked for again, first (a provider may publish an item after later ones): those stored already
    are skipped unopened, the others ingested, and the cursor stays where it is.
    """
    sites = [workspace.site(site_id) for site_id in site_ids] if site_ids else workspace.sites()
    if late < timedelta(0):
        raise ValidationError("ingest_stac", "late", f"{late} must not be negative")
    if cursor is not None and cursor.until is not None:
        start = cursor.until - late
        since = start if since is None else max(since, start)
    query = StacQuery(area=union_area([site.geometry for site in sites]), since=since, until=until,
                      collections=tuple(collections), max_cloud=max_cloud, max_off_nadir=max_off_nadir,
                      max_gsd=max_gsd)
    entries = list(stac_entries(source, query))
    # (entry, late): with a cursor, the items it is past (looked for again within ``late``) first
    plan = [(entry, False) for entry in entries]
    if cursor is not None:
        ordered = sorted(entries, key=_time_order)
        again = [entry for entry in ordered if _behind(entry, cursor)] if late > timedelta(0) else []
        plan = [*((entry, True) for entry in again),
                *((entry, False) for entry in ordered if not _behind(entry, cursor))]
    limits = image_limits(workspace)
    outcomes: list[FileOutcome] = []
    held = False  # once an item fails for a reason that may pass, the cursor stays before it
    for index, (entry, is_late) in enumerate(plan):
        if should_stop is not None and should_stop():
            break
        where = entry.href if isinstance(entry, StacAssetRef) else entry.label
        if progress is not None:
            progress(where, index, len(plan), None)
        if is_late and isinstance(entry, StacAssetRef):  # the cursor stays where it is
            outcome = _ingest_asset(workspace, entry, sites, limits)
            if outcome.status is not FileStatus.SKIPPED:  # stored before: nothing to report
                log.info("late item %s (acquired %s, before the cursor): %s: %s", _cursor_key(entry),
                         entry.metadata.acquired, outcome.status.value, outcome.message)
                outcomes.append(outcome)
            if progress is not None:
                progress(where, index, len(plan), outcome)
            continue
        moved = None if cursor is None or held or isinstance(entry, StacProblem) else _advance(cursor, entry)
        if isinstance(entry, StacProblem):
            outcome = FileOutcome(entry.label, FileStatus.FAILED, entry.message)
        else:
            outcome = _ingest_asset(workspace, entry, sites, limits, cursor=moved)
        if cursor is not None and moved is not None:
            if outcome.status is FileStatus.INGESTED or outcome.status is FileStatus.SKIPPED or (
                    outcome.status is FileStatus.FAILED and outcome.final):
                if outcome.status is not FileStatus.INGESTED:  # an ingested scene saved it already
                    workspace.save_watch_cursor(moved)
                cursor = moved
            else:
                held = True
        elif cursor is not None:
            held = True
        log.info("%s: %s", outcome.status.value, outcome.message)
        outcomes.append(outcome)
        if progress is not None:
            progress(where, index, len(plan), outcome)
    return IngestReport(tuple(outcomes))


def _time_order(entry: StacEntry) -> tuple[datetime, str]:
    if isinstance(entry, StacAssetRef) and entry.metadata.acquired is not None:
        return entry.metadata.acquired, _cursor_key(entry)
    return datetime.min.replace(tzinfo=UTC), entry.label  # problems first: they hold the cursor early


def _cursor_key(ref: StacAssetRef) -> str:
    return f"{ref.collection or ''}/{ref.item_id}"


def _behind(entry: StacEntry, cursor: SourceCursor) -> bool:
    """True for an item the cursor is past already."""
    if cursor.until is None or not isinstance(entry, StacAssetRef) or entry.metadata.acquired is None:
        return False
    acquired = entry.metadata.acquired
    return acquired < cursor.until or (acquired == cursor.until and _cursor_key(entry) in cursor.item_ids)


def _advance(cursor: SourceCursor, ref: StacAssetRef) -> SourceCursor | None:
    """The cursor once ``ref`` is done: items are read in time order, so it moves to the item's time
    (keeping the ids done at that time, for items that share it). Items that cannot be placed in
    time, items that fail for a reason that may pass (a server down, a read cut short) and every item
    after them in the run leave it where it is: the next run reads them again, and the ones stored
    meanwhile are skipped without being opened."""
    acquired = ref.metadata.acquired
    if acquired is None:
        return None
    if cursor.until is not None and acquired == cursor.until:
        return replace(cursor, item_ids=(*cursor.item_ids, _cursor_key(ref)))
    return replace(cursor, until=acquired, item_ids=(_cursor_key(ref),))


def _ingest_asset(workspace: Store, ref: StacAssetRef, sites: Sequence[Site],
                  limits: ImageLimits, *, cursor: SourceCursor | None = None) -> FileOutcome:
    scene_id = ref.key_digest[:SCENE_ID_LENGTH]
    if workspace.has_scene(scene_id):
        return FileOutcome(ref.href, FileStatus.SKIPPED, f"{ref.label}: already ingested (scene {scene_id})",
                           scene_id=scene_id)
    try:
        scene = stac_scene(ref, limits)
        site_ids = _store_scene(workspace, ref.href, scene, sites, limits, cursor=cursor)
    except Exception as error:  # one item's failure, whatever it is, never stops the batch
        message = str(error)
        if ref.href in message:
            message = message.replace(ref.href, ref.label, 1)
        else:
            message = f"{ref.label}: {message}"
        return FileOutcome(ref.href, FileStatus.FAILED, message,
                           final=isinstance(error, FINAL_FAILURES))
    if site_ids is None:
        return FileOutcome(ref.href, FileStatus.SKIPPED, f"{ref.label}: already ingested (scene {scene_id})",
                           scene_id=scene_id)
    return FileOutcome(ref.href, FileStatus.INGESTED,
                       f"{ref.label}: scene {scene.id} over {', '.join(site_ids)}",
                       scene_id=scene.id, site_ids=tuple(site_ids))


def stac_scene(ref: StacAssetRef, limits: ImageLimits | None = None) -> Scene:
    """The :class:`Scene` of a STAC asset: grid, footprint and GSD from the raster's header (what the
    pixels really are), time and provenance from the item."""
    meta = ref.metadata
    with open_image(ref.href, limits or DEFAULT_LIMITS) as dataset:
        footprint = footprint_lonlat(dataset, ref.href)
        gsd = ground_sample_distance(dataset, ref.href)
        crs_text = dataset.crs.to_string()
        bands = (given_band_names(ref.bands, dataset.count, ref.href) if ref.bands is not None
                 else band_names(dataset))
        width, height = dataset.width, dataset.height
    if meta.acquired is None:  # stac_entries reports items without a time as problems
        raise MissingAcquisitionTimeError(f"{ref.label}: the item has no datetime; fix the item")
    digest = ref.key_digest
    return Scene(
        id=digest[:SCENE_ID_LENGTH], uri=ref.href, sensor=meta.sensor or "unknown", acquired=meta.acquired,
        gsd=gsd, crs=crs_text, footprint=footprint, bands=bands, width=width, height=height, checksum=digest,
        cloud_cover=meta.cloud_cover, off_nadir=meta.off_nadir, license=meta.license,
        attribution=meta.attribution, sun_elevation=meta.sun_elevation, sun_azimuth=meta.sun_azimuth,
        stac_item=ref.item_id, stac_collection=ref.collection, stac_href=ref.item_href,
        stac_asset=ref.asset_key,
    )


def _naming(path: ImageSource, message: str) -> str:
    return message if str(path) in message else f"{path}: {message}"


# --- chip integrity: check and repair ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChipCheck:
    """A chip found missing or corrupt."""

    observation: Observation
    problem: str


def verify_chips(workspace: Store, observations: Iterable[Observation]) -> list[ChipCheck]:
    """The missing or corrupt chips of ``observations``, checked against the checksum kept at ingest,
    each flagged on its observation (so the monitor skips it and the API shows why). A chip from
    before checksums is decoded instead, and its checksum kept once it is found whole; a chip flag
    whose chip is whole again (the file restored) is cleared."""
    found = []
    for observation in observations:
        path = workspace.chip_path(observation)
        problem = chip_problem(path, observation.chip_sha256, name=observation.chip_path)
        if problem is not None:
            found.append(ChipCheck(observation, problem))
            if observation.problem != problem:
                workspace.flag_observation(observation.id, problem)
            continue
        stale = observation.problem is not None and observation.problem.startswith(CHIP_PROBLEM)
        if observation.chip_sha256 is None or stale:
            checksum = sha256_file(path) if observation.chip_sha256 is None else None
            workspace.flag_observation(observation.id, None if stale else observation.problem,
                                       chip_sha256=checksum)
    return found


def check_chips(workspace: Store) -> list[ChipCheck]:
    """Every chip of ``workspace`` verified (:func:`verify_chips`); the missing or corrupt ones."""
    return verify_chips(workspace, workspace.observations())


def _scene_observations(workspace: Store, scene: Scene) -> list[Observation]:
    return [o for o in workspace.observations(since=scene.acquired, until=scene.acquired)
            if o.scene_id == scene.id]


def _repair_scene(workspace: Store, path: ImageSource, scene: Scene) -> FileOutcome:
    """``path`` holds ``scene``, already stored: recreate its observations' missing or corrupt chips
    from it (each replaced in its own transaction), else report it skipped."""
    broken = verify_chips(workspace, _scene_observations(workspace, scene))
    if not broken:
        return FileOutcome(path, FileStatus.SKIPPED, f"{path}: already ingested (scene {scene.id})",
                           scene_id=scene.id)
    staging = workspace.staging_dir()
    repaired: list[str] = []
    for found in broken:
        observation = found.observation
        grid = site_grid(workspace.site(observation.site_id))
        chip = _without_clouds(extract_chip(path, grid, bands=scene.bands), grid.gsd)
        chip_file = staging / f"{observation.id}.{uuid.uuid4().hex[:8]}.tif"
        try:
            write_chip(chip, grid, chip_file)
            workspace.replace_chip(observation.id, chip_file, sha256_file(chip_file))
        finally:
            chip_file.unlink(missing_ok=True)  # moved by replace_chip on success
        log.warning("%s: recreated the chip of %s (%s)", path, observation.id, found.problem)
        repaired.append(observation.site_id)
    return FileOutcome(path, FileStatus.REPAIRED,
                       f"{path}: scene {scene.id} already ingested; recreated its chip(s) over "
                       f"{', '.join(repaired)}", scene_id=scene.id, site_ids=tuple(repaired))


def _repair_from_file(workspace: Store, path: Path, scene: Scene) -> FileOutcome:
    if not path.is_file():
        raise ImageryError(f"{path}: the source of scene {scene.id} is gone, so its chips cannot be "
                           "recreated; ingest the same file from where it is now")
    if sha256_file(path) != scene.checksum:
        raise ImageryError(f"{path}: no longer the file scene {scene.id} was ingested from "
                           "(its checksum changed), so its chips cannot be recreated from it")
    return _repair_scene(workspace, path, scene)


def repair(workspace: Store, *, progress: RepairProgressCallback | None = None) -> IngestReport:
    """Recreate every missing or corrupt chip of ``workspace`` from the file its scene was ingested
    from (recorded at ingest), provided that file is still there with the same checksum; or, for a
    scene ingested from STAC, from its asset read again."""
    broken = check_chips(workspace)
    scene_ids = list(dict.fromkeys(found.observation.scene_id for found in broken))
    outcomes: list[FileOutcome] = []
    for index, scene_id in enumerate(scene_ids):
        scene = workspace.scene(scene_id)
        remote = remote_href(scene.uri)
        path: ImageSource = scene.uri if remote is not None else Path(scene.uri)
        if progress is not None:
            progress(path, index, len(scene_ids), None)
        try:
            if remote is not None:  # a STAC asset: its scene id is the item's and asset's, read again
                outcome = _repair_scene(workspace, remote, scene)
            else:
                outcome = _repair_from_file(workspace, Path(scene.uri), scene)
        except Exception as error:  # one scene's failure never stops the repair of the others
            outcome = FileOutcome(path, FileStatus.FAILED, _naming(path, str(error)), scene_id=scene.id)
        outcomes.append(outcome)
        if progress is not None:
            progress(path, index, len(scene_ids), outcome)
    return IngestReport(tuple(outcomes))
