"""Read what an image is — where, when, how sharp, by what — before any pixel is resampled.

Anything GDAL (through rasterio) opens with georeferencing is accepted: GeoTIFF, COG, JPEG2000,
ENVI with its ``.hdr``, VRT, ... :func:`open_image` is the one gate every reader goes through: it
refuses, with a message naming the file and the fix, files that are empty, unreadable, truncated,
not georeferenced, absurdly large, or in a CRS a site grid cannot use.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError, ProjError
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window
from shapely.geometry import Polygon

from sitewatch.core.errors import ImageryError, NotGeoreferencedError, UnsupportedInputError, ValidationError
from sitewatch.core.limits import MAX_BANDS, MAX_PIXELS_PER_BAND
from sitewatch.core.timeutil import ensure_utc
from sitewatch.core.types import Scene
from sitewatch.imagery.acquisition import StacSidecar, acquisition_time, find_stac_item, sensor_from_filename
from sitewatch.imagery.errors import (
    EmptyImageError,
    ImageTooLargeError,
    MissingAcquisitionTimeError,
    UnreadableImageError,
    UnsupportedCrsError,
)

log = logging.getLogger(__name__)

MAX_SIDE = 100_000
"""Largest width or height accepted; larger is a corrupt header or not a single scene."""


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What an image header may declare before anything is read (workspace settings
    ``max_image_bands`` and ``max_image_pixels``)."""

    max_bands: int = MAX_BANDS
    max_pixels: int = MAX_PIXELS_PER_BAND
    """Pixels per band (width x height)."""

    def __post_init__(self) -> None:
        for name in ("max_bands", "max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError("ImageLimits", name, f"{value!r} must be a whole number >= 1")


DEFAULT_LIMITS = ImageLimits()
SCENE_ID_LENGTH = 16
"""Hex digits of the checksum used as the scene id."""
FOOTPRINT_POINTS_PER_EDGE = 16
"""Points per image edge when projecting the footprint, so curved edges (e.g. sinusoidal) stay true."""

_GEOD = Geod(ellps="WGS84")
_CHECKSUM_CHUNK = 1 << 20


ImageSource = Path | str
"""A local file, or (as a string) an ``http(s)://`` URL or a GDAL ``/vsi...`` path read by range requests."""

REMOTE_GDAL_OPTIONS = {
    # Never list the folder of a URL (one request per open, and servers refuse listings anyway).
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_MAX_RETRY": "2",
    "GDAL_HTTP_RETRY_DELAY": "1",
    # Forget a URL's bytes when its handle closes: a transfer cut short must not poison the next try
    # (a re-run, or the next cycle of a watcher), and a changed object must be read anew.
    "CPL_VSIL_CURL_NON_CACHED": "/vsicurl/",
}
"""GDAL settings while a remote image is open: only the byte ranges a read needs are fetched."""


def remote_href(source: ImageSource) -> str | None:
    """The GDAL path of ``source`` when it is remote (``/vsicurl/`` + an http(s) URL, or a ``/vsi``
    path as given), None for a local file."""
    if isinstance(source, Path):
        return None
    if re.match(r"https?://", source, flags=re.IGNORECASE):
        return f"/vsicurl/{source}"
    if source.startswith("/vsi"):
        return source
    return None


@contextmanager
def open_image(path: ImageSource, limits: ImageLimits = DEFAULT_LIMITS) -> Iterator[DatasetReader]:
    """Open ``path`` with rasterio after checking it is a usable, georeferenced raster.

    ``path`` may be a URL (see :data:`ImageSource`): GDAL then reads the header and later only the
    windows asked for, by HTTP range requests, never the whole file.
    Raises a subclass of :class:`ImageryError` naming the file when it is missing, empty,
    unreadable or truncated, not georeferenced, too large, or in an unusable CRS.
    """
    remote = remote_href(path)
    name: ImageSource = path if remote is not None else Path(path)
    if remote is None:
        path = Path(path)
        if not path.exists():
            raise ImageryError(f"{path}: no such file; check the path")
        if not path.is_file():
            raise ImageryError(f"{path}: not a regular file (a folder or device); give an image file")
        if path.stat().st_size == 0:
            raise EmptyImageError(f"{path}: the file is empty (0 bytes); copy or download it again")
    with ExitStack() as stack:
        if remote is not None:
            stack.enter_context(rasterio.Env(**REMOTE_GDAL_OPTIONS))
        with warnings.catch_warnings():
            # The warning says what ds.crs/ds.transform say too; _check_georeferenced turns it into an error.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            try:
                dataset = rasterio.open(remote if remote is not None else name)
            except RasterioError as error:
                where = "it is unreachable, " if remote is not None else ""
                raise UnreadableImageError(
                    f"{name}: GDAL cannot open it ({gdal_message(error)}); {where}it is truncated, corrupt "
                    "or not a raster: copy or download it again, or give a GeoTIFF, JPEG2000, ENVI (.hdr), "
                    "... file"
                ) from error
            try:
                _check_size(dataset, name, limits)
                _check_georeferenced(dataset, name)
                _check_crs(dataset, name)
                if remote is None:  # remotely it would fetch blocks no window needs; reads fail loud anyway
                    _check_pixels_readable(dataset, name)
            except BaseException:
                dataset.close()
                raise
        with dataset:
            yield dataset


def gdal_message(error: BaseException) -> str:
    """The most specific message of a rasterio error: GDAL's own, chained as the cause.

    rasterio often raises "Read failed. See previous exception for details." with the real
    reason (e.g. ``TIFFReadEncodedStrip() failed``) in ``__cause__``.
    """
    messages: list[str] = []
    current: BaseException | None = error
    while current is not None and len(messages) < 5:
        text = str(current).strip()
        if text and "see previous exception" not in text.lower():
            messages.append(text)
        current = current.__cause__ or current.__context__
    return "; ".join(dict.fromkeys(messages)) or type(error).__name__


def _check_size(dataset: DatasetReader, path: ImageSource, limits: ImageLimits) -> None:
    """The declared size against ``limits``, from the header alone: before any pixel is read."""
    width, height = dataset.width, dataset.height
    if width <= 0 or height <= 0 or dataset.count <= 0:
        raise UnreadableImageError(
            f"{path}: declares {width}x{height} pixels and {dataset.count} bands; the file holds no image"
        )
    if dataset.count > limits.max_bands:
        raise ImageTooLargeError(
            f"{path}: declares {dataset.count} bands, over the limit of {limits.max_bands} (workspace "
            "setting max_image_bands, or SITEWATCH_MAX_IMAGE_BANDS); the header is probably crafted or "
            "corrupt, otherwise raise the limit or keep the bands you need (gdal_translate -b 1 -b 2 ...)"
        )
    if width > MAX_SIDE or height > MAX_SIDE or width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"{path}: declares {width}x{height} pixels per band, over the limit of {MAX_SIDE} per side "
            f"and {limits.max_pixels} per band (workspace setting max_image_pixels); the header is "
            "probably corrupt, otherwise cut the scene into tiles (e.g. gdal_translate -srcwin) and "
            "ingest those"
        )


