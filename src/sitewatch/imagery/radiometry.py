"""Relative radiometric normalisation between dates on pseudo-invariant pixels.

Sun angle, haze, sensor gain and processing make the same roof differ in value between
dates. A per-band linear map (gain, offset) from the subject to the reference removes most of
it, but it must be fitted on pixels that did not change, or the change itself bends the fit.
Pseudo-invariant pixels are found without knowing the map: a monotone radiometric change keeps
each pixel's rank within its band, so pixels whose within-band ranks agree between dates in
every band are taken as invariant (the ``invariant_fraction`` best agreeing). The map is then the
major-axis (orthogonal) regression of reference on subject over them, symmetric in the two dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sitewatch.core.errors import ImageryError

_MAX_SAMPLES = 100_000
"""Pixels the fit uses at most (a regular stride over the usable ones): ample for one gain and
offset per band. (Fewer, or a stride over the grid before the usable ones are picked, is faster but
moves the fitted gains a little, and with them the demo's indicators: not worth it.)"""


class RadiometryError(ImageryError):
    """Too few usable pixels to fit a radiometric normalisation."""


@dataclass(frozen=True, slots=True)
class RadiometricFit:
    """Per-band ``reference ≈ gain * subject + offset`` fitted on pseudo-invariant pixels."""

    gains: tuple[float, ...]
    offsets: tuple[float, ...]
    invariant_pixels: int
    """Pixels the fit used."""
    correlations: tuple[float, ...]
    """Per-band correlation of the two dates on those pixels (low values: a poor fit)."""

    def apply(self, subject: NDArray[np.floating], *,
              out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """Map ``(bands, rows, cols)`` subject pixels onto the reference's radiometry, into ``out``
        when given (it may be ``subject`` itself: in place, no second image)."""
        gains = np.asarray(self.gains, np.float32)[:, None, None]
        offsets = np.asarray(self.offsets, np.float32)[:, None, None]
        mapped: NDArray[np.float32] = np.multiply(subject, gains, out=out, dtype=np.float32)
        mapped += offsets
        return mapped

    def select(self, bands: Sequence[int]) -> RadiometricFit:
        """The fit of the given bands only (0-based, in that order), for pixels read without the others."""
        return RadiometricFit(tuple(self.gains[b] for b in bands), tuple(self.offsets[b] for b in bands),
                              self.invariant_pixels, tuple(self.correlations[b] for b in bands))


def _ranks(values: NDArray[np.float32]) -> NDArray[np.float32]:
    ranks = np.empty(values.size, np.float32)
    ranks[np.argsort(values, kind="stable")] = np.arange(values.size, dtype=np.float32)
    ranks /= max(values.size - 1, 1)
    return ranks


def fit_radiometry(
    reference: NDArray[np.floating],
    subject: NDArray[np.floating],
    *,
    valid: NDArray[np.bool_] | None = None,
    invariant_fraction: float = 0.3,
    min_pixels: int = 100,
) -> RadiometricFit:
    """Fit the per-band map of ``subject`` onto ``reference`` (both ``(bands, rows, cols)``)."""
    if reference.shape != subject.shape or reference.ndim != 3:
        raise RadiometryError(
            f"reference {reference.shape} and subject {subject.shape} must both be (bands, rows, cols) "
            "on one grid; co-register first"
        )
    if not 0.0 < invariant_fraction <= 1.0:
        raise ValueError(f"invariant_fraction {invariant_fraction} must lie in (0, 1]")
    bands = reference.shape[0]
    ref = np.asarray(reference, np.float32).reshape(bands, -1)
    sub = np.asarray(subject, np.float32).reshape(bands, -1)
    usable = np.isfinite(ref).all(axis=0) & np.isfinite(sub).all(axis=0)
    if valid is not None:
        usable &= np.asarray(valid, bool).ravel()
    index = np.flatnonzero(usable)
    if index.size > _MAX_SAMPLES:
        index = index[:: -(-index.size // _MAX_SAMPLES)]
    if index.size < min_pixels:
        raise RadiometryError(
            f"only {index.size} valid pixels on both dates (need {min_pixels}); the pair overlaps too little "
            "to normalise"
        )
    ref, sub = ref[:, index], sub[:, index]
    disagreement = np.max([np.abs(_ranks(r) - _ranks(s)) for r, s in zip(ref, sub, strict=True)], axis=0)
    keep = disagreement <= np.quantile(disagreement, invariant_fraction)
    if keep.sum() < min_pixels:
        raise RadiometryError(f"only {int(keep.sum())} pseudo-invariant pixels (need {min_pixels})")
    ref64: NDArray[np.float64] = ref[:, keep].astype(np.float64)
    sub64: NDArray[np.float64] = sub[:, keep].astype(np.float64)
    # Rank agreement is a coarse filter (ties and the changed pixels themselves shift ranks a little);
    # refit a few times without pixels far off the current fit so a bright changed patch cannot bend it.
    inliers = np.ones(ref64.shape[1], bool)
    for _ in range(4):
        gains, offsets = _major_axis(ref64[:, inliers], sub64[:, inliers])
        residual = np.abs(ref64 - gains[:, None] * sub64 - offsets[:, None])
        scale = 1.4826 * np.median(residual[:, inliers], axis=1) + 1e-9
        updated = np.asarray((residual <= 3.0 * scale[:, None]).all(axis=0))
        if updated.sum() < min_pixels or (updated == inliers).all():
            break
        inliers = updated
    gains, offsets = _major_axis(ref64[:, inliers], sub64[:, inliers])
    correlations = tuple(
        float(np.corrcoef(s, r)[0, 1]) if s.std() > 0 and r.std() > 0 else 0.0
        for r, s in zip(ref64[:, inliers], sub64[:, inliers], strict=True)
    )
    return RadiometricFit(
        tuple(map(float, gains)), tuple(map(float, offsets)), int(inliers.sum()), correlations
    )


def _major_axis(
    ref: NDArray[np.float64], sub: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-band major-axis regression ``ref ≈ gain * sub + offset``: symmetric in the two dates."""
    gains = np.ones(ref.shape[0])
    for band, (r, s) in enumerate(zip(ref, sub, strict=True)):
        var_s, var_r = s.var(), r.var()
        cov = float(((s - s.mean()) * (r - r.mean())).mean())
        if var_s > 0 and cov != 0:
            gains[band] = (var_r - var_s + np.sqrt((var_r - var_s) ** 2 + 4 * cov**2)) / (2 * cov)
    offsets = ref.mean(axis=1) - gains * sub.mean(axis=1)
    return gains, offsets

def normalise_radiometry(
    reference: NDArray[np.floating], subject: NDArray[np.floating], *, valid: NDArray[np.bool_] | None = None
) -> tuple[NDArray[np.float32], RadiometricFit]:
    """``subject`` mapped onto ``reference``'s radiometry, and the fit used."""
    fit = fit_radiometry(reference, subject, valid=valid)
    return fit.apply(subject), fit
