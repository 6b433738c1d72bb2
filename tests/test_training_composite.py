"""Training data for real backgrounds: sprites, copy-paste composition, ignore regions, tile mosaics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sitewatch.analytics.objects.onnx import merge_overlapping
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.training.composite import CompositeSettings, Compositor
from sitewatch.training.data import Augmentation, CropSampler, TrainingFrame, encode_targets
from sitewatch.training.mosaic import lonlat_to_pixel, read_tile_mosaics, tile_gsd
from sitewatch.training.sprites import Sprite, draw_car, draw_large_vehicle, real_car_sprites

CLASSES = ("car", "large_vehicle", "tanker_truck")


def _grey(size: int = 96) -> np.ndarray:
    return np.full((size, size, 3), 0.5, np.float32)


def test_drawn_vehicles_have_their_real_sizes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        car = draw_car(rng)
        assert 3.6 <= car.length <= 5.1 and 1.6 <= car.width <= 2.0 and car.class_name == "car"
        assert car.rgba[..., 3].max() == pytest.approx(1.0) and car.rgba[0, 0, 3] < 0.5  # rounded corners
        truck = draw_large_vehicle(rng)
        assert 4.0 <= truck.length <= 19.5 and 2.3 <= truck.width <= 2.7
        assert truck.class_name in ("large_vehicle", "tanker_truck")
    assert draw_large_vehicle(rng, "tanker").class_name == "tanker_truck"


def test_real_car_sprites_come_from_axis_aligned_whole_cars_only() -> None:
    image = Image.new("RGB", (200, 100), (120, 120, 120))
    boxes = np.array([[10, 10, 40, 22],    # 30 x 12 px at 0.15 m: a 4.5 m car along x
                      [60, 10, 72, 40],    # the same along y
                      [100, 10, 125, 30],  # nearly square: a car at another heading, box holds ground
                      [180, 50, 210, 62],  # cut by the frame's right edge
                      [10, 60, 40, 72]], np.float32)
    classes = np.array([0, 0, 0, 0, 1])
    frame = TrainingFrame("F", image, 0.15, boxes, classes)
    sprites = real_car_sprites([frame], car_index=0)
    assert len(sprites) == 2
    for sprite in sprites:
        assert sprite.rgba.shape[:2] == (12, 30) and sprite.length == pytest.approx(4.5)


def _compositor(**settings: float) -> Compositor:
    rng = np.random.default_rng(1)
    cars = [draw_car(rng) for _ in range(5)]
    large = [draw_large_vehicle(rng, "bus") for _ in range(3)]
    return Compositor(CompositeSettings(**settings), CLASSES, real_cars=[], drawn_cars=cars, large=large,
                      finest_gsd=0.24)


def test_pasted_vehicles_are_labelled_where_they_are_drawn() -> None:
    compositor = _compositor(vehicle_probability=1.0, mean_vehicles=6, marking_probability=0,
                             clutter_probability=0, building_shadow_probability=0)
    rng = np.random.default_rng(3)
    for _ in range(10):
        pixels, boxes, classes = compositor.apply(_grey(), 0.3, np.zeros((0, 4), np.float32),
                                                  np.zeros(0, np.int64), np.zeros((0, 4), np.float32), rng)
        assert len(boxes) == len(classes) >= 1
        changed = np.abs(pixels - 0.5).max(axis=2) > 0.02
        for x0, y0, x1, y1 in boxes:
            inside = changed[max(0, int(y0)):math.ceil(y1), max(0, int(x0)):math.ceil(x1)]
            assert inside.mean() > 0.3  # the vehicle (and its shadow) is in its box
            assert x1 > x0 and y1 > y0
        # Nothing is drawn farther from a box than the longest shadow (a 3.2 m bus, sun at 25 degrees).
        reach = math.ceil(3.5 / math.tan(math.radians(25)) / 0.3) + 2
        covered = np.zeros_like(changed)
        for x0, y0, x1, y1 in boxes:
            covered[max(0, int(y0) - reach):int(y1) + reach, max(0, int(x0) - reach):int(x1) + reach] = True
        assert not (changed & ~covered).any()


def test_pasting_keeps_clear_of_labelled_objects_and_ignore_regions() -> None:
    compositor = _compositor(vehicle_probability=1.0, mean_vehicles=30, marking_probability=0,
                             clutter_probability=0, building_shadow_probability=0)
    existing = np.array([[0, 0, 48, 96]], np.float32)
    ignore = np.array([[48, 0, 96, 40]], np.float32)
    rng = np.random.default_rng(4)
    _, boxes, classes = compositor.apply(_grey(), 0.3, existing, np.zeros(1, np.int64), ignore, rng)
    assert boxes[0].tolist() == existing[0].tolist() and classes[0] == 0
    for x0, y0, x1, y1 in boxes[1:]:
        for ox0, oy0, ox1, oy1 in (existing[0], ignore[0]):
            overlap = max(0, min(x1, ox1) - max(x0, ox0)) * max(0, min(y1, oy1) - max(y0, oy0))
            assert overlap <= 0.1 * (x1 - x0) * (y1 - y0) + 1e-6


def test_look_alikes_and_shadows_add_no_labels() -> None:
    compositor = _compositor(vehicle_probability=0.0, marking_probability=1.0, clutter_probability=1.0,
                             harbour_probability=1.0, aircraft_probability=1.0,
                             building_shadow_probability=1.0)
    rng = np.random.default_rng(5)
    pixels, boxes, classes = compositor.apply(_grey(), 0.3, np.zeros((0, 4), np.float32),
                                              np.zeros(0, np.int64), np.zeros((0, 4), np.float32), rng)
    assert len(boxes) == 0 and len(classes) == 0
    assert np.abs(pixels - 0.5).max() > 0.1  # something was painted
    assert pixels.min() >= 0 and pixels.max() <= 1


def test_ignore_regions_silence_the_loss_but_not_an_objects_peak() -> None:
    boxes = np.array([[40.0, 20.0, 70.0, 34.0]], np.float32)
    ignore = np.array([[0.0, 0.0, 32.0, 32.0], [36.0, 16.0, 74.0, 38.0]], np.float32)
    target = encode_targets(boxes, np.array([0]), num_classes=1, size=64, stride=4, max_objects=4,
                            ignore=ignore)
    weight = target["weight"]
    assert weight[:8, :8].sum() == 0 and weight[10:, :].min() == 1 and weight[:, :9][8:].min() == 1
    assert weight[6, 13] == 1.0  # the object's own peak is still learned
    assert weight[5, 10] == 0.0


def test_crops_carry_ignore_regions_through_turns() -> None:
    """A frame that is one ignore region: in every crop (shifted, scaled, turned, flipped) its pixels
    lie inside the crop's ignore box (crops may reach past the frame, where they are black)."""
    image = Image.new("RGB", (120, 120), (128, 128, 128))
    frame = TrainingFrame("F", image, 0.3, np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                          ignore=np.array([[0, 0, 120, 120]], np.float32))
    sampler = CropSampler([frame], model_gsd=0.3, crop=64, seed=2,
                          augmentation=Augmentation(colour_jitter=0, noise_std=0, rotate_probability=0.7))
    for _ in range(30):
        crop = sampler.sample()
        assert len(crop.ignore) == 1
        x0, y0, x1, y1 = crop.ignore[0]
        rows, cols = np.nonzero(crop.pixels.max(axis=0) > 0.1)
        assert rows.size > 0
        assert cols.min() >= x0 - 1.5 and cols.max() + 1 <= x1 + 1.5
        assert rows.min() >= y0 - 1.5 and rows.max() + 1 <= y1 + 1.5


