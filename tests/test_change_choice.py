"""One rule for the change method: from the input's GSD and band names, never 'the first three bands'."""

from __future__ import annotations

import numpy as np
import pytest

from sitewatch.analytics.change import (
    FALLBACK_CHANGE_METHOD,
    HIGH_RESOLUTION_LIMIT_M,
    choice,
    choose_change_method,
    choose_monitoring_detector,
    get_change_detector,
    input_bands,
    take_bands,
)
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.simulate import load_scenario
from sitewatch.imagery.simulate.writer import BANDS as SIMULATED_BANDS

RGB = ("red", "green", "blue")
NAIP = ("red", "green", "blue", "nir")
WORLDVIEW3 = ("coastal", "blue", "green", "yellow", "red", "red_edge", "nir1", "nir2")
LANDSAT = tuple(f"b{i}" for i in range(1, 7))


@pytest.mark.parametrize(("gsd", "names", "method", "bands"), [
    (0.5, RGB, "learned", (0, 1, 2)),
    (0.3, NAIP, "learned", (0, 1, 2)),
    (1.0, WORLDVIEW3, "learned", (4, 2, 1)),                 # red, green, blue wherever they sit
    (0.5, ("Blue", "Green", "Red"), "learned", (2, 1, 0)),   # GDAL colour interpretation names
    (0.5, ("b1", "b2", "b3"), "segments", (0, 1, 2)),        # unnamed: no RGB-only method
    (0.5, ("nir", "red", "green"), "segments", (0, 1, 2)),   # false colour: no blue
    (2.0, RGB, "segments", (0, 1, 2)),                       # outside the learned model's range
    (HIGH_RESOLUTION_LIMIT_M, NAIP, "segments", (0, 1, 2, 3)),
    (30.0, LANDSAT, "irmad", (0, 1, 2, 3, 4, 5)),
    (30.0, ("b1",), "cva", (0,)),
])
def test_the_rule(gsd: float, names: tuple[str, ...], method: str, bands: tuple[int, ...]) -> None:
    chosen = choose_change_method(gsd, names)
    assert (chosen.method, chosen.bands) == (method, bands)
    assert chosen.reason and chosen.detector().name == method


@pytest.mark.parametrize("gsd", [None, float("nan"), 0.0, -1.0])
def test_unknown_gsd_takes_the_fallback(gsd: float | None) -> None:
    for names in (RGB, LANDSAT, ("b1",)):
        chosen = choose_change_method(gsd, names)
        assert chosen.method == FALLBACK_CHANGE_METHOD and "GSD unknown" in chosen.reason
        assert chosen.bands == input_bands(get_change_detector(FALLBACK_CHANGE_METHOD), names)


def test_a_fallback_that_needs_rgb_gets_it_by_name_or_gives_way(monkeypatch: pytest.MonkeyPatch) -> None:
    # the fallback is one constant: whatever it is set to, the rule follows it
    monkeypatch.setattr(choice, "FALLBACK_CHANGE_METHOD", "learned")
    assert choose_change_method(None, WORLDVIEW3).method == "learned"
    assert choose_change_method(None, WORLDVIEW3).bands == (4, 2, 1)
    unnamed = choose_change_method(None, LANDSAT)
    assert unnamed.method == "irmad" and "learned cannot run" in unnamed.reason
    assert choose_change_method(None, ("b1",)).method == "cva"


def test_the_demo_keeps_the_learned_model() -> None:
    # The simulator's chips (0.5 m, bands named red, green, blue) got `learned` from the rule this
    # one replaced (learned on >= 3 bands at 0.3-1 m); they still do, on the same three bands.
    chosen = choose_change_method(load_scenario("reference").gsd, SIMULATED_BANDS)
    assert (chosen.method, chosen.bands) == ("learned", (0, 1, 2))


def test_input_bands_and_take_bands() -> None:
    learned, cva = get_change_detector("learned"), get_change_detector("cva")
    assert learned.bands == RGB and cva.bands == ()
    assert input_bands(learned, WORLDVIEW3) == (4, 2, 1)
    assert input_bands(cva, WORLDVIEW3) == tuple(range(8))
    with pytest.raises(UnsupportedInputError, match=r"learned reads the red, green, blue bands.*'b1'"):
        input_bands(learned, LANDSAT)
    with pytest.raises(UnsupportedInputError, match="no bands"):
        choose_change_method(0.5, ())
    image = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    assert take_bands(image, (0, 1, 2, 3)) is image
    np.testing.assert_array_equal(take_bands(image, (2, 0)), image[[2, 0]])


@pytest.mark.parametrize(("gsd", "method"), [(0.1, "contrast"), (0.5, "contrast"), (2.0, "contrast"),
                                              (0.05, "cva"), (2.5, "cva"), (10.0, "cva")])
def test_the_monitor_has_its_own_rule_object_scale_change(gsd: float, method: str) -> None:
    """Not choose_change_method: the monitor's indicators need object-scale change (contrast at the
    site's GSD within its declared range), where the general map of a 0.5 m RGB chip is learned."""
    detector, why = choose_monitoring_detector(gsd)
    assert detector.name == method and "monitor" in why
    if method == "contrast":
        assert detector.gsd == gsd  # type: ignore[attr-defined]  # its scales in pixels follow the site
    assert choose_change_method(0.5, RGB).method == "learned"
