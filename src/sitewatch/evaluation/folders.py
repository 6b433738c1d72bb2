"""What a labelled folder says about itself, read the same way by every evaluation verb."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from sitewatch.core.errors import UnsupportedInputError


def folder_gsd(folder: Path) -> float | None:
    """Metres per pixel from the folder's ``data.yaml`` / ``dataset.yaml`` (``gsd: 0.5``) or its
    ``gsd.txt`` (one number), for images whose files do not say; None when neither is there."""
    for candidate in (folder / "data.yaml", folder / "dataset.yaml"):
        if candidate.is_file():
            meta = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
            value = meta.get("gsd") if isinstance(meta, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                if value <= 0:
                    raise UnsupportedInputError(f"{candidate}: gsd {value} must be positive metres per pixel")
                return float(value)
    gsd_file = folder / "gsd.txt"
    if gsd_file.is_file():
        try:
            value = float(gsd_file.read_text(encoding="utf-8").strip())
        except ValueError:
            raise UnsupportedInputError(f"{gsd_file}: expected one number (metres per pixel)") from None
        if value <= 0:
            raise UnsupportedInputError(f"{gsd_file}: {value} must be positive metres per pixel")
        return value
    return None


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_Item = TypeVar("_Item", bound=_Named)


def not_trained_on(folder: Path, items: Sequence[_Item], training: Mapping[str, Any], *,
                   kind: str) -> tuple[list[_Item], list[str]]:
    """The labelled ``items`` of ``folder`` a fine-tuned model did not train on, and the names of
    those left out. Its card's ``training`` lists the ``kind`` (``frames``, ``pairs``) it trained on
    per folder; a folder it trained on whole cannot measure it, which is refused."""
    trained = set(dict(training.get(kind, {})).get(str(folder.resolve()), ()))
    kept = [item for item in items if item.name not in trained]
    if not kept:
        raise UnsupportedInputError(
            f"the workspace model was fine-tuned on every labelled {kind[:-1]} of {folder}, so they cannot "
            f"measure it; give a folder of {kind} it has not seen (its held-out {kind} are listed under "
            f"training.validation_{kind} in its model card)"
        )
    return kept, sorted(item.name for item in items if item.name in trained)
