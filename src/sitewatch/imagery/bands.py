"""Which band is which, by name: red, green and blue are found by what the bands are called,
never by their position (NAIP is red, green, blue, nir; WorldView-3 is coastal, blue, green,
yellow, red, ...; a false-colour composite is nir, red, green).

Names are compared case-insensitively, with spaces and hyphens read as underscores, so the
names STAC's ``eo:common_name`` uses (``red``, ``green``, ``blue``, ``nir``, ...), GDAL's colour
interpretations (``Red``, ``Green``, ``Blue``) and the short ``R``, ``G``, ``B`` all match.
Bands without a name (``b1``, ``b2``, ..., as :func:`sitewatch.imagery.readers.band_names`
calls them, ``Band 1``, or empty) are no colour at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

RGB = ("red", "green", "blue")
"""The visible bands in display order."""

_ALIASES = {"r": "red", "g": "green", "b": "blue"}
_UNNAMED = re.compile(r"(b|band)_?\d*")


def canonical_band(name: str) -> str:
    """``name`` in lower case with spaces and hyphens as underscores, short colour letters
    spelled out (``R`` -> ``red``); the empty string for an unnamed band."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    if _UNNAMED.fullmatch(key) and key != "b":
        return ""
    return _ALIASES.get(key, key)


def find_bands(names: Sequence[str], wanted: Sequence[str]) -> tuple[int, ...] | None:
    """Indices of the bands named ``wanted``, in the order of ``wanted`` (the first band of each
    name); None when one of them is missing."""
    canonical = [canonical_band(name) for name in names]
    found = []
    for name in wanted:
        key = canonical_band(name)
        if not key or key not in canonical:
            return None
        found.append(canonical.index(key))
    return tuple(found)


def rgb_bands(names: Sequence[str]) -> tuple[int, int, int] | None:
    """Indices of the red, green and blue bands, in that order, or None when the names do not say."""
    found = find_bands(names, RGB)
    return (found[0], found[1], found[2]) if found is not None else None


def unnamed(names: Sequence[str]) -> bool:
    """True when no band has a name (``b1``, ``Band 2``, empty): their order is all there is."""
    return all(not canonical_band(name) for name in names)


def describe_bands(names: Sequence[str], width: int = 24) -> str:
    """The names for a message: quoted, each cut to ``width`` characters."""
    return ", ".join(repr(n if len(n) <= width else n[: width - 1] + "\u2026") for n in names)
