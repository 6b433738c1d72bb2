"""The monitor's faster compute gives what the slower one gave (issue 18): the same stored evidence on a
fixed input, and each rewritten step the same numbers as the plain form it replaced."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from evidence_snapshot import monitored_snapshot
from sitewatch.analytics.change.contrast import _block_mean, _expand, _window_range
from sitewatch.pipeline.evidence import AlignedChip, reference_composite

SNAPSHOT = Path(__file__).parent / "data" / "evidence_snapshot.json"


def _close(found: Any, expected: Any, where: str) -> None:
    """Equal structure, equal text and counts, floats within float noise (1e-5 relative)."""
    if isinstance(expected, dict):
        assert isinstance(found, dict) and sorted(found) == sorted(expected), where
        for key in expected:
            _close(found[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected), (where, found, expected)
        for index, (one, other) in enumerate(zip(found, expected, strict=True)):
            _close(one, other, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert isinstance(found, int | float) and math.isclose(found, expected, rel_tol=1e-5, abs_tol=1e-3), \
            (where, found, expected)
    else:
        assert found == expected, (where, found, expected)


def test_the_monitor_stores_what_it_stored_before_it_was_made_faster(tmp_path: Path) -> None:
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    found = json.loads(json.dumps(monitored_snapshot(tmp_path)))  # the file's types: tuples become lists
    assert sum(len(o["regions"]) for o in expected.values()) > 50  # the yardstick measures something
    _close(found, expected, "snapshot")


def _plain_composite(chips: list[AlignedChip]) -> tuple[np.ndarray, np.ndarray]:
    """The composite rule written plainly over NaN layers (the form before issue 18)."""
    layers = [np.where(c.valid, c.pixels, np.nan) for c in chips]
    valid = np.any(np.stack([c.valid for c in chips]), axis=0)
    if len(layers) == 1:
        composite = layers[0]
    elif len(layers) == 2:
        composite = 0.5 * (layers[0] + layers[1])
        composite = np.where(np.isnan(composite), np.fmax(layers[0], layers[1]), composite)
    else:
        low, high = np.fmin(layers[0], layers[1]), np.fmax(layers[0], layers[1])
        composite = np.fmax(low, np.fmin(high, layers[2]))
    return np.nan_to_num(composite, nan=0.0).astype(np.float32), valid


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("clouded", [False, True])
def test_the_reference_composite_equals_its_plain_form(count: int, clouded: bool) -> None:
    rng = np.random.default_rng(count)
    chips = []
    for index in range(count):
        pixels = rng.uniform(0, 255, (3, 40, 50)).astype(np.float32)
        valid = np.ones((40, 50), bool)
        if clouded:
            valid = rng.uniform(size=(40, 50)) > 0.3
            valid[: 10 * (index + 1), :8] = False  # pixels no chip, one chip or two chips see
        chips.append(AlignedChip(pixels, valid, ("red", "green", "blue")))
    composite, valid = reference_composite(chips)
    plain, plain_valid = _plain_composite(chips)
    assert composite.dtype == np.float32 and np.array_equal(composite, plain)
    assert np.array_equal(valid, plain_valid)
    assert all(np.shares_memory(composite, c.pixels) is False for c in chips)


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("shape", [(2, 40, 60), (3, 41, 59)])
def test_block_means_and_expansion_equal_their_plain_forms(factor: int, shape: tuple[int, int, int]) -> None:
    image = np.random.default_rng(factor).uniform(0, 300, shape).astype(np.float32)
    bands, rows, cols = shape
    padded = np.pad(image, ((0, 0), (0, -rows % factor), (0, -cols % factor)), mode="edge")
    blocks = padded.reshape(bands, padded.shape[1] // factor, factor, padded.shape[2] // factor, factor)
    assert np.array_equal(_block_mean(image, factor), blocks.mean(axis=(2, 4)))  # bit for bit
    small = _block_mean(image, factor)[0]
    plain = np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)[:rows, :cols]
    assert np.array_equal(_expand(small, factor, (rows, cols)), plain)


@pytest.mark.parametrize("size", [3, 5])
def test_window_ranges_equal_scipys_filters(size: int) -> None:
    image = np.random.default_rng(size).normal(size=(37, 45)).astype(np.float32)
    low, high = _window_range(image, size)
    assert np.array_equal(low, ndimage.minimum_filter(image, size=size, mode="nearest"))
    assert np.array_equal(high, ndimage.maximum_filter(image, size=size, mode="nearest"))
