"""One root error for sitewatch, mixed with the builtin each case resembles.

Callers may catch either ``SitewatchError`` or the builtin (``ValueError``,
``OSError``, ...). Messages name the input, what is wrong and what to do.
"""

from __future__ import annotations


class SitewatchError(Exception):
    """Root of every error sitewatch raises on purpose."""


class ValidationError(SitewatchError, ValueError):
    """A domain value was built with a bad field."""

    def __init__(self, type_name: str, field: str, message: str) -> None:
        self.type_name = type_name
        self.field = field
        super().__init__(f"{type_name}.{field}: {message}")


class ProblemsError(SitewatchError, ValueError):
    """A file or table of the user's is malformed; ``problems`` lists every problem found, so one run
    shows them all. Subclasses say what the file holds (``what``) and where its format is (``hint``)."""

    what = "the input"
    hint = ""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        hint = f"\n{self.hint}" if self.hint else ""
        super().__init__(f"{source}: {len(self.problems)} problem(s) in {self.what}:\n{listing}{hint}")


class CatalogError(ProblemsError):
    """A site catalog is malformed; ``problems`` lists every problem found."""

    what = "site catalog"


class ConfigError(ProblemsError):
    """A settings file's table is malformed; ``problems`` lists every problem, each by key path."""

    what = "the settings"


class ContextError(ProblemsError):
    """A context file (holiday calendars and site schedules) is malformed, or names a pattern or a
    site the workspace lacks; ``problems`` lists every problem found."""

    what = "calendars and schedules"
    hint = "Fix them in the file (see docs/hypotheses.md, 'Context')."


class PatternError(ProblemsError):
    """An activity pattern library is malformed; ``problems`` lists every problem found."""

    what = "activity patterns"
    hint = "Fix them in the file (see docs/hypotheses.md for the format)."


class ImageryError(SitewatchError, OSError):
    """An image could not be used; the message names the file and the problem."""


class NotGeoreferencedError(ImageryError):
    """An image has no CRS or no geotransform."""


class NoSiteCoverageError(ImageryError):
    """An image footprint covers no site of the catalog."""


class NoValidPixelsError(ImageryError):
    """An image covers a site but has no valid pixels over it."""


class UnsupportedInputError(SitewatchError, ValueError):
    """An input is outside what a component accepts (bands, GSD, CRS, size)."""


class StoreError(SitewatchError, RuntimeError):
    """The workspace store could not complete an operation."""


class WorkspaceNotFoundError(StoreError, FileNotFoundError):
    """No workspace at the given path."""


class NotFoundError(StoreError, LookupError):
    """A record (site, scene, alert, ...) does not exist."""


class AlertTransitionError(SitewatchError, ValueError):
    """A move the alert lifecycle does not allow from the alert's current state (e.g. back to new):
    a conflict with the alert's state, not a bad spelling. The web API answers 409, the CLI exits 7."""
