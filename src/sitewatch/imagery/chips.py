"""Chips: an image resampled onto a site grid, with the mask of pixels that were really observed.

Only the window of the source that covers the grid is read, so a chip of a 2 km site costs the
same from a 40,000-pixel scene as from a small crop. Invalid pixels (source nodata, alpha or
internal masks, NaN, outside the footprint) never bleed into valid ones: resampling runs in
floating point with NaN as nodata, and the valid mask is where every band came out finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS as RasterioCRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from sitewatch.core.errors import UnsupportedInputError, ValidationError
from sitewatch.imagery.errors import UnreadableImageError
from sitewatch.imagery.grid import SiteGrid
from sitewatch.imagery.readers import (
    DEFAULT_LIMITS,
    ImageLimits,
    ImageSource,
    band_names,
    gdal_message,
    ground_sample_distance,
    open_image,
)

_WINDOW_PAD = 3
"""Source pixels read beyond the grid on each side, so edge pixels get their full kernel."""
_DOWNSAMPLE_AVERAGE_FROM = 1.5
"""Grid GSD / source GSD above which pixels are averaged instead of interpolated."""
OVERVIEWS_ABOVE = 2048
"""Chips larger than this many pixels a side get overviews (2x, 4x, ... down to one 256 px tile).

A smaller chip (at most 16 MP, a few MB compressed) is read whole by every reader here (the
change and evidence steps, the report, the viewer) and by a map client in a few range
requests, while GDAL's overviews were half the cost of writing it: two thirds of a demo
chip's 0.12 CPU-s (issue 18). The map's tiles of such a chip, below its own resolution, are
decimated from the full-resolution pixels instead of read from an averaged overview.
"""


@dataclass(frozen=True, slots=True, eq=False)
class Chip:
    """Pixels of one image on a site grid."""

    array: np.ndarray
    """(bands, height, width) in the source dtype; invalid pixels hold 0 (NaN for floats)."""
    valid: np.ndarray
    """(height, width) bool: True where the pixel was observed in every band."""
    bands: tuple[str, ...] = field(default=())
    """Band names, one per band of ``array`` (``b1..bn`` when empty)."""

    def __post_init__(self) -> None:
        if not isinstance(self.array, np.ndarray) or self.array.ndim != 3 or 0 in self.array.shape:
            shape = getattr(self.array, "shape", None)
            raise ValidationError("Chip", "array",
                                  f"must be a non-empty (bands, height, width) array, got {shape}")
        valid = self.valid
        if not isinstance(valid, np.ndarray) or valid.dtype != bool or valid.shape != self.array.shape[1:]:
            raise ValidationError(
                "Chip", "valid", f"must be a bool array of shape {self.array.shape[1:]}, "
                f"got {getattr(self.valid, 'dtype', None)} {getattr(self.valid, 'shape', None)}"
            )
        names = self.bands or tuple(f"b{i}" for i in range(1, self.array.shape[0] + 1))
        if len(names) != self.array.shape[0]:
            raise ValidationError("Chip", "bands", f"{len(names)} names for {self.array.shape[0]} bands")
        object.__setattr__(self, "bands", names)

    @property
    def valid_fraction(self) -> float:
        """Share of grid pixels observed, 0..1."""
        return float(self.valid.mean())

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype


def choose_resampling(source_gsd: float, grid_gsd: float) -> Resampling:
    """Average when the grid is clearly coarser than the source (anti-aliasing), bilinear otherwise."""
    return Resampling.average if grid_gsd / source_gsd >= _DOWNSAMPLE_AVERAGE_FROM else Resampling.bilinear


def _working_dtype(dtype: np.dtype) -> type[np.floating]:
    # float32 holds every 8/16-bit integer exactly; wider integers and float64 need float64.
    return np.float32 if dtype.itemsize <= 2 or dtype == np.float32 else np.float64


def extract_chip(path: ImageSource, grid: SiteGrid, *, resampling: Resampling | None = None,
                 bands: Sequence[str] | None = None, limits: ImageLimits = DEFAULT_LIMITS) -> Chip:
    """Resample the image at ``path`` onto ``grid``, reading only the window that covers it.

    ``path`` may be a URL (:data:`~sitewatch.imagery.readers.ImageSource`): a COG then costs its
    header and the tiles of the window (from the overview level nearest the grid), by range requests.

    ``bands`` names the bands (one per band, in file order; ingest passes its scene's names, so
    names the caller gave reach the chip), else the file's own (:func:`band_names`). A grid that
    the image does not overlap gives an all-invalid chip (``valid_fraction == 0``); deciding
    whether that is an error is the caller's business.
    """
    with open_image(path, limits) as dataset:
        dtype = np.result_type(*dataset.dtypes)
        work = _working_dtype(dtype)
        names = tuple(bands) if bands is not None else band_names(dataset)
        destination = np.full((dataset.count, *grid.shape), np.nan, dtype=work)
        source_gsd = ground_sample_distance(dataset, path)
        method = resampling or choose_resampling(source_gsd, grid.gsd)
        offset = _lattice_offset(dataset, grid, method)
        if offset is not None:
            return _copy_chip(dataset, grid, offset, names, path)
        window = _covering_window(dataset.crs, dataset.transform, dataset.width, dataset.height, grid)
        if window is not None:
            # A 0.3 m scene over a 10 m grid would be a huge window: let GDAL average it down (from
            # overviews when the file has them) to no coarser than the grid before warping.
            step = max(1, math.floor(grid.gsd / source_gsd)) if method is Resampling.average else 1
            shape = (math.ceil(window.height / step), math.ceil(window.width / step))
            try:
                pixels = dataset.read(window=window, out_shape=(dataset.count, *shape),
                                      resampling=Resampling.average).astype(work)
                observed = dataset.dataset_mask(window=window, out_shape=shape) > 0
            except RasterioError as error:
                raise UnreadableImageError(
                    f"{path}: pixels over the site grid cannot be read ({gdal_message(error)}); "
                    "the file is probably truncated or corrupt, copy or download it again"
                ) from error
            # One band NaN makes the whole pixel unobserved, so the warper drops it in every band.
            observed &= np.isfinite(pixels).all(axis=0)
            pixels[:, ~observed] = np.nan
            reproject(
                source=pixels,
                destination=destination,
                src_transform=_window_transform(dataset.transform, window)
                @ Affine.scale(window.width / shape[1], window.height / shape[0]),
                src_crs=dataset.crs,
                src_nodata=np.nan,
                dst_transform=grid.transform,
                dst_crs=RasterioCRS.from_epsg(grid.epsg),
                dst_nodata=np.nan,
                resampling=method,
            )
    valid = np.asarray(np.isfinite(destination).all(axis=0), dtype=bool)
    return Chip(array=_to_dtype(destination, dtype, valid), valid=valid, bands=names)


def _lattice_offset(dataset: DatasetReader, grid: SiteGrid, method: Resampling) -> tuple[int, int] | None:
    """(row, col) of the grid's first pixel in the image when the grid is a crop of the image's own
    pixel lattice (same CRS, same north-up pixel size, whole-pixel offset) and the warp would only
    copy pixels; None otherwise.

    Nearest and bilinear resampling at whole-pixel offsets give every grid pixel its one source
    pixel with weight 1, and unobserved pixels stay unobserved, so a plain read gives the same
    chip as the warp (tested against it). Integers up to 32 bits only: the warp's float path holds
    them exactly, and floats (-0.0, NaN payloads) are left to the warp.
    """
    if method not in (Resampling.nearest, Resampling.bilinear) or dataset.crs is None:
        return None
    dtypes = set(dataset.dtypes)
    if len(dtypes) != 1:
        return None
    dtype = np.dtype(dtypes.pop())
    if not np.issubdtype(dtype, np.integer) or dtype.itemsize > 4:
        return None
    source, target = dataset.transform, grid.transform
    if source.b != 0 or source.d != 0 or target.b != 0 or target.d != 0:
        return None
    if source.a != target.a or source.e != target.e:
        return None
    col = (target.c - source.c) / source.a
    row = (target.f - source.f) / source.e
    if not (col.is_integer() and row.is_integer()):
        return None
    if dataset.crs != RasterioCRS.from_epsg(grid.epsg):
        return None
    return int(row), int(col)


def _copy_chip(dataset: DatasetReader, grid: SiteGrid, offset: tuple[int, int],
               names: tuple[str, ...], path: ImageSource) -> Chip:
    """The chip of a grid on the image's own lattice (:func:`_lattice_offset`): read, not warped."""
    row, col = offset
    array = np.zeros((dataset.count, *grid.shape), dtype=dataset.dtypes[0])
    valid = np.zeros(grid.shape, dtype=bool)
    row_start, col_start = max(row, 0), max(col, 0)
    row_stop, col_stop = min(row + grid.height, dataset.height), min(col + grid.width, dataset.width)
    if row_stop > row_start and col_stop > col_start:
        window = Window(col_start, row_start, col_stop - col_start, row_stop - row_start)
        try:
            pixels = dataset.read(window=window)
            observed = dataset.dataset_mask(window=window) > 0
        except RasterioError as error:
            raise UnreadableImageError(
                f"{path}: pixels over the site grid cannot be read ({gdal_message(error)}); "
                "the file is probably truncated or corrupt, copy or download it again"
            ) from error
        inside = np.s_[row_start - row:row_stop - row, col_start - col:col_stop - col]
        np.copyto(array[(slice(None), *inside)], pixels, where=observed)
        valid[inside] = observed
    return Chip(array=array, valid=valid, bands=names)


