"""PCA-KMeans (Celik, IEEE GRSL 2009): k-means on PCA features of difference-image neighbourhoods.

The difference image (CVA magnitude) is cut into non-overlapping ``block``×``block`` tiles
whose principal components span the feature space; each pixel's neighbourhood is projected
on them (as correlations with the eigen-kernels, so memory stays linear in pixels) and
two-class k-means splits changed from unchanged. The operating point is the k-means boundary:
a fixed rule that sees no labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from sitewatch.analytics.change.base import (
    BoolMask,
    ChangeResult,
    FloatImage,
    check_pair,
    register_change_detector,
)
from sitewatch.analytics.change.cva import cva_magnitude

_FIT_SAMPLES = 200_000


def _eigen_kernels(difference: NDArray[np.float32], valid: BoolMask, block: int, components: int
                   ) -> list[NDArray[np.float32]]:
    rows, cols = (difference.shape[0] // block) * block, (difference.shape[1] // block) * block
    grid = difference[:rows, :cols].reshape(rows // block, block, cols // block, block)
    tiles = grid.transpose(0, 2, 1, 3).reshape(-1, block * block)
    tile_valid = valid[:rows, :cols].reshape(rows // block, block, cols // block, block).all(axis=(1, 3))
    tiles = tiles[tile_valid.ravel()]
    if len(tiles) < components + 1:
        tiles = difference[None, :block, :block].reshape(1, -1).repeat(components + 1, axis=0)
    centred = tiles - tiles.mean(axis=0)
    covariance = centred.T @ centred / max(len(tiles) - 1, 1)
    _, vectors = np.linalg.eigh(covariance.astype(np.float64))
    return [vectors[:, -1 - k].reshape(block, block).astype(np.float32) for k in range(components)]


def _nearer_second(features: NDArray[np.floating], centres: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which of ``(n, k)`` features lie nearer ``centres[1]`` than ``centres[0]``.

    For two centres that is one side of a hyperplane (one matrix-vector product), exactly the
    comparison of squared distances, without the (n, 2, k) array of differences.
    """
    direction = centres[1] - centres[0]
    offset = 0.5 * float(centres[1] @ centres[1] - centres[0] @ centres[0])
    return np.asarray(features @ direction.astype(features.dtype) > offset)


def _two_means(features: NDArray[np.float32], iterations: int = 30) -> NDArray[np.float32]:
    """Deterministic two-class k-means, seeded at the 5th and 95th percentile of the first feature."""
    order = np.argsort(features[:, 0])
    centres = features[[order[len(order) // 20], order[(len(order) * 19) // 20]]].astype(np.float64)
    for _ in range(iterations):
        second = _nearer_second(features, centres)
        updated = np.array([
            features[members].mean(axis=0, dtype=np.float64) if members.any() else centres[k]
            for k, members in enumerate((~second, second))
        ])
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres.astype(np.float32)


@register_change_detector("pca-kmeans")
@dataclass(frozen=True, slots=True)
class PcaKMeans:
    """Celik's PCA-KMeans on the CVA difference image."""

    name: str = "pca-kmeans"
    min_bands: int = 1
    bands: tuple[str, ...] = ()
    gsd_range: tuple[float, float] = (0.05, 1000.0)
    description: str = (
        "PCA of 4x4 difference blocks + 2-means (Celik 2009); operating point: k-means boundary"
    )
    block: int = 4
    components: int = 3

    @property
    def context_px(self) -> int:
        """Its features are the difference image correlated with block x block kernels."""
        return self.block

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        before, after, valid = check_pair(self, before, after, valid)
        difference = cva_magnitude(before, after)
        kernels = _eigen_kernels(difference, valid, self.block, self.components)
        features = np.stack(
            [ndimage.correlate(difference, kernel, mode="reflect") for kernel in kernels], axis=-1
        )
        picked = features[valid]
        if len(picked) > _FIT_SAMPLES:
            picked = picked[:: -(-len(picked) // _FIT_SAMPLES)]
        if len(picked) < 2:
            zero = np.zeros(difference.shape, np.float32)
            return ChangeResult(zero, zero > 0, 0.5, "no valid pixels", self.name)
        centres = _two_means(picked)
        # The cluster whose pixels differ more is "changed"; the first eigen-kernel can have either sign.
        second = _nearer_second(features[valid], centres.astype(np.float64))
        valid_difference = difference[valid]
        mean_difference = [
            float(valid_difference[members].mean()) if members.any() else -np.inf
            for members in (~second, second)
        ]
        changed = int(np.argmax(mean_difference))
        distance_changed = _distance(features, centres[changed])
        distance_unchanged = _distance(features, centres[1 - changed])
        # du / (dc + du), in place
        distance_changed += distance_unchanged
        np.maximum(distance_changed, np.float32(1e-12), out=distance_changed)
        probability = np.divide(distance_unchanged, distance_changed, out=distance_unchanged)
        probability[~valid] = 0.0
        mask = (probability > 0.5) & valid
        return ChangeResult(probability, mask, 0.5, "two-means boundary (Celik 2009)", self.name)


def _distance(features: NDArray[np.float32], centre: NDArray[np.float32]) -> NDArray[np.float32]:
    """Euclidean distance of every pixel's ``(rows, cols, k)`` features to ``centre``, float32."""
    total = np.zeros(features.shape[:-1], np.float32)
    scratch = np.empty_like(total)
    for k in range(features.shape[-1]):
        np.subtract(features[..., k], centre[k], out=scratch)
        np.multiply(scratch, scratch, out=scratch)
        total += scratch
    return np.sqrt(total, out=total)
