"""The sites a scenario renders: the built-in catalog's, looked up by id."""

from __future__ import annotations

from sitewatch.catalog import builtin_sites
from sitewatch.core.errors import UnsupportedInputError
from sitewatch.core.types import Site


def site_by_id(site_id: str) -> Site:
    """The built-in site ``site_id``; the error lists the ids that exist."""
    sites = {site.id: site for site in builtin_sites()}
    if site_id not in sites:
        known = ", ".join(sorted(sites))
        raise UnsupportedInputError(
            f"site {site_id!r} is not in the built-in catalog (known: {known}); "
            "use one of those ids in the scenario's sites list"
        )
    return sites[site_id]
