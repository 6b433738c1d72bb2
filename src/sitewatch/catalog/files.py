"""Reading site catalogs from files and the reference catalog packaged with sitewatch."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path

from sitewatch.catalog.geojson import parse_catalog
from sitewatch.core.errors import CatalogError
from sitewatch.core.types import Site

BUILTIN_CATALOG = "reference_sites.geojson"


def read_catalog_document(path: Path) -> object:
    """The parsed JSON of ``path``; :class:`CatalogError` names the file when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(str(path), ["file not found; give the path of a GeoJSON site catalog"]) from None
    except IsADirectoryError:
        raise CatalogError(str(path), ["is a folder; give the path of a GeoJSON site catalog file"]) from None
    except UnicodeDecodeError as error:
        raise CatalogError(
            str(path), [f"is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8 GeoJSON"]
        ) from None
    except OSError as error:
        raise CatalogError(str(path), [f"cannot be read: {error.strerror or error}"]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CatalogError(
            str(path),
            [f"is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"],
        ) from None


def load_catalog(path: Path) -> tuple[Site, ...]:
    """Sites of the GeoJSON catalog file at ``path`` (schema in docs/catalog.md)."""
    return parse_catalog(read_catalog_document(path), source=str(path))


@functools.cache
def builtin_sites() -> tuple[Site, ...]:
    """The reference sites shipped with sitewatch (approximate public locations)."""
    resource = resources.files("sitewatch.catalog").joinpath("data", BUILTIN_CATALOG)
    document = json.loads(resource.read_text(encoding="utf-8"))
    return parse_catalog(document, source=f"sitewatch.catalog/data/{BUILTIN_CATALOG}")