def _check_georeferenced(dataset: DatasetReader, path: ImageSource) -> None:
    if dataset.crs is None or dataset.transform.is_identity:
        hint = ""
        if dataset.gcps[0] or dataset.rpcs is not None:
            hint = " It has ground control points or RPCs only:"
            hint += " orthorectify or warp it first (gdalwarp -t_srs EPSG:<code> IN OUT)."
        else:
            hint = (" Give it a CRS and geotransform first (gdal_translate -a_srs EPSG:<code> -a_ullr ...,"
                    " or a world file), or use the original georeferenced product.")
        missing = "no CRS" if dataset.crs is None else "no geotransform"
        raise NotGeoreferencedError(f"{path}: the image is not georeferenced ({missing}).{hint}")
    if not dataset.transform.is_rectilinear:
        # Rotated grids are legal and reproject fine; only log them, they are rare and worth a look.
        log.info("%s has a rotated geotransform %s", path, tuple(dataset.transform)[:6])


def _pyproj_crs(dataset: DatasetReader, path: ImageSource) -> CRS:
    try:
        return CRS.from_wkt(dataset.crs.to_wkt())
    except CRSError as error:
        raise UnsupportedCrsError(
            f"{path}: its CRS cannot be interpreted ({error}); reproject it to a standard CRS "
            "(gdalwarp -t_srs EPSG:4326 IN OUT)"
        ) from error