def _covering_window(crs: RasterioCRS, transform: Affine, width: int, height: int,
                     grid: SiteGrid) -> Window | None:
    """The source window covering ``grid`` (padded, clipped to the image), None when they do not meet."""
    west, south, east, north = transform_bounds(RasterioCRS.from_epsg(grid.epsg), crs, *grid.bounds,
                                                densify_pts=21)
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        return None
    # Pixel positions of the four corners (also right for rotated source grids).
    inverse = ~transform
    corners_x = np.array([west, east, east, west])
    corners_y = np.array([north, north, south, south])
    cols = inverse.a * corners_x + inverse.b * corners_y + inverse.c
    rows = inverse.d * corners_x + inverse.e * corners_y + inverse.f
    col_start = math.floor(cols.min()) - _WINDOW_PAD
    row_start = math.floor(rows.min()) - _WINDOW_PAD
    col_stop = math.ceil(cols.max()) + _WINDOW_PAD
    row_stop = math.ceil(rows.max()) + _WINDOW_PAD
    col_start, row_start = max(col_start, 0), max(row_start, 0)
    col_stop, row_stop = min(col_stop, width), min(row_stop, height)
    if col_stop <= col_start or row_stop <= row_start:
        return None
    return Window(col_start, row_start, col_stop - col_start, row_stop - row_start)


