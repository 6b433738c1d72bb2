"""Change over a scene too large to hold: one shift and one radiometric map, then window by window.

A translation between two dates and their radiometric difference (sun, haze, gain) are properties
of the whole scene, so both are measured once, on textured probe tiles spread over it
(:func:`plan_scene`). The scene is then read and compared window by window (:func:`scene_change`),
two or more windows at a time in threads (reading and numpy both release the GIL), with at most
a few windows in flight: memory depends on the window, never on the scene. Each window of the
second date is read with a margin of the shift, so window edges are shifted from real pixels and
no seam of invalid pixels appears between windows. Each window is also read with the margin its
detector's answer depends on (``context_px``: none for per-pixel methods, the tile overlap of the
learned model, the widest scale of ``contrast``), and only the window's own part of the answer is
kept, so the edges of windows are not edges of the image to the detector.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.io import DatasetReader
from rasterio.windows import Window

from sitewatch.analytics.change.base import BoolMask, ChangeDetector, ChangeResult
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.coregister import CoregistrationSettings, Registration, apply_shift, shift_from_tiles
from sitewatch.imagery.radiometry import RadiometricFit, RadiometryError, fit_radiometry

DEFAULT_WINDOW = 2048
"""Window side: large enough that per-window overheads vanish, small enough for bounded memory."""


@dataclass(frozen=True, slots=True)
class ScenePlan:
    """What is measured once for a scene pair."""

    registration: Registration
    radiometry: RadiometricFit | None
    """None when the probe tiles had too few usable pixels to fit one (radiometry left as is)."""


@dataclass(frozen=True, slots=True)
class WindowChange:
    """The detector's result for one window of the scene."""

    window: Window
    result: ChangeResult
    valid: BoolMask
    """Pixels valid on both dates (and within the shifted second date)."""


def scene_windows(width: int, height: int, side: int = DEFAULT_WINDOW) -> list[Window]:
    """Windows of at most ``side`` pixels tiling a ``width`` x ``height`` raster, row by row."""
    if side < 1:
        raise UnsupportedInputError(f"window side {side} must be at least 1 pixel")
    return [Window(col, row, min(side, width - col), min(side, height - row))
            for row in range(0, height, side) for col in range(0, width, side)]


def probe_windows(width: int, height: int, tile: int = 256, per_side: int = 3) -> list[Window]:
    """``per_side`` x ``per_side`` tiles spread evenly over the raster (all of it when it is small)."""
    if width <= tile * per_side or height <= tile * per_side:
        return scene_windows(width, height, tile)
    rows = np.linspace(0, height - tile, per_side).round().astype(int)
    cols = np.linspace(0, width - tile, per_side).round().astype(int)
    return [Window(int(c), int(r), tile, tile) for r in rows for c in cols]


