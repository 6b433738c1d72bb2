"""Limits on what input may ask for: image headers and site grids.

They live in core, apart from the modules that enforce them (``imagery.readers``, ``imagery.grid``),
so that the workspace settings can name their defaults without importing GDAL or PROJ.
"""

from __future__ import annotations

MAX_PIXELS_PER_BAND = 2**31
"""Largest pixel count per band accepted (GDAL's own limit for many operations)."""
MAX_BANDS = 256
"""Default limit on the declared band count (hyperspectral sensors have about 240); more is a crafted
or corrupt header that would make a read allocate gigabytes."""
MAX_GRID_SIDE = 50_000
"""Largest site grid side in pixels (25 km at 0.5 m) any site may have; sites are refused well before at
`sites validate/add` by the workspace setting ``max_site_grid_side`` (:data:`DEFAULT_SITE_GRID_SIDE`)."""
DEFAULT_SITE_GRID_SIDE = 20_000
"""Default of the workspace setting ``max_site_grid_side`` (10 km at 0.5 m): beyond, the outline or GSD
is most likely wrong."""