def _window_transform(transform: Affine, window: Window) -> Affine:
    """Geotransform of ``window`` (rasterio's own helper trips affine's ``*`` deprecation warning)."""
    col, row = float(window.col_off), float(window.row_off)
    return Affine(transform.a, transform.b, transform.a * col + transform.b * row + transform.c,
                  transform.d, transform.e, transform.d * col + transform.e * row + transform.f)


def _to_dtype(values: np.ndarray, dtype: np.dtype, valid: np.ndarray) -> np.ndarray:
    """Back to the source dtype: integers rounded and clipped to their range, invalid pixels 0 (NaN for
    floats). ``values`` (the warper's float output) is overwritten."""
    if np.issubdtype(dtype, np.floating):
        out = values.astype(dtype)
        out[:, ~valid] = np.nan
        return out
    # In place: ``values`` is the caller's scratch array (one pass each instead of a new array each).
    np.copyto(values, 0.0, where=~np.isfinite(values))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        np.rint(values, out=values)
        np.clip(values, info.min, info.max, out=values)
    return values.astype(dtype)


def write_chip(chip: Chip, grid: SiteGrid, path: Path) -> Path:
    """Write ``chip`` as a Cloud Optimized GeoTIFF on ``grid`` (deflate, tiled, mask; overviews above
    :data:`OVERVIEWS_ABOVE` pixels a side).

    Validity is stored as an internal mask (not a nodata value) so no real pixel value is lost.
    Deflate at level 1 after a horizontal predictor (integers): a demo chip (3 x 1,035 x 1,233 bytes)
    takes a fifth less CPU than at level 6 without predictor and its file is a fifth smaller; the
    pixels are the same (lossless either way). GDAL's NUM_THREADS was left out: it shortened the wall
    time of one chip on idle cores but cost CPU, which the machines running ingest beside other work
    do not have to spare.
    """
    if chip.array.shape[1:] != grid.shape:
        raise ValidationError("Chip", "array",
                              f"shape {chip.array.shape[1:]} does not match grid {grid.shape}")
    path = Path(path)
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": chip.array.shape[0],
        "dtype": chip.array.dtype.name,
        "crs": RasterioCRS.from_epsg(grid.epsg),
        "transform": grid.transform,
        "compress": "deflate",
        "level": 1,
        "blocksize": 256,
        "overview_resampling": "average",
        "BIGTIFF": "IF_SAFER",
    }
    if max(grid.shape) <= OVERVIEWS_ABOVE:
        profile["overviews"] = "NONE"
    profile["predictor"] = 3 if np.issubdtype(chip.array.dtype, np.floating) else 2
    try:
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(chip.array)
            dataset.write_mask(np.where(chip.valid, 255, 0).astype(np.uint8))
            for index, name in enumerate(chip.bands, start=1):
                dataset.set_band_description(index, name)
    except RasterioError as error:
        raise UnreadableImageError(
            f"{path}: the chip could not be written ({gdal_message(error)}); "
            "check free disk space and permissions"
        ) from error
    return path


def read_chip(path: Path) -> Chip:
    """Read a chip written by :func:`write_chip` (or any georeferenced raster) with its mask."""
    with open_image(Path(path)) as dataset:
        array = dataset.read()
        valid = dataset.dataset_mask() > 0
        names = band_names(dataset)
    if np.issubdtype(array.dtype, np.floating):
        valid &= np.isfinite(array).all(axis=0)
    return Chip(array=array, valid=valid, bands=names)


def chip_grid(path: Path) -> SiteGrid:
    """The site grid a chip was written on (:func:`write_chip`): its EPSG CRS, geotransform and size.

    The one place chips' grids are read; raises :class:`UnsupportedInputError` naming the chip when
    it has no EPSG CRS or is not north-up (not written by sitewatch: re-ingest its scene).
    """
    with open_image(Path(path)) as dataset:
        epsg = dataset.crs.to_epsg() if dataset.crs is not None else None
        transform, width, height = dataset.transform, dataset.width, dataset.height
    if epsg is None:
        raise UnsupportedInputError(f"chip {path} has no EPSG CRS; re-ingest its scene to rebuild it")
    try:
        return SiteGrid(epsg=epsg, transform=transform, width=width, height=height,
                        gsd=float(abs(transform.a)))
    except ValidationError as problem:
        raise UnsupportedInputError(f"chip {path} is not on a site grid ({problem}); re-ingest its scene to "
                                    "rebuild it") from None
