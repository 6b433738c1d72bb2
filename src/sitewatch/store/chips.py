"""Chip files beside the database: where they live, how they get there, and crash clean-up.

A chip is written first to the staging folder (same file system as ``chips/``), then moved
into place with an atomic rename inside the database transaction that records it. A crash
can therefore leave only (a) files in staging or (b) a chip no row references; both are
removed when a workspace is next opened by a process that holds it alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from sitewatch.core.errors import StoreError

log = logging.getLogger(__name__)

CHIPS_DIR = "chips"
STAGING_DIR = ".staging"
CHIP_SUFFIX = ".tif"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,199}$")


def chip_relpath(site_id: str, observation_id: str) -> str:
    """Where the chip of ``observation_id`` lives, relative to the workspace root (POSIX separators)."""
    for label, value in (("site id", site_id), ("observation id", observation_id)):
        if not _SAFE_NAME.match(value) or ".." in value:
            raise StoreError(
                f"{label} {value!r} cannot name a chip file; use letters, digits, '.', '_' or '-' "
                "(no path separators), starting with a letter or digit"
            )
    return str(PurePosixPath(CHIPS_DIR, site_id, observation_id + CHIP_SUFFIX))


def place_chip(root: Path, source: Path, relpath: str) -> Path:
    """Move ``source`` to ``root/relpath`` (atomic rename on one file system); returns the new path."""
    target = root / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:
        # Staging outside the workspace's file system: copy to a sibling, then rename atomically.
        partial = target.with_name(target.name + ".partial")
        try:
            with open(source, "rb") as reader, open(partial, "wb") as writer:
                while block := reader.read(1 << 20):
                    writer.write(block)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        Path(source).unlink(missing_ok=True)
    return target


def remove_quietly(paths: Iterable[Path]) -> None:
    """Best-effort removal while undoing a failed write; a leftover is cleaned at the next open."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("could not remove %s while rolling back (%s); it will be removed at next open",
                        path, error)


def clean_staging(staging: Path) -> list[Path]:
    """Empty the staging folder of files left by an interrupted process; returns what was removed."""
    removed: list[Path] = []
    if not staging.is_dir():
        return removed
    for path in sorted(staging.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
                removed.append(path)
        except OSError as error:
            log.warning("could not remove stale staging file %s: %s", path, error)
    return removed


def clean_orphan_chips(root: Path, referenced: set[str]) -> list[Path]:
    """Remove files under ``root/chips`` that no observation row references; returns what was removed."""
    removed: list[Path] = []
    chips = root / CHIPS_DIR
    if not chips.is_dir():
        return removed
    for path in sorted(chips.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        relpath = path.relative_to(root).as_posix()
        if relpath in referenced:
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError as error:
            log.warning("could not remove orphan chip %s: %s", path, error)
    folders = sorted((p for p in chips.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
    for folder in folders:
        with contextlib.suppress(OSError):  # only empty folders go
            folder.rmdir()
    return removed


CHIP_PROBLEM = "chip file "
"""How every problem :func:`chip_problem` finds begins (so a flag it set can be told from others)."""


def chip_problem(path: Path, chip_sha256: str | None, *, decode: bool = True,
                 name: str | None = None) -> str | None:
    """What is wrong with the chip file at ``path``, or None when it is whole.

    Missing, or not the bytes whose checksum ingest recorded; a chip without a recorded checksum
    (ingested before checksums were kept) is decoded instead when ``decode``, which is slower. The
    message calls the file ``name`` (e.g. its path inside the workspace: no server path for viewers).
    """
    from sitewatch.imagery.chips import read_chip  # GDAL: only when chips are checked
    from sitewatch.imagery.readers import sha256_file

    shown = name or str(path)
    if not path.is_file():
        return f"chip file {shown} is missing; recreate it with `sitewatch ingest --repair`"
    try:
        if chip_sha256 is not None:
            if sha256_file(path) != chip_sha256:
                return (f"chip file {shown} does not match the checksum recorded at ingest (truncated or "
                        "overwritten); recreate it with `sitewatch ingest --repair`")
            return None
        if decode:
            read_chip(path)
    except Exception as error:  # any failure to read it is the chip's problem, reported, never raised
        detail = str(error).replace(str(path), shown)
        return f"chip file {shown} cannot be read ({detail}); recreate it with `sitewatch ingest --repair`"
    return None