def _valid(dataset: DatasetReader, pixels: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Pixels that are not the dataset's nodata in every band."""
    if dataset.nodata is None:
        return np.ones(pixels.shape[1:], bool)
    return np.asarray((pixels != np.float32(dataset.nodata)).any(axis=0))


def _check_pair(before: DatasetReader, after: DatasetReader) -> None:
    if (before.width, before.height) != (after.width, after.height) or before.transform != after.transform:
        raise UnsupportedInputError(
            f"{before.name} ({before.width}x{before.height}) and {after.name} ({after.width}x{after.height}) "
            "are not on one grid; warp the second date onto the first's grid (gdalwarp -te -tr) first"
        )
    if before.count != after.count:
        raise UnsupportedInputError(
            f"{before.name} has {before.count} bands and {after.name} {after.count}; give both dates the "
            "same bands"
        )


ALIGNED = Registration((0.0, 0.0), 1.0, 0, 0, 0.0)
"""The registration of a pair its user says is already co-registered (no shift measured)."""


def plan_scene(before: DatasetReader, after: DatasetReader, *,
               settings: CoregistrationSettings | None = None, aligned: bool = False) -> ScenePlan:
    """Measure the scene's shift (phase correlation on textured probe tiles; raises
    :class:`~sitewatch.imagery.coregister.CoregistrationError` when they cannot agree) and fit
    one radiometric map of ``after`` onto ``before`` over the shifted probe tiles.

    ``aligned``: the pair is already co-registered (orthorectified together, or aligned by the
    user), so no shift is measured. For dates so different that the probe tiles cannot agree on
    one (a town flattened by a tornado), which co-registration rightly refuses to guess."""
    _check_pair(before, after)
    probes = []
    for window in probe_windows(before.width, before.height):
        reference = before.read(window=window).astype(np.float32)
        moving = after.read(window=window).astype(np.float32)
        probes.append((reference, moving, _valid(before, reference) & _valid(after, moving)))
    textured = [(r, m) for r, m, v in probes if v.all()]
    registration = ALIGNED if aligned else shift_from_tiles(textured, settings)
    references, shifted_tiles, valids = [], [], []
    for reference, moving, valid in probes:
        shifted, covered = apply_shift(moving, registration.shift, valid=valid)
        references.append(reference.reshape(reference.shape[0], -1))
        shifted_tiles.append(shifted.reshape(shifted.shape[0], -1))
        valids.append((covered & valid).ravel())
    try:
        fit: RadiometricFit | None = fit_radiometry(
            np.concatenate(references, axis=1)[:, None], np.concatenate(shifted_tiles, axis=1)[:, None],
            valid=np.concatenate(valids)[None])
    except RadiometryError:
        fit = None
    return ScenePlan(registration, fit)


def with_margin(window: Window, margin: int, width: int, height: int) -> Window:
    """``window`` grown by ``margin`` pixels on each side, within a ``width`` x ``height`` raster."""
    col0, row0 = max(0, window.col_off - margin), max(0, window.row_off - margin)
    col1 = min(width, window.col_off + window.width + margin)
    row1 = min(height, window.row_off + window.height + margin)
    return Window(col0, row0, col1 - col0, row1 - row0)


def _source_window(window: Window, shift: tuple[float, float], width: int,
                   height: int) -> tuple[Window, tuple[slice, slice]]:
    """The second date's pixels that the shifted ``window`` is interpolated from, within the raster,
    and where ``window`` lies in them.

    ``out(p) = image(p - shift)`` reads, per axis, source lines ``p - floor(s) - 1`` and
    ``p - floor(s)``: the margin is one-sided, on the side the shift comes from. A margin on both
    sides would decode a further row and column of the file's blocks for nothing (on 512 px
    blocks and 2048 px windows, 36 blocks instead of 25 for the second date).
    """
    bounds = []
    for start, length, size, offset in ((window.row_off, window.height, height, shift[0]),
                                        (window.col_off, window.width, width, shift[1])):
        base = math.floor(offset)
        low = max(0, start - max(0, base + 1))
        high = min(size, start + length + max(0, -base))
        bounds.append((low, high, slice(start - low, start - low + length)))
    (row0, row1, rows), (col0, col1, cols) = bounds
    return Window(col0, row0, col1 - col0, row1 - row0), (rows, cols)


def scene_change(
    before_path: Path | str,
    after_path: Path | str,
    detector: ChangeDetector,
    *,
    window: int = DEFAULT_WINDOW,
    workers: int | None = None,
    plan: ScenePlan | None = None,
    progress: Callable[[int, int], None] | None = None,
    bands: Sequence[int] | None = None,
) -> Iterator[WindowChange]:
    """Run ``detector`` over two co-gridded rasters window by window, results in window order.

    ``plan`` defaults to :func:`plan_scene` of the pair; ``workers`` (default: the CPU count, at
    most 4) windows are processed at a time; ``progress(done, total)`` is called per window.
    ``bands`` (0-based, in order; default all) are the bands read and passed to the detector, as
    :func:`~sitewatch.analytics.change.choose_change_method` or
    :func:`~sitewatch.analytics.change.input_bands` give them; the shift and the radiometric map
    are measured on every band.
    """
    workers = max(1, workers or min(4, os.cpu_count() or 1))
    with rasterio.open(before_path) as before, rasterio.open(after_path) as after:
        _check_pair(before, after)
        plan = plan or plan_scene(before, after)
        width, height = before.width, before.height
        windows = scene_windows(width, height, window)
        selected = list(range(before.count)) if bands is None else list(bands)
        if not selected or not all(0 <= b < before.count for b in selected):
            raise UnsupportedInputError(
                f"bands {selected} do not all exist in {before.name} ({before.count} bands, 0-based); "
                "give indices from 0 to the band count - 1"
            )
    shift = plan.registration.shift
    indexes = [b + 1 for b in selected]
    radiometry = plan.radiometry.select(selected) if plan.radiometry is not None else None

    context = max(0, int(detector.context_px))

    def one(part: Window) -> WindowChange:
        # The window and the margin the detector's answer at its edge depends on (none for per-pixel
        # methods); the margin's answers are dropped, so the windows' parts tile the scene.
        seen = with_margin(part, context, width, height)
        # Each window opens its own handles: datasets are not shared between threads (opening a
        # GeoTIFF costs about a millisecond, a window's work a few hundred).
        with rasterio.open(before_path) as first, rasterio.open(after_path) as second:
            reference = first.read(indexes, window=seen).astype(np.float32)
            grown, inner = _source_window(seen, shift, width, height)
            moving = second.read(indexes, window=grown).astype(np.float32)
            valid_reference, valid_moving = _valid(first, reference), _valid(second, moving)
        shifted, covered = apply_shift(moving, shift, valid=valid_moving)
        aligned, valid = shifted[(slice(None), *inner)], covered[inner] & valid_reference
        if radiometry is not None:
            radiometry.apply(aligned, out=aligned)
        unseen = ~valid
        for image in (reference, aligned):  # ours: zeroed here, the detector need not copy them
            np.copyto(image, np.float32(0.0), where=unseen)
        result = detector(reference, aligned, valid=valid)
        if seen == part:
            return WindowChange(part, result, valid)
        own = (slice(part.row_off - seen.row_off, part.row_off - seen.row_off + part.height),
               slice(part.col_off - seen.col_off, part.col_off - seen.col_off + part.width))
        return WindowChange(part, replace(result, probability=np.ascontiguousarray(result.probability[own]),
                                          mask=np.ascontiguousarray(result.mask[own])),
                            np.ascontiguousarray(valid[own]))

    workers = max(1, min(workers, len(windows)))  # no idle threads for a raster of few windows
    with ThreadPoolExecutor(workers, thread_name_prefix="sitewatch-scene") as pool:
        pending: deque[Future[WindowChange]] = deque()
        queued = iter(windows)
        for part in queued:  # keep at most two windows per worker in flight
            pending.append(pool.submit(one, part))
            if len(pending) >= 2 * workers:
                break
        done = 0
        while pending:
            finished = pending.popleft().result()
            following = next(queued, None)
            if following is not None:
                pending.append(pool.submit(one, following))
            done += 1
            if progress is not None:
                progress(done, len(windows))
            yield finished