def test_oriented_corners_give_tight_boxes_when_turned() -> None:
    """A render's diagonal truck turned by 45 degrees lies along an axis: its box must be tight."""
    image = Image.new("RGB", (300, 300), (128, 128, 128))
    centre, half_l, half_w = np.array([150.0, 150.0]), 20.0, 4.0
    axis, across = np.array([1, -1]) / math.sqrt(2), np.array([1, 1]) / math.sqrt(2)
    corners = np.array([[centre + sl * half_l * axis + sw * half_w * across
                         for sl, sw in ((-1, -1), (1, -1), (1, 1), (-1, 1))]])
    box = np.concatenate([corners[0].min(0), corners[0].max(0)])[None].astype(np.float32)
    frame = TrainingFrame("R", image, 0.3, box, np.zeros(1, np.int64), corners=corners)
    sampler = CropSampler([frame], model_gsd=0.3, crop=96, seed=0,
                          augmentation=Augmentation(scale_jitter=0, rotate_probability=1.0,
                                                    object_probability=1.0))
    sides = []
    for _ in range(40):
        crop = sampler.sample()
        if len(crop.boxes):
            x0, y0, x1, y1 = crop.boxes[0]
            sides.append(min(x1 - x0, y1 - y0))
    assert min(sides) < 12  # some turn lines it up with an axis: 8 px wide, not the 34 px of a box of a box


