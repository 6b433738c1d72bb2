"""What a labelled folder says about itself, read the same way by every evaluation verb."""

from __future__ import annotations

from pathlib import Path

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
