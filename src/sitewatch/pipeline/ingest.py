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
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from rasterio.errors import RasterioError

from sitewatch.core.errors import NoSiteCoverageError, NoValidPixelsError, SitewatchError
from sitewatch.core.types import Observation, Scene, Site
from sitewatch.imagery.chips import Chip, extract_chip, write_chip
from sitewatch.imagery.clouds import cloud_mask
from sitewatch.imagery.errors import MissingAcquisitionTimeError
from sitewatch.imagery.grid import site_grid
from sitewatch.imagery.readers import (
    SCENE_ID_LENGTH,
    ImageSource,
    band_names,
    footprint_lonlat,
    given_band_names,
    ground_sample_distance,
    inspect_image,
    open_image,
    sha256_file,
)
from sitewatch.imagery.stac import StacAssetRef, StacProblem, StacQuery, stac_entries, union_area
from sitewatch.store import chip_relpath
from sitewatch.store.protocol import Store

log = logging.getLogger(__name__)

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
           progress: ProgressCallback | None = None) -> IngestReport:
    """Ingest ``paths`` (files or folders) into ``workspace``; returns what happened to each file.

    ``acquired``, ``sensor`` and ``bands`` (band names in file order, e.g. red, green, blue, nir)
    apply to every file and win over what the files say; the scene and its chips keep the names,
    which is how RGB-only steps find red, green and blue, and the vegetation index red and nir,
    in files that do not name their bands. Files that fail are reported in the result, never
    raised, so one bad file does not stop a batch.
    """
    files = expand_paths(paths)
    sites = workspace.sites()
    outcomes: list[FileOutcome] = []
    for index, path in enumerate(files):
        if progress is not None:
            progress(path, index, len(files), None)
        outcome = _ingest_file(workspace, path, sites, acquired=acquired, sensor=sensor, bands=bands)
        log.info("%s: %s", outcome.status.value, outcome.message)
        outcomes.append(outcome)
        if progress is not None:
            progress(path, index, len(files), outcome)
    return IngestReport(tuple(outcomes))


def _ingest_file(workspace: Store, path: Path, sites: Sequence[Site], *, acquired: datetime | None,
                 sensor: str | None, bands: Sequence[str] | None) -> FileOutcome:
    try:
        # Checked before reading tags: re-ingesting a stored file must not need --acquired again.
        checksum = sha256_file(path) if path.is_file() else None
        if checksum is not None and workspace.has_scene(checksum[:SCENE_ID_LENGTH]):
            scene_id = checksum[:SCENE_ID_LENGTH]
            return FileOutcome(path, FileStatus.SKIPPED, f"{path}: already ingested (scene {scene_id})",
                               scene_id=scene_id)
        scene = inspect_image(path, acquired=acquired, sensor=sensor, checksum=checksum, bands=bands)
        site_ids = _store_scene(workspace, path, scene, sites)
    except (SitewatchError, RasterioError, OSError) as error:
        message = str(error)
        if str(path) not in message:
            message = f"{path}: {message}"
        return FileOutcome(path, FileStatus.FAILED, message)
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


def _store_scene(workspace: Store, path: ImageSource, scene: Scene,
                 sites: Sequence[Site]) -> list[str] | None:
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
    try:
        for site in covered:
            grid = site_grid(site)
            chip = extract_chip(path, grid, bands=scene.bands)
            if chip.valid_fraction <= 0.0:
                log.info("%s: no valid pixels over site %s; no observation for it", path, site.id)
                continue
            chip = _without_clouds(chip, grid.gsd)
            observation_id = f"{site.id}-{scene.id}"
            chip_file = staging / f"{observation_id}.{uuid.uuid4().hex[:8]}.tif"
            staged.append((
                Observation(
                    id=observation_id,
                    site_id=site.id,
                    scene_id=scene.id,
                    acquired=scene.acquired,
                    chip_path=chip_relpath(site.id, observation_id),
                    valid_fraction=chip.valid_fraction,
                ),
                chip_file,
            ))
            write_chip(chip, grid, chip_file)
        if not staged:
            names = ", ".join(site.id for site in covered)
            raise NoValidPixelsError(
                f"{path}: the footprint covers site(s) {names} but every pixel over them is nodata, "
                "masked or NaN; check the image's nodata value and mask (gdalinfo -stats)"
            )
        stored = workspace.add_scene(scene, staged)
    finally:
        for _, chip_file in staged:
            chip_file.unlink(missing_ok=True)  # moved by add_scene on success; a leftover otherwise
    return [observation.site_id for observation, _ in staged] if stored else None