def test_overlapping_crane_boxes_become_the_best_one() -> None:
    rows = np.array([
        [4, 0.9, 10, 0, 90, 20],     # the crane's best box
        [4, 0.5, 15, 5, 60, 12],     # a part of its jib
        [4, 0.4, 0, 2, 30, 40],      # its mast, overlapping the best box by more than a tenth of its own
        [4, 0.8, 300, 300, 320, 320],  # another crane
        [4, 0.3, 100, 100, 120, 104],  # a third one, clear of the others
    ], np.float64)
    merged = merge_overlapping(rows)
    assert sorted(merged[:, 1].tolist()) == [0.3, 0.8, 0.9]
    assert merged[np.argmax(merged[:, 1])].tolist() == [4, 0.9, 10, 0, 90, 20]


def _tile(root: Path, x: int, y: int, z: int, colour: tuple[int, int, int]) -> None:
    Image.new("RGB", (256, 256), colour).save(root / f"OAM-{x}-{y}-{z}.png")


def test_tile_mosaics_join_neighbours_and_place_labels(tmp_path: Path) -> None:
    zoom, x0, y0 = 21, 1238448, 1046528
    for dx in range(2):
        for dy in range(2):
            if (dx, dy) != (1, 1):
                _tile(tmp_path, x0 + dx, y0 + dy, zoom, (100 + 50 * dx, 100, 100 + 50 * dy))
    _tile(tmp_path, x0 + 10, y0, zoom, (0, 0, 0))  # a separate group
    _tile(tmp_path, x0 // 2, y0 // 2, zoom - 1, (0, 0, 0))  # another zoom: not read

    def lonlat(px: float, py: float) -> list[float]:
        size = 256 * 2**zoom
        lon = px / size * 360 - 180
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / size))))
        return [lon, lat]

    def box(cls: str, bx0: float, by0: float, bx1: float, by1: float) -> dict[str, object]:
        gx, gy = x0 * 256, y0 * 256
        ring = [lonlat(gx + bx0, gy + by0), lonlat(gx + bx1, gy + by0), lonlat(gx + bx1, gy + by1),
                lonlat(gx + bx0, gy + by1), lonlat(gx + bx0, gy + by0)]
        return {"type": "Feature", "properties": {"class": cls},
                "geometry": {"type": "Polygon", "coordinates": [ring]}}

    labels = tmp_path / "labels.geojson"
    labels.write_text(json.dumps({"type": "FeatureCollection", "features": [
        box("car", 300, 40, 360, 64), box("ignore", 10, 300, 40, 330), box("bicycle", 5, 5, 9, 9)]}))
    frames = read_tile_mosaics(tmp_path, zoom=zoom, labels=labels, classes=CLASSES)
    assert [f.image.size for f in frames] == [(512, 512), (256, 256)]
    main = frames[0]
    assert np.allclose(main.boxes, [[300, 40, 360, 64]], atol=1e-3)
    assert main.classes.tolist() == [0]
    # the missing tile (1, 1) and the ignore label are ignore regions
    assert [256, 256, 512, 512] in main.ignore.tolist()
    assert np.any(np.all(np.abs(main.ignore - np.array([10, 300, 40, 330])) < 1e-3, axis=1))
    assert main.image.getpixel((300, 10)) == (150, 100, 100) and not main.rotatable
    assert main.gsd == pytest.approx(tile_gsd(zoom, 0.35), rel=1e-3)
    assert lonlat_to_pixel(*lonlat(12345.0, 67890.0), zoom) == pytest.approx((12345.0, 67890.0), abs=1e-3)


def test_tile_mosaics_explain_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInputError, match="no web-map tiles"):
        read_tile_mosaics(tmp_path, zoom=21, labels=None, classes=CLASSES)
    _tile(tmp_path, 1, 1, 21, (1, 2, 3))
    bad = tmp_path / "labels.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"properties": {}}]}')
    with pytest.raises(UnsupportedInputError, match="feature 0"):
        read_tile_mosaics(tmp_path, zoom=21, labels=bad, classes=CLASSES)


def test_sprite_sizes_follow_the_gsd() -> None:
    sprite = Sprite(np.ones((10, 25, 4), np.float32), 0.2, "car", 1.5, "test")
    assert sprite.length == pytest.approx(5.0) and sprite.width == pytest.approx(2.0)
