"""The detector training configuration: one YAML file that, with its seed, regenerates the weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sitewatch.core.errors import UnsupportedInputError
from sitewatch.training.composite import CompositeSettings
from sitewatch.training.data import Augmentation
from sitewatch.training.simulated import SimulatedSpec


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A labelled folder to learn from; ``holdout`` names frames kept out for measurement,
    ``validation`` frames kept out to choose the operating threshold on."""

    path: Path
    format: str = "yolo"
    holdout: tuple[str, ...] = ()
    validation: tuple[str, ...] = ()
    gsd: float | None = None
    """Metres per pixel; None reads it from the folder as `sitewatch eval detect` does."""
    extra_labels: Path | None = None
    """YAML of boxes missing from the folder's labels, per frame and class (``ignore`` too)."""
    share: float | None = None
    """Share of training crops drawn from this folder's frames (None: what the others leave)."""


@dataclass(frozen=True, slots=True)
class MosaicSpec:
    """A folder of web-map tiles with a GeoJSON of labels drawn over them (see training.mosaic)."""

    path: Path
    zoom: int
    labels: Path | None
    share: float


@dataclass(frozen=True, slots=True)
class SpriteSpec:
    """How many vehicles to draw for pasting (real cars are cut from every training frame)."""

    drawn_cars: int = 0
    drawn_large: int = 0


@dataclass(frozen=True, slots=True)
class MiningSpec:
    """Hard-negative mining: at these fractions of training, the model looks at every training frame
    and places where it finds a vehicle that no label or ignore region explains become crop centres."""

    at: tuple[float, ...] = ()
    threshold: float = 0.3


@dataclass(frozen=True, slots=True)
class DetectorTrainingConfig:
    name: str
    version: str
    seed: int
    classes: tuple[str, ...]
    datasets: tuple[DatasetSpec, ...]
    output: Path
    simulated: SimulatedSpec | None = None
    """Simulator renders to train on (None: real frames only)."""
    simulated_share: float = 0.0
    simulated_holdout: SimulatedSpec | None = None
    """Renders with another seed, measured and never trained on."""
    simulated_validation: SimulatedSpec | None = None
    """Renders with a third seed, never trained on: they choose the thresholds of classes that have
    no real validation frames."""
    mosaics: tuple[MosaicSpec, ...] = ()
    sprites: SpriteSpec = field(default_factory=SpriteSpec)
    composite: CompositeSettings = field(default_factory=CompositeSettings)
    mining: MiningSpec = field(default_factory=MiningSpec)
    merge_classes: tuple[str, ...] = ()
    """Classes whose overlapping boxes are one object (a crane's jib gives several peaks)."""
    model_gsd: float = 0.3
    gsd_range: tuple[float, float] = (0.1, 1.0)
    width: int = 32
    light: bool = False
    """A lighter network at stride 4 (see :class:`~sitewatch.training.model.CenterNetLite`)."""
    steps: int = 3000
    batch: int = 16
    crop: int = 192
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    threads: int = 2
    max_objects: int = 128
    tile: int = 512
    overlap: int = 96
    precision: str = "float32"
    """Weights of the shipped ONNX file: ``float32``, or ``int8`` (see :mod:`sitewatch.training.quantize`)."""
    augmentation: Augmentation = field(default_factory=Augmentation)
    raw: dict[str, Any] = field(default_factory=dict)
    """The config as read, recorded in the model card."""


PRECISIONS = ("float32", "int8")


def check_precision(value: object, path: Path) -> str:
    """A config's ``precision``, or the error that says what to write."""
    if value not in PRECISIONS:
        raise UnsupportedInputError(
            f"training config {path}: precision {value!r} is not one of {', '.join(PRECISIONS)}; "
            "write `precision: int8` for the shipped 8-bit model or `precision: float32`"
        )
    return str(value)


_PATHS = {"": ("output",), "datasets": ("path", "extra_labels"), "mosaics": ("path", "labels")}
"""Where a config names files: top-level keys, and keys of each entry of a list."""


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for key, value in override.items():
        out[key] = (_merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict)
                    else value)
    return out


