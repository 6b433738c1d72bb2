"""Why an image cannot be used, one class per cause so callers (and the CLI) can tell them apart.

All are :class:`~sitewatch.core.errors.ImageryError` (an ``OSError``); each message names the
file, says what is wrong and what to do about it.
"""

from __future__ import annotations

from sitewatch.core.errors import ImageryError, NotGeoreferencedError

__all__ = [
    "EmptyImageError",
    "ImageTooLargeError",
    "ImageryError",
    "MissingAcquisitionTimeError",
    "NotGeoreferencedError",
    "UnreadableImageError",
    "UnsupportedCrsError",
]


class UnreadableImageError(ImageryError):
    """GDAL cannot open or read the file: not a raster, corrupt, or truncated."""


class EmptyImageError(ImageryError):
    """The file has zero bytes (an interrupted download or copy)."""


class ImageTooLargeError(ImageryError):
    """The file declares a size sitewatch refuses to handle (corrupt header or not an image)."""


class UnsupportedCrsError(ImageryError):
    """The image CRS cannot be put on a site grid (local/engineering CRS, not transformable to WGS 84)."""


class MissingAcquisitionTimeError(ImageryError):
    """No acquisition time in tags, STAC item or file name, and none was given."""
