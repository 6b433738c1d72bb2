"""IR-MAD: Nielsen's iteratively re-weighted multivariate alteration detection (IEEE TIP 2007).

Canonical correlation analysis between the two dates finds the linear combinations of
bands that agree best; their differences (MAD variates) are, for unchanged pixels,
independent and roughly Gaussian, so the sum of their standardised squares is chi-square
with one degree of freedom per band. Each iteration re-weights pixels by their chi-square
no-change probability, so the fit learns from the unchanged background and is invariant
to linear radiometric differences between the dates. The change probability is the
chi-square CDF; the operating point is the test at 1 % significance (probability ≥ 0.99),
a fixed rule that sees no labels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import linalg, special

from sitewatch.analytics.change.base import (
    BoolMask,
    ChangeResult,
    FloatImage,
    check_pair,
    register_change_detector,
)

_FIT_SAMPLES = 50_000
"""Pixels the fit uses (a regular stride): plenty for (2 bands)^2 covariances, and fast."""


@dataclass(frozen=True, slots=True)
class MadTransform:
    """Fitted IR-MAD: project ``before`` with ``a``, ``after`` with ``b``, subtract, standardise."""

    a: NDArray[np.float64]
    """(bands, bands) canonical vectors of the first date, one per column."""
    b: NDArray[np.float64]
    mean_before: NDArray[np.float64]
    mean_after: NDArray[np.float64]
    sigma: NDArray[np.float64]
    """Standard deviation of each MAD variate on no-change pixels."""
    correlations: NDArray[np.float64]
    iterations: int

    def chi_square(self, before: NDArray[np.floating], after: NDArray[np.floating]) -> NDArray[np.float32]:
        """Sum of squared standardised MAD variates for ``(bands, n)`` pixel arrays."""
        mad = self.a.T @ (before - self.mean_before[:, None]) - self.b.T @ (after - self.mean_after[:, None])
        return np.asarray(((mad / self.sigma[:, None]) ** 2).sum(axis=0), dtype=np.float32)

    def chi_square_image(
        self, before: NDArray[np.float32], after: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        """:meth:`chi_square` of whole ``(bands, rows, cols)`` float32 images, variate by variate in
        float32 (a full-size float64 copy of both dates would cost more than the rest of the step)."""
        total = np.zeros(before.shape[1:], np.float32)
        variate = np.empty_like(total)
        scratch = np.empty_like(total)
        for k in range(self.a.shape[1]):
            a, b = self.a[:, k] / self.sigma[k], self.b[:, k] / self.sigma[k]
            variate.fill(np.float32(b @ self.mean_after - a @ self.mean_before))
            for band in range(before.shape[0]):
                np.multiply(before[band], np.float32(a[band]), out=scratch)
                variate += scratch
                np.multiply(after[band], np.float32(b[band]), out=scratch)
                variate -= scratch
            np.multiply(variate, variate, out=variate)
            total += variate
        return total


def chi_square_sf(values: NDArray[np.floating], dof: int) -> NDArray[np.float32]:
    """The chi-square upper tail ``Q`` with integer ``dof`` by its closed form, in float32.

    ``Q = e^-y Σ_{i<m} y^i / i!`` for ``dof = 2m`` and ``Q = erfc(√y) + e^-y Σ_{i=1..m}
    y^(i-1/2) / Γ(i + 1/2)`` for ``dof = 2m + 1``, ``y = x / 2``: the values of
    :func:`scipy.special.chdtrc` to float32 precision, ten times faster on a whole image.
    """
    if dof < 1:
        raise ValueError(f"chi-square degrees of freedom must be at least 1, got {dof}")
    y = np.maximum(np.asarray(values, np.float32), np.float32(0.0)) * np.float32(0.5)
    decay = np.exp(-y)
    if dof % 2 == 0:
        term = np.ones_like(y)
        series = np.ones_like(y)
        for i in range(1, dof // 2):
            term *= y / np.float32(i)
            series += term
        upper: NDArray[np.float32] = series * decay
    else:
        root = np.sqrt(y)
        upper = special.erfc(root).astype(np.float32)
        term = (root / np.float32(special.gamma(1.5))).astype(np.float32)
        for i in range(1, dof // 2 + 1):
            if i > 1:
                term *= y / np.float32(i - 0.5)
            upper += term * decay
    return np.clip(upper, 0.0, 1.0, out=upper)


def chi_square_cdf(values: NDArray[np.floating], dof: int) -> NDArray[np.float32]:
    """``1 -`` :func:`chi_square_sf`: the values of :func:`scipy.special.chdtr`, in float32."""
    upper = chi_square_sf(values, dof)
    return np.subtract(np.float32(1.0), upper, out=upper)


def fit_irmad(before: NDArray[np.floating], after: NDArray[np.floating], *, max_iterations: int = 15,
              tolerance: float = 1e-3) -> MadTransform:
    """Fit IR-MAD on ``(bands, n)`` pixel samples of the two dates.

    The canonical correlations settle within a few iterations; later ones only drift as the weights
    keep trimming tails, so the loop stops at ``max_iterations`` or a change below ``tolerance``.
    """
    bands = before.shape[0]
    x = before.astype(np.float64)
    y = after.astype(np.float64)
    weights = np.ones(x.shape[1])
    previous = np.full(bands, -1.0)
    for iteration in range(1, max_iterations + 1):
        transform = _weighted_cca(x, y, weights, iteration)
        chi = transform.chi_square(x, y)
        weights = chi_square_sf(chi, bands).astype(np.float64) + 1e-12
        if np.max(np.abs(transform.correlations - previous)) < tolerance:
            break
        previous = transform.correlations
    # The re-weighted variance 2(1 - rho) under-estimates the spread of unchanged pixels (the weights
    # trim the Gaussian's tails, and iterating compounds it: on pure no-change data the mean chi-square
    # drifts from N to over 3N). The test needs calibrated variates, so their scale is re-estimated
    # robustly (1.4826 x median absolute deviation), which tolerates up to half the pixels changing.
    mad = (transform.a.T @ (x - transform.mean_before[:, None])
           - transform.b.T @ (y - transform.mean_after[:, None]))
    centre = np.median(mad, axis=1, keepdims=True)
    sigma = np.maximum(1.4826 * np.median(np.abs(mad - centre), axis=1), 1e-12)
    return replace(transform, sigma=sigma)


def _weighted_cca(x: NDArray[np.float64], y: NDArray[np.float64], weights: NDArray[np.float64],
                  iteration: int) -> MadTransform:
    bands = x.shape[0]
    total = weights.sum()
    mean_x = (x * weights).sum(axis=1) / total
    mean_y = (y * weights).sum(axis=1) / total
    joint = np.vstack([x - mean_x[:, None], y - mean_y[:, None]])
    covariance = (joint * weights) @ joint.T / total
    ridge = 1e-9 * np.trace(covariance) / (2 * bands) * np.eye(bands)
    sxx = covariance[:bands, :bands] + ridge
    syy = covariance[bands:, bands:] + ridge
    sxy = covariance[:bands, bands:]
    # Canonical correlations: sxy syy^-1 syx a = rho^2 sxx a, with a' sxx a = 1.
    rho_squared, a = linalg.eigh(sxy @ np.linalg.solve(syy, sxy.T), sxx)
    rho = np.sqrt(np.clip(rho_squared, 0.0, 1.0))
    b = np.linalg.solve(syy, sxy.T @ a)
    b /= np.sqrt(np.maximum(np.einsum("ij,ij->j", b, syy @ b), 1e-24))
    sigma = np.sqrt(np.maximum(2.0 * (1.0 - rho), 1e-12))
    return MadTransform(a, b, mean_x, mean_y, sigma, rho, iteration)

@register_change_detector("irmad")
@dataclass(frozen=True, slots=True)
class IrMad:
    """Iteratively re-weighted MAD with a chi-square test."""

    name: str = "irmad"
    min_bands: int = 2
    bands: tuple[str, ...] = ()
    gsd_range: tuple[float, float] = (0.05, 1000.0)
    description: str = "IR-MAD (Nielsen 2007); operating point: chi-square test at 1 % significance"
    context_px: int = 0
    """Per pixel (the transform's statistics are the pair's): no context."""
    significance: float = 0.01

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        before, after, valid = check_pair(self, before, after, valid)
        bands, rows, cols = before.shape
        flat_before = before.reshape(bands, -1)
        flat_after = after.reshape(bands, -1)
        index = np.flatnonzero(valid.ravel())
        if index.size <= 2 * bands:
            zero = np.zeros((rows, cols), np.float32)
            return ChangeResult(zero, zero > 0, 1.0 - self.significance, "too few valid pixels", self.name)
        if index.size > _FIT_SAMPLES:
            index = index[:: -(-index.size // _FIT_SAMPLES)]
        transform = fit_irmad(flat_before[:, index], flat_after[:, index])
        probability = chi_square_cdf(transform.chi_square_image(before, after), bands)
        probability[~valid] = 0.0
        threshold = 1.0 - self.significance
        mask = (probability >= threshold) & valid
        rule = f"chi-square test with {bands} d.o.f. at {self.significance:g} significance"
        return ChangeResult(probability, mask, threshold, rule, self.name)
