"""Verb groups whose commands are imported only when the group runs.

Every ``sitewatch`` run builds the whole command tree, so a verb module that imports numpy,
SQLAlchemy or onnxruntime at its top makes ``sitewatch --version`` pay for them. Most verb
modules import the library inside their commands instead; a group whose options need heavy
values at definition time (a registry's default name, an enum of the store) is registered
through :func:`lazy_group`: the root lists it by its help alone, and its module is imported when
one of its commands (or its ``--help``) runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from sitewatch.app.options import VerbGroup


def lazy_group(load: Callable[[], typer.Typer]) -> type[VerbGroup]:
    """A group class for ``typer.Typer(cls=...)`` whose commands are those of ``load()``'s app,
    called on first use; without a verb it answers one usage line, as every group does."""

    class LazyGroup(VerbGroup):
        _loaded: Any = None

        def _group(self) -> Any:
            if LazyGroup._loaded is None:
                LazyGroup._loaded = typer.main.get_group(load())
            return LazyGroup._loaded

        # code that walks a click group reads ``commands``: that loads the module too
        @property
        def commands(self) -> Any:
            return self._group().commands

        @commands.setter
        def commands(self, value: Any) -> None:
            del value  # the empty placeholder typer builds from the stub app

        def list_commands(self, ctx: Any) -> list[str]:
            return list(self._group().list_commands(ctx))

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            return self._group().get_command(ctx, cmd_name)

    return LazyGroup