def _check_crs(dataset: DatasetReader, path: ImageSource) -> None:
    crs = _pyproj_crs(dataset, path)
    if crs.is_engineering or not (crs.is_projected or crs.is_geographic):
        raise UnsupportedCrsError(
            f"{path}: its CRS {crs.name!r} ({crs.type_name}) is a local/engineering system with no "
            "relation to the Earth, so no site can be located in it; georeference the image to a "
            "geographic or projected CRS (e.g. gdalwarp -t_srs EPSG:4326 with ground control points)"
        )
    footprint_lonlat(dataset, path)  # raises when the CRS cannot reach WGS 84


def _check_pixels_readable(dataset: DatasetReader, path: ImageSource) -> None:
    """Read the first and the last block (and the smallest overview): a truncated file fails here.

    Headers of truncated TIFFs open fine; the missing bytes are the last strips or tiles, which
    hold the end of the last band (band-interleaved) or of all bands (pixel-interleaved).
    """
    first_band, last_band = 1, dataset.count
    block_height, block_width = dataset.block_shapes[last_band - 1]
    last_row = ((dataset.height - 1) // block_height) * block_height
    last_col = ((dataset.width - 1) // block_width) * block_width
    windows = (
        (first_band, Window(0, 0, min(block_width, dataset.width), min(block_height, dataset.height))),
        (last_band, Window(last_col, last_row, dataset.width - last_col, dataset.height - last_row)),
    )
    try:
        for band, window in windows:
            dataset.read(band, window=window)
        overviews = dataset.overviews(1)
        if overviews:
            factor = overviews[-1]
            dataset.read(1, out_shape=(max(1, dataset.height // factor), max(1, dataset.width // factor)))
    except RasterioError as error:
        raise UnreadableImageError(
            f"{path}: pixel data cannot be read ({gdal_message(error)}); the file is probably "
            "truncated or corrupt, copy or download it again"
        ) from error


def apply_transform(transform: Affine, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates of (fractional) pixel positions under an affine geotransform."""
    cols, rows = np.asarray(cols, dtype=float), np.asarray(rows, dtype=float)
    return (transform.a * cols + transform.b * rows + transform.c,
            transform.d * cols + transform.e * rows + transform.f)


def footprint_lonlat(dataset: DatasetReader, path: ImageSource | None = None) -> Polygon:
    """The image outline in WGS 84 lon/lat, edges densified so projected curves are kept."""
    name = path or Path(dataset.name)
    steps = np.linspace(0.0, 1.0, FOOTPRINT_POINTS_PER_EDGE + 1)[:-1]
    width, height = dataset.width, dataset.height
    # Clockwise from the upper-left corner: top, right, bottom, left edges.
    cols = np.concatenate([steps, np.ones_like(steps), 1 - steps, np.zeros_like(steps)]) * width
    rows = np.concatenate([np.zeros_like(steps), steps, np.ones_like(steps), 1 - steps]) * height
    xs, ys = apply_transform(dataset.transform, cols, rows)
    lons, lats = _to_lonlat(dataset, name, xs, ys)
    if np.ptp(lons) > 180.0:
        raise UnsupportedCrsError(
            f"{name}: the footprint crosses the antimeridian or spans over half the globe; "
            "cut the scene at 180° longitude (gdalwarp -te ...) and ingest the parts"
        )
    outline = Polygon(zip(lons.tolist(), lats.tolist(), strict=True))
    if not outline.is_valid:
        outline = outline.buffer(0)
    if not isinstance(outline, Polygon) or outline.is_empty or outline.area <= 0:
        raise UnsupportedCrsError(
            f"{name}: the footprint does not form a valid area in longitude/latitude; "
            "check the CRS and geotransform (gdalinfo)"
        )
    return outline


def _to_lonlat(dataset: DatasetReader, path: ImageSource, xs: np.ndarray,
               ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    crs = _pyproj_crs(dataset, path)
    try:
        transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lons, lats = transformer.transform(xs, ys, errcheck=True)
    except (ProjError, CRSError) as error:
        raise UnsupportedCrsError(
            f"{path}: its CRS {crs.name!r} cannot be transformed to WGS 84 longitude/latitude ({error}); "
            "reproject the image to a standard CRS (gdalwarp -t_srs EPSG:4326 IN OUT)"
        ) from error
    lons, lats = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
    if not (np.isfinite(lons).all() and np.isfinite(lats).all()) or np.abs(lats).max() > 90.0:
        raise UnsupportedCrsError(
            f"{path}: its corners fall outside the Earth in CRS {crs.name!r}; "
            "the CRS or the geotransform is wrong, check them with gdalinfo"
        )
    return lons, lats


def ground_sample_distance(dataset: DatasetReader, path: ImageSource | None = None) -> float:
    """Pixel size in metres: mean of the x and y steps, geodesic for geographic CRSs."""
    name = path or Path(dataset.name)
    transform = dataset.transform
    step_x = math.hypot(transform.a, transform.d)
    step_y = math.hypot(transform.b, transform.e)
    crs = _pyproj_crs(dataset, name)
    if crs.is_projected:
        factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        return float((step_x + step_y) / 2.0 * factor)
    centre_col, centre_row = dataset.width / 2.0, dataset.height / 2.0
    pixels = np.array([[centre_col, centre_row], [centre_col + 1, centre_row], [centre_col, centre_row + 1]])
    xs, ys = apply_transform(transform, pixels[:, 0], pixels[:, 1])
    lons, lats = _to_lonlat(dataset, name, xs, ys)
    _, _, across = _GEOD.inv(lons[0], lats[0], lons[1], lats[1])
    _, _, along = _GEOD.inv(lons[0], lats[0], lons[2], lats[2])
    return float((across + along) / 2.0)


def sha256_file(path: Path) -> str:
    """SHA-256 of the file's bytes, read in chunks so huge scenes need no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHECKSUM_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def image_tags(dataset: DatasetReader) -> dict[str, str]:
    """Dataset tags of the default, ``IMAGERY`` (GDAL's normalised) and ``IMD`` (Maxar) domains."""
    tags: dict[str, str] = {}
    for namespace in ("IMD", None, "IMAGERY"):  # later domains win: IMAGERY is GDAL's normalised view
        try:
            found = dataset.tags(ns=namespace) if namespace else dataset.tags()
        except RasterioError:
            continue
        tags.update({str(k): str(v) for k, v in found.items()})
    return tags


_SPECTRAL_INTERPRETATIONS = frozenset(
    {"red", "green", "blue", "pan", "coastal", "rededge", "nir", "swir", "mwir", "lwir", "tir"}
)
"""GDAL colour interpretations that name a spectral band (gray, alpha, palette, CMYK do not)."""


def band_names(dataset: DatasetReader) -> tuple[str, ...]:
    """Each band's description where the file has one, else its colour interpretation where that
    names a spectral band (a PNG's or an RGB GeoTIFF's ``red``, ``green``, ``blue``), else ``b<n>``.

    GDAL gives 3- and 4-band 8-bit GeoTIFFs a red, green, blue interpretation unless told
    otherwise, which is right for true-colour and RGBN (NAIP) products; a blue, green, red, NIR
    8-bit product written without band descriptions would be misnamed, so name its bands when
    ingesting (``sitewatch ingest --bands blue,green,red,nir``)."""
    names = []
    for index, (description, interpretation) in enumerate(
        zip(dataset.descriptions, dataset.colorinterp, strict=True), start=1
    ):
        if description and description.strip():
            names.append(description.strip())
        elif interpretation.name in _SPECTRAL_INTERPRETATIONS:
            names.append(interpretation.name)
        else:
            names.append(f"b{index}")
    return tuple(names)


def given_band_names(names: Sequence[str], count: int, path: ImageSource) -> tuple[str, ...]:
    """``names`` a caller gives for the ``count`` bands of ``path``, lower-cased, checked: one
    non-empty name per band, none twice."""
    cleaned = tuple(name.strip().lower() for name in names)
    if len(cleaned) != count or not all(cleaned) or len(set(cleaned)) != len(cleaned):
        raise UnsupportedInputError(
            f"{path}: band names {', '.join(names) or '(none)'} do not fit its {count} band(s); give one "
            "distinct name per band in file order, e.g. --bands red,green,blue,nir (bands= in Python) for a "
            "4-band RGBN image"
        )
    return cleaned


def _first_tag(tags: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    upper = {key.upper(): value for key, value in tags.items()}
    for key in keys:
        value = upper.get(key, "").strip().strip('"').strip()
        if value:
            return value
    return None


def _tag_number(tags: Mapping[str, str], keys: tuple[str, ...]) -> float | None:
    text = _first_tag(tags, keys)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _cloud_cover(tags: Mapping[str, str]) -> float | None:
    fraction = _tag_number(tags, ("IMAGE_1.CLOUDCOVER", "IMAGE.CLOUDCOVER"))  # IMD writes 0..1
    if fraction is None:
        percent = _tag_number(tags, ("CLOUDCOVER", "CLOUD_COVER", "CLOUD_COVERAGE_ASSESSMENT"))
        fraction = percent / 100.0 if percent is not None else None
    return fraction if fraction is not None and 0.0 <= fraction <= 1.0 else None  # -999 means unknown


def _off_nadir(tags: Mapping[str, str]) -> float | None:
    angle = _tag_number(
        tags, ("IMAGE_1.MEANOFFNADIRVIEWANGLE", "IMAGE.MEANOFFNADIRVIEWANGLE", "OFF_NADIR", "OFFNADIR")
    )
    return abs(angle) if angle is not None and abs(angle) <= 90.0 else None


def _sensor(tags: Mapping[str, str]) -> str | None:
    return _first_tag(
        tags,
        ("SATELLITEID", "IMAGE_1.SATID", "IMAGE.SATID", "SPACECRAFT_ID", "PLATFORM", "SENSOR", "SENSOR_ID"),
    )


def inspect_image(path: Path, *, acquired: datetime | None = None, sensor: str | None = None,
                  checksum: str | None = None, bands: Sequence[str] | None = None,
                  limits: ImageLimits = DEFAULT_LIMITS) -> Scene:
    """Describe the image at ``path`` as a :class:`Scene`, reading only headers and two blocks.

    ``checksum`` saves re-reading the file when the caller already hashed it (:func:`sha256_file`).
    ``acquired``, ``sensor`` and ``bands`` (one name per band, in file order) given by the caller win
    over what the file says (:func:`band_names`). Without ``acquired`` the
    acquisition time comes from tags, a STAC item beside the file, or the file name
    (:func:`~sitewatch.imagery.acquisition.acquisition_time`); when none says it,
    :class:`MissingAcquisitionTimeError` asks for ``--acquired``.
    """
    path = Path(path)
    with open_image(path, limits) as dataset:
        tags = image_tags(dataset)
        stac = find_stac_item(path)
        when = ensure_utc(acquired) if acquired is not None else acquisition_time(path, tags, stac)
        if when is None:
            raise MissingAcquisitionTimeError(
                f"{path}: no acquisition time found in its tags, a STAC item beside it, or its file "
                "name; pass --acquired YYYY-MM-DD (acquired= in Python)"
            )
        footprint = footprint_lonlat(dataset, path)
        gsd = ground_sample_distance(dataset, path)
        crs_text = dataset.crs.to_string()
        names = given_band_names(bands, dataset.count, path) if bands is not None else band_names(dataset)
        width, height = dataset.width, dataset.height
    checksum = checksum or sha256_file(path)
    cloud_cover = _cloud_cover(tags)
    off_nadir = _off_nadir(tags)
    return Scene(
        id=checksum[:SCENE_ID_LENGTH],
        uri=str(path.resolve()),
        sensor=(sensor or _sensor(tags) or _stac_field(stac, "sensor") or sensor_from_filename(path.name)
                or "unknown"),
        acquired=when,
        gsd=gsd,
        crs=crs_text,
        footprint=footprint,
        bands=names,
        width=width,
        height=height,
        checksum=checksum,
        cloud_cover=cloud_cover if cloud_cover is not None else _stac_number(stac, "cloud_cover"),
        off_nadir=off_nadir if off_nadir is not None else _stac_number(stac, "off_nadir"),
        license=_first_tag(tags, ("LICENSE", "LICENCE")) or _stac_field(stac, "license"),
        attribution=(_first_tag(tags, ("TIFFTAG_COPYRIGHT", "COPYRIGHT", "ATTRIBUTION"))
                     or _stac_field(stac, "attribution")),
    )


def _stac_field(stac: StacSidecar | None, name: str) -> str | None:
    value = getattr(stac, name) if stac is not None else None
    return value if isinstance(value, str) else None


def _stac_number(stac: StacSidecar | None, name: str) -> float | None:
    value = getattr(stac, name) if stac is not None else None
    return float(value) if isinstance(value, int | float) else None
