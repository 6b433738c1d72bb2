"""The models a workspace was fine-tuned with, beside the shipped ones.

``sitewatch train detector --data DIR`` and ``sitewatch train change --pairs DIR`` write a model
fine-tuned on the workspace's own labels, with its card, into ``<workspace>/models/``. From then on
every step of that workspace that runs the vehicle detector or the learned change model runs that
one: detection, the monitor's evidence step, ``sitewatch change``, and ``sitewatch eval`` (which
then prints before and after). Each file is checked against the card's checksum, and read again
whenever the files change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sitewatch.analytics.change import ChangeDetector
from sitewatch.analytics.change.learned import SHIPPED_MODEL as CHANGE_MODEL
from sitewatch.analytics.change.learned import LearnedBuildings, LearnedSite
from sitewatch.analytics.objects.onnx import SHIPPED_MODEL, OnnxDetector, load_detector, model_files_version
from sitewatch.store.workspace import models_dir

_LOADED: dict[Path, tuple[tuple[tuple[str, int, int], ...], OnnxDetector]] = {}
"""Workspace model card -> (the version of its files, the detector loaded from them)."""


def workspace_model_card(root: Path) -> Path:
    """Where the vehicle detector fine-tuned for the workspace at ``root`` has its card."""
    return models_dir(root) / f"{SHIPPED_MODEL}.json"


def workspace_detector(root: Path) -> OnnxDetector | None:
    """The vehicle detector fine-tuned on the labels of the workspace at ``root``
    (``sitewatch train detector --data DIR``), or None when it has none. Its files are checked
    against its card; it is loaded again when they change (a new fine-tuning run, a damaged file)."""
    card = workspace_model_card(root)
    if not card.is_file():
        return None
    version = model_files_version(card)
    cached = _LOADED.get(card.resolve())
    if cached is not None and cached[0] == version:
        return cached[1]
    remedy = (f"fine-tune it again with `sitewatch train detector --data DIR -w {root}`, or delete "
              f"{card.parent}/{SHIPPED_MODEL}.* to use the shipped model")
    detector = load_detector(card, remedy=remedy)
    _LOADED[card.resolve()] = (version, detector)
    return detector



def workspace_change_card(root: Path) -> Path:
    """Where the change model fine-tuned for the workspace at ``root`` has its card."""
    return models_dir(root) / f"{CHANGE_MODEL}.json"


def with_change_model(detector: ChangeDetector, card: Path | None) -> ChangeDetector:
    """A learned detector running the fine-tuned change model of ``card`` (when given and present);
    any other detector as it is."""
    if (card is not None and card.is_file() and isinstance(detector, LearnedBuildings | LearnedSite)
            and detector.model is None):
        return dataclasses.replace(detector, model=card)
    return detector
