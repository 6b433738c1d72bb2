"""The project's learned building-change detector, run with onnxruntime.

A small siamese U-Net (``sitewatch.training.change_model``) trained by the project on
synthetic pairs made from single images (``sitewatch.training.change_pairs``): buildings
that stand on one date only are change; the season, new roads, cars, moved shadows and the
two dates' radiometry are not. It never saw LEVIR-CD or any pair it is scored on. Its
operating point is a fixed probability of 0.5 (the logistic's natural boundary), chosen
before any scoring. Large images run in overlapping tiles whose cores partition the image,
so memory stays bounded and no seam shows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from sitewatch.analytics.change.base import (
    BoolMask,
    ChangeResult,
    FloatImage,
    check_pair,
    logistic_inplace,
    register_change_detector,
)
from sitewatch.analytics.change.thresholds import sample_valid
from sitewatch.analytics.objects.onnx import model_files_version
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.imagery.bands import RGB

SHIPPED_MODEL = "buildings"
_MODELS = "sitewatch.analytics.change.models"
_CENTRE, _SPREAD, _LIMIT = 0.45, 0.22, (-0.5, 1.5)
"""Where a date's median goes, what its robust standard deviation becomes, and the clip."""


def normalise_date(
    image: NDArray[np.floating], valid: NDArray[np.bool_] | None = None
) -> NDArray[np.float32]:
    """One date's ``(bands, rows, cols)`` pixels in robust units: its median (bands together, so
    colours keep their balance) to 0.45 and its robust standard deviation (IQR / 1.349) to 0.22,
    clipped to -0.5..1.5. Each date on its own, so gain and offset between dates do not reach the
    model, and by median and quartiles, so a large new bright roof does not rescale the rest of
    the image (a percentile stretch did: its top percentile was the roof). Training pairs go
    through the same function."""
    pixels = np.asarray(image, dtype=np.float32)
    mask = np.isfinite(pixels).all(axis=0) if valid is None else valid
    sample = sample_valid(pixels.reshape(pixels.shape[0], -1).T,
                          np.asarray(mask, bool).ravel(), limit=200_000)
    if sample.size == 0:
        return np.full(pixels.shape, _CENTRE, np.float32)
    low, centre, high = np.percentile(sample, (25.0, 50.0, 75.0))
    spread = max(float(high - low) / 1.349, 1e-6)
    out = np.subtract(np.nan_to_num(pixels), np.float32(centre), dtype=np.float32)
    out *= np.float32(_SPREAD / spread)
    out += np.float32(_CENTRE)
    return np.clip(out, *_LIMIT, out=out)


