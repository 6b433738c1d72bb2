"""A workspace's activity patterns and context (calendars, site schedules), read and checked together.

Both are plain files in the workspace, edited by analysts and versioned with it:

* ``patterns.yaml`` (optional): patterns that replace the built-in library's of the same id or add
  to it (:meth:`~sitewatch.monitor.patterns.PatternLibrary.overridden_by`);
* ``context.yaml``: the calendars and schedules (``sitewatch init`` writes a copy of the built-in
  file; without it the built-in one is used).

Each file is checked on its own, then against each other and the catalog (a pattern a holiday
raises must exist, a schedule's site must be in the catalog); every problem is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sitewatch.catalog.context import BUILT_IN as CONTEXT_FILE
from sitewatch.catalog.context import Context, load_context
from sitewatch.core.errors import ContextError
from sitewatch.core.types import NONE_HYPOTHESIS, Site
from sitewatch.monitor.hypotheses import built_in_patterns
from sitewatch.monitor.patterns import WORKSPACE_FILE as PATTERNS_FILE
from sitewatch.monitor.patterns import PatternLibrary, load_patterns


@dataclass(frozen=True, slots=True)
class HypothesisInputs:
    """What the hypotheses of a workspace's alerts are scored with."""

    patterns: PatternLibrary
    context: Context


def load_hypothesis_inputs(root: Path, sites: list[Site]) -> HypothesisInputs:
    """The workspace's patterns and context, checked against each other and ``sites``."""
    own_patterns, own_context = Path(root) / PATTERNS_FILE, Path(root) / CONTEXT_FILE
    library = built_in_patterns()
    if own_patterns.exists():
        library = library.overridden_by(load_patterns(own_patterns))
    context = load_context(own_context if own_context.exists() else None)
    problems = context.problems_with(pattern_ids=[*(p.id for p in library.patterns), NONE_HYPOTHESIS],
                                     site_ids=[s.id for s in sites])
    site_ids = {s.id for s in sites}
    for pattern in library.patterns:
        problems += [f"patterns.{pattern.id}.sites: {s!r} is not a site of the catalog"
                     for s in pattern.sites if s not in site_ids]
    if problems:
        raise ContextError(f"{context.source} with {library.source}", problems)
    return HypothesisInputs(library, context)