def ingest_stac(workspace: Store, source: str, *, site_ids: Sequence[str] = (),
                since: datetime | None = None, until: datetime | None = None,
                collections: Sequence[str] = (), max_cloud: float | None = None,
                max_off_nadir: float | None = None, max_gsd: float | None = None,
                progress: StacProgressCallback | None = None) -> IngestReport:
    """Ingest the items of the STAC ``source`` (API URL, ``catalog.json`` or ItemCollection) over the
    workspace's sites (or only ``site_ids``) that pass the filters.

    Per item, one asset (:func:`~sitewatch.imagery.stac.choose_asset`) is read, and of it only the
    windows over the sites. The scene keeps the item's time, sensor, GSD, angles, cloud cover, licence
    and attribution, and its id, collection, self link and asset. An asset already stored (same
    collection, item id and href) is skipped without being opened; a bad item or asset fails alone,
    named, and the batch goes on. Raises :class:`~sitewatch.imagery.stac.StacSourceError` only when
    the source itself cannot be read.
    """
    sites = [workspace.site(site_id) for site_id in site_ids] if site_ids else workspace.sites()
    query = StacQuery(area=union_area([site.geometry for site in sites]), since=since, until=until,
                      collections=tuple(collections), max_cloud=max_cloud, max_off_nadir=max_off_nadir,
                      max_gsd=max_gsd)
    entries = list(stac_entries(source, query))
    outcomes: list[FileOutcome] = []
    for index, entry in enumerate(entries):
        where = entry.href if isinstance(entry, StacAssetRef) else entry.label
        if progress is not None:
            progress(where, index, len(entries), None)
        if isinstance(entry, StacProblem):
            outcome = FileOutcome(entry.label, FileStatus.FAILED, entry.message)
        else:
            outcome = _ingest_asset(workspace, entry, sites)
        log.info("%s: %s", outcome.status.value, outcome.message)
        outcomes.append(outcome)
        if progress is not None:
            progress(where, index, len(entries), outcome)
    return IngestReport(tuple(outcomes))


def _ingest_asset(workspace: Store, ref: StacAssetRef, sites: Sequence[Site]) -> FileOutcome:
    scene_id = ref.key_digest[:SCENE_ID_LENGTH]
    if workspace.has_scene(scene_id):
        return FileOutcome(ref.href, FileStatus.SKIPPED, f"{ref.label}: already ingested (scene {scene_id})",
                           scene_id=scene_id)
    try:
        scene = stac_scene(ref)
        site_ids = _store_scene(workspace, ref.href, scene, sites)
    except (SitewatchError, RasterioError, OSError) as error:
        message = str(error)
        if ref.href in message:
            message = message.replace(ref.href, ref.label, 1)
        else:
            message = f"{ref.label}: {message}"
        return FileOutcome(ref.href, FileStatus.FAILED, message)
    if site_ids is None:
        return FileOutcome(ref.href, FileStatus.SKIPPED, f"{ref.label}: already ingested (scene {scene_id})",
                           scene_id=scene_id)
    return FileOutcome(ref.href, FileStatus.INGESTED,
                       f"{ref.label}: scene {scene.id} over {', '.join(site_ids)}",
                       scene_id=scene.id, site_ids=tuple(site_ids))


def stac_scene(ref: StacAssetRef) -> Scene:
    """The :class:`Scene` of a STAC asset: grid, footprint and GSD from the raster's header (what the
    pixels really are), time and provenance from the item."""
    meta = ref.metadata
    with open_image(ref.href) as dataset:
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