@dataclass(frozen=True, slots=True)
class ChangeModelCard:
    """What the shipped ONNX file is, read from its JSON card beside it."""

    name: str
    version: str
    onnx_file: str
    sha256: str
    gsd_range: tuple[float, float]
    input_multiple: int
    threshold: float
    tile: int = 512
    overlap: int = 64
    flips: bool = False
    """Average the logits over the image and its three mirror images (the model was trained
    with them as augmentation, so any disagreement is noise); four times the work."""
    outputs: tuple[str, ...] = ("buildings",)
    """What each output channel marks: ``buildings`` (building change) and, from version 3,
    ``site`` (any change a site monitor cares about)."""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_credit: tuple[str, ...] = ()
    architecture: dict[str, Any] = field(default_factory=dict)
    """The torch model the file was exported from (``{"model": "SiameseUNet", "width": 16}``)."""
    weights_file: str | None = None
    """The float weights (``<name>.weights.npz``) to fine-tune from; None when not shipped."""
    weights_sha256: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> ChangeModelCard:
        try:
            return cls(
                name=str(data["name"]), version=str(data["version"]), onnx_file=str(data["onnx_file"]),
                sha256=str(data["sha256"]),
                gsd_range=(float(data["gsd_range"][0]), float(data["gsd_range"][1])),
                input_multiple=int(data["input_multiple"]), threshold=float(data["threshold"]),
                tile=int(data.get("tile", 512)), overlap=int(data.get("overlap", 64)),
                flips=bool(data.get("flips", False)),
                outputs=tuple(str(o) for o in data.get("outputs", ["buildings"])),
                training=dict(data.get("training", {})),
                metrics=dict(data.get("metrics", {})),
                data_credit=tuple(data.get("data_credit", ())),
                architecture=dict(data.get("architecture", {})),
                weights_file=str(data["weights_file"]) if data.get("weights_file") else None,
                weights_sha256=str(data["weights_sha256"]) if data.get("weights_sha256") else None,
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise UnsupportedInputError(
                f"change model card {source} is malformed ({error!r}); regenerate it with "
                "`sitewatch train change`"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "onnx_file": self.onnx_file, "sha256": self.sha256,
            "gsd_range": list(self.gsd_range), "input_multiple": self.input_multiple,
            "threshold": self.threshold, "tile": self.tile, "overlap": self.overlap,
            "flips": self.flips, "outputs": list(self.outputs), "training": self.training,
            "metrics": self.metrics,
            "data_credit": list(self.data_credit), "architecture": self.architecture,
            "weights_file": self.weights_file, "weights_sha256": self.weights_sha256,
        }


def shipped_model_dir() -> Path:
    """The folder of the shipped change model and its card, inside the package."""
    return Path(str(resources.files(_MODELS)))


def _load(card_path: Path | None) -> tuple[ChangeModelCard, ort.InferenceSession]:
    """The model of ``card_path`` (a fine-tuned one, e.g. a workspace's ``models/buildings.json``),
    or the shipped one for None; refused when the ONNX file does not match its card's checksum.
    Loaded once per version of its files: a model rewritten by another training run is read again."""
    if card_path is None:
        return _load_version(None, ())
    return _load_version(card_path, model_files_version(card_path))


@cache
def _load_version(card_path: Path | None,
                  version: tuple[tuple[str, int, int], ...]) -> tuple[ChangeModelCard, ort.InferenceSession]:
    if card_path is None:
        folder = shipped_model_dir()
        card_file = folder / f"{SHIPPED_MODEL}.json"
        remedy = "reinstall the package or regenerate the model with `sitewatch train change`"
    else:
        folder, card_file = card_path.parent, card_path
        remedy = (f"train it again with `sitewatch train change --pairs DIR`, or delete {card_path.parent}/"
                  f"{card_path.stem}.* to use the shipped model")
        if not card_path.is_file():
            raise UnsupportedInputError(f"change model card {card_path} not found; {remedy}")
    card = ChangeModelCard.from_dict(json.loads(card_file.read_text()), str(card_file))
    model_file = folder / card.onnx_file
    if not model_file.is_file():
        raise UnsupportedInputError(f"change model {model_file} named by {card_file} is missing; {remedy}")
    payload = model_file.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != card.sha256:
        raise UnsupportedInputError(
            f"change model {model_file} has SHA-256 {digest[:12]}..., its card says "
            f"{card.sha256[:12]}...: the file is damaged or was replaced; {remedy}"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 0
    # Idle pool threads sleep rather than spin (as the vehicle detector's): the same probabilities, bit
    # for bit, and on a busy 2-core machine 0.45 -> 0.63 MP per two CPU-seconds on a 1,024-pixel pair.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
    return card, session


def _spans(length: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """(start, stop, keep_from, keep_to) along one axis: the fewest tiles of at most ``tile`` pixels
    that overlap by at least ``overlap``, all of one size (a multiple of ``multiple`` where that fits
    in ``tile``, so no padding is computed) and spread evenly; each keeps the part of its output that
    is nearest to it, so the kept parts partition the axis. A 1,024-pixel chip runs 3 x 3 tiles of
    384 pixels (1.3 MP) rather than 3 x 3 of 512 whose last mostly repeats the one before it (2.4 MP);
    a 2,048-pixel window 5 x 5 of 464 (5.4 MP) rather than of 512 (6.6 MP)."""
    if length <= tile:
        return [(0, length, 0, length)]
    count = -(-(length - overlap) // (tile - overlap))
    size = -(-(length + (count - 1) * overlap) // count)
    size = min(tile, -(-size // multiple) * multiple)
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    spans = []
    for i, start in enumerate(starts):
        keep_from = 0 if i == 0 else (start + starts[i - 1] + size) // 2
        keep_to = length if i == len(starts) - 1 else (starts[i + 1] + start + size) // 2
        spans.append((start, start + size, keep_from, keep_to))
    return spans


def _run(session: ort.InferenceSession, before: NDArray[np.float32], after: NDArray[np.float32],
         multiple: int, flips: bool = False, channel: int = 0) -> NDArray[np.float32]:
    rows, cols = before.shape[1:]
    pad_rows, pad_cols = -rows % multiple, -cols % multiple
    if pad_rows or pad_cols:
        pad = ((0, 0), (0, pad_rows), (0, pad_cols))
        before, after = np.pad(before, pad, mode="reflect"), np.pad(after, pad, mode="reflect")
    if not flips:
        logits = session.run(None, {"before": before[None], "after": after[None]})[0]
        return np.asarray(logits[0, channel, :rows, :cols], np.float32)
    views = ((slice(None), slice(None)), (slice(None, None, -1), slice(None)),
             (slice(None), slice(None, None, -1)), (slice(None, None, -1), slice(None, None, -1)))
    first = np.stack([before[(slice(None), *view)] for view in views])
    second = np.stack([after[(slice(None), *view)] for view in views])
    logits = session.run(None, {"before": first, "after": second})[0][:, channel]
    mean = np.mean([logits[k][view] for k, view in enumerate(views)], axis=0)  # each view mirrored back
    return np.asarray(mean[:rows, :cols], np.float32)


def change_probability(before: NDArray[np.float32], after: NDArray[np.float32], *,
                       tile: int | None = None, overlap: int | None = None,
                       flips: bool | None = None, model: Path | None = None,
                       output: str = "buildings") -> NDArray[np.float32]:
    """The change probability of the model of card ``model`` (default: the shipped one) for two
    normalised ``(3, rows, cols)`` dates, run in tiles of ``tile`` pixels overlapping by ``overlap``,
    averaged over mirror images when ``flips`` (defaults from the model card), of the kind of change
    ``output`` names (one of the card's outputs)."""
    card, session = _load(model)
    if output not in card.outputs:
        raise UnsupportedInputError(
            f"change model {card.name} v{card.version} has no {output!r} output (it has "
            f"{', '.join(card.outputs)}); reinstall sitewatch, or use the learned method"
        )
    channel = card.outputs.index(output)
    tile, overlap = tile or card.tile, overlap or card.overlap
    flips = card.flips if flips is None else flips
    rows, cols = before.shape[1:]
    logits = np.empty((rows, cols), np.float32)
    multiple = card.input_multiple
    for r0, r1, keep_r0, keep_r1 in _spans(rows, tile, overlap, multiple):
        for c0, c1, keep_c0, keep_c1 in _spans(cols, tile, overlap, multiple):
            part = _run(session, np.ascontiguousarray(before[:, r0:r1, c0:c1]),
                        np.ascontiguousarray(after[:, r0:r1, c0:c1]), card.input_multiple, flips, channel)
            kept = part[keep_r0 - r0:keep_r1 - r0, keep_c0 - c0:keep_c1 - c0]
            logits[keep_r0:keep_r1, keep_c0:keep_c1] = kept
    return logistic_inplace(logits)


def _learned_change(detector: LearnedBuildings | LearnedSite, output: str, before: FloatImage,
                    after: FloatImage, valid: BoolMask | None) -> ChangeResult:
    before, after, valid = check_pair(detector, before, after, valid)
    if not valid.any():
        zero = np.zeros(valid.shape, np.float32)
        return ChangeResult(zero, zero > 0, 0.5, "no valid pixels", detector.name)
    card, _ = _load(detector.model)
    first, second = normalise_date(before[:3], valid), normalise_date(after[:3], valid)
    first[:, ~valid] = second[:, ~valid] = _CENTRE  # no edges of nodata for the model to see
    probability = change_probability(first, second, model=detector.model, output=output)
    probability[~valid] = 0.0
    mask = (probability >= card.threshold) & valid
    origin = "fine-tuned on the user's pairs" if detector.model is not None else "not tuned on scored data"
    rule = (f"fixed probability {card.threshold:g} (model {card.name} v{card.version}, {output} output, "
            f"{origin})")
    return ChangeResult(probability, mask, card.threshold, rule, detector.name)


@register_change_detector("learned")
@dataclass(frozen=True, slots=True)
class LearnedBuildings:
    """The shipped siamese U-Net: change of buildings between two RGB dates; or, with ``model``, the
    same network fine-tuned on a user's pairs (``sitewatch train change --pairs``).

    It reads red, green and blue in that order: callers pass those bands, found by name
    (:func:`~sitewatch.analytics.change.input_bands`); given more bands, it reads the first three.
    """

    name: str = "learned"
    min_bands: int = 3
    bands: tuple[str, ...] = RGB
    gsd_range: tuple[float, float] = (0.3, 1.0)
    description: str = (
        "siamese U-Net trained by the project on synthetic building-change pairs; "
        "operating point: probability 0.5"
    )
    model: Path | None = None
    """Card of a fine-tuned model (a workspace's ``models/buildings.json``); None: the shipped one."""

    @property
    def context_px(self) -> int:
        """Its model's tile overlap: a window's edge gets the context a seam between its tiles gets."""
        return _load(self.model)[0].overlap

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        return _learned_change(self, "buildings", before, after, valid)


@register_change_detector("learned-site")
@dataclass(frozen=True, slots=True)
class LearnedSite:
    """The shipped siamese U-Net's second output: any change a site monitor cares about between two
    RGB dates (buildings, earthworks and ground scarring, pads and yards, roads and tracks,
    vegetation cleared, water), not the season, shadows, cars or the imaging."""

    name: str = "learned-site"
    min_bands: int = 3
    bands: tuple[str, ...] = RGB
    gsd_range: tuple[float, float] = (0.3, 1.0)
    description: str = (
        "siamese U-Net trained by the project on synthetic site-change pairs (buildings, earthworks, "
        "pads, roads, clearing, water); operating point: probability 0.5"
    )
    model: Path | None = None
    """Card of a fine-tuned model (a workspace's ``models/buildings.json``); None: the shipped one."""

    @property
    def context_px(self) -> int:
        """Its model's tile overlap: a window's edge gets the context a seam between its tiles gets."""
        return _load(self.model)[0].overlap

    def __call__(
        self, before: FloatImage, after: FloatImage, *, valid: BoolMask | None = None
    ) -> ChangeResult:
        return _learned_change(self, "site", before, after, valid)
