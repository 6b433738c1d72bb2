"""Change vector analysis: the length of the per-pixel spectral difference vector.

The oldest baseline (Malila 1980). The operating point is Otsu's threshold on the
magnitudes of the pair itself, a fixed rule that sees no labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numexpr
import numpy as np

from sitewatch.analytics.change.base import (
    BoolMask,
    ChangeResult,
    FloatImage,
    check_pair,
    register_change_detector,
    score_result,
)
from sitewatch.analytics.change.thresholds import otsu_threshold, sample_valid

_FUSED_BANDS = 16
"""Up to this many bands the magnitude is one fused pass (numexpr); more go band by band."""


def cva_magnitude(before: FloatImage, after: FloatImage) -> FloatImage:
    """Euclidean norm over bands of ``after - before``, ``(rows, cols)`` float32."""
    bands = before.shape[0]
    if bands <= _FUSED_BANDS:  # one pass, no full-size temporaries; same sums in the same order
        terms = " + ".join(f"(a{i} - b{i}) ** 2" for i in range(bands))
        local = {f"a{i}": after[i] for i in range(bands)} | {f"b{i}": before[i] for i in range(bands)}
        fused: FloatImage = numexpr.evaluate(f"sqrt({terms})", local_dict=local)
        return fused.astype(np.float32, copy=False)
    total = np.zeros(before.shape[1:], np.float32)
    scratch = np.empty(before.shape[1:], np.float32)
    for band_before, band_after in zip(before, after, strict=True):  # band by band: no full-size difference
        np.subtract(band_after, band_before, out=scratch, dtype=np.float32)
        np.multiply(scratch, scratch, out=scratch)
        total += scratch
    return np.sqrt(total, out=total)


@register_change_detector("cva")
@dataclass(frozen=True, slots=True)
class ChangeVectorAnalysis:
    """CVA magnitude with Otsu's threshold."""

    name: str = "cva"
    min_bands: int = 1
    bands: tuple[str, ...] = ()
    gsd_range: tuple[float, float] = (0.05, 1000.0)
    description: str = "change vector magnitude; operating point: Otsu on the pair's magnitudes"
    context_px: int = 0
    """Per pixel: no context."""

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        before, after, valid = check_pair(self, before, after, valid)
        magnitude = cva_magnitude(before, after)
        if not valid.any():
            return score_result(self.name, magnitude, np.inf, valid, "no valid pixels", softness=1.0)
        threshold = otsu_threshold(sample_valid(magnitude, valid))
        return score_result(self.name, magnitude, threshold, valid, "Otsu on the pair's CVA magnitudes")
