"""Terminal tables whose ids stay whole: a user copies them into the next command."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table


def add_id_column(table: Table, header: str, ids: Iterable[str]) -> None:
    """Add a column of ids that is never cut or folded: it is as wide as its longest id, and the
    other columns wrap to make room (rich shrinks the columns it may, never this one)."""
    width = max((len(value) for value in ids), default=len(header))
    table.add_column(header, no_wrap=True, overflow="ignore", min_width=max(width, len(header)))