def _read_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The config at ``path`` as a mapping; with ``extends: OTHER.yaml`` (relative to it), that config
    with this one's keys over it, the other's file paths made absolute so they keep pointing where
    it meant."""
    if not path.is_file():
        raise UnsupportedInputError(f"training config {path} not found; see configs/detector.yaml")
    if path.resolve() in seen:
        raise UnsupportedInputError(f"training config {path} extends itself (through {seen[-1]}); "
                                    "remove the `extends` that closes the loop")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    parent = raw.pop("extends", None)
    if parent is None:
        return dict(raw)
    folder = (path.parent / str(parent)).resolve().parent
    inherited = _read_raw(path.parent / str(parent), (*seen, path.resolve()))
    for section, keys in _PATHS.items():
        for entry in ([inherited] if not section else inherited.get(section, ())):
            for key in keys:
                if entry.get(key):
                    entry[key] = str((folder / str(entry[key])).resolve())
    return _merged(inherited, raw)


def load_config(path: Path) -> DetectorTrainingConfig:
    """Read a detector training config; relative paths are taken from the config file's folder.
    ``extends: OTHER.yaml`` takes every setting of another config that this one does not give (the
    experiments in configs/experiments/ are the shipped recipe with a change or two)."""
    raw = _read_raw(path)
    base = path.resolve().parent
    try:
        datasets = tuple(
            DatasetSpec(
                path=(base / d["path"]).resolve(),
                format=str(d.get("format", "yolo")),
                holdout=tuple(str(h) for h in d.get("holdout", ())),
                validation=tuple(str(v) for v in d.get("validation", ())),
                gsd=float(d["gsd"]) if d.get("gsd") is not None else None,
                extra_labels=(base / d["extra_labels"]).resolve() if d.get("extra_labels") else None,
                share=float(d["share"]) if d.get("share") is not None else None,
            )
            for d in raw["datasets"]
        )
        mosaics = tuple(
            MosaicSpec(path=(base / m["path"]).resolve(), zoom=int(m["zoom"]),
                       labels=(base / m["labels"]).resolve() if m.get("labels") else None,
                       share=float(m["share"]))
            for m in raw.get("mosaics", ())
        )
        sim = raw.get("simulated")
        simulated = holdout = validation = None
        if sim:
            simulated = SimulatedSpec(scenario=str(sim.get("scenario", "reference")), seed=int(sim["seed"]),
                                      dates_per_site=int(sim.get("dates_per_site", 8)))
            if sim.get("holdout_seed") is not None:
                holdout = SimulatedSpec(scenario=simulated.scenario, seed=int(sim["holdout_seed"]),
                                        dates_per_site=int(sim.get("holdout_dates_per_site", 3)))
            if sim.get("validation_seed") is not None:
                validation = SimulatedSpec(scenario=simulated.scenario, seed=int(sim["validation_seed"]),
                                           dates_per_site=int(sim.get("validation_dates_per_site", 3)))
        train = dict(raw.get("training", {}))
        gsd_range = raw.get("gsd_range", [0.1, 1.0])
        return DetectorTrainingConfig(
            name=str(raw["name"]),
            version=str(raw["version"]),
            seed=int(raw["seed"]),
            classes=tuple(str(c) for c in raw["classes"]),
            datasets=datasets,
            output=(base / raw["output"]).resolve(),
            simulated=simulated,
            simulated_share=float(sim.get("share", 0.3)) if sim else 0.0,
            simulated_holdout=holdout,
            simulated_validation=validation,
            mosaics=mosaics,
            sprites=SpriteSpec(**raw.get("sprites", {})),
            composite=CompositeSettings(**raw.get("composite", {})),
            mining=MiningSpec(at=tuple(float(a) for a in raw.get("mining", {}).get("at", ())),
                              threshold=float(raw.get("mining", {}).get("threshold", 0.3))),
            merge_classes=tuple(str(c) for c in raw.get("merge_classes", ())),
            model_gsd=float(raw.get("model_gsd", 0.3)),
            gsd_range=(float(gsd_range[0]), float(gsd_range[1])),
            width=int(raw.get("width", 32)),
            light=bool(raw.get("light", False)),
            steps=int(train.get("steps", 3000)),
            batch=int(train.get("batch", 16)),
            crop=int(train.get("crop", 192)),
            learning_rate=float(train.get("learning_rate", 3e-3)),
            weight_decay=float(train.get("weight_decay", 1e-4)),
            threads=int(train.get("threads", 2)),
            tile=int(raw.get("tile", 512)),
            overlap=int(raw.get("overlap", 96)),
            precision=check_precision(raw.get("precision", "float32"), path),
            augmentation=Augmentation(**raw.get("augmentation", {})),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UnsupportedInputError(
            f"training config {path}: {error!r} is missing or malformed; compare with configs/detector.yaml"
        ) from None
