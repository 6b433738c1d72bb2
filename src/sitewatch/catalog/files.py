"""Reading site catalogs from files and the reference catalog packaged with sitewatch."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np

from sitewatch.catalog.geojson import parse_catalog
from sitewatch.core.errors import CatalogError, ProblemsError
from sitewatch.core.types import Site

BUILTIN_CATALOG = "reference_sites.geojson"


MAX_CATALOG_BYTES = 1 << 30
"""Largest catalog file read (1 GiB: about a million sites with zones)."""
MAX_CATALOG_DEPTH = 32
"""Deepest nesting of JSON arrays and objects a catalog may have (a MultiPolygon inside a Feature inside
a FeatureCollection needs 7); deeper is not a site catalog, and would exhaust the parser's stack."""


def read_catalog_document(path: Path) -> object:
    """The parsed JSON of ``path``; :class:`CatalogError` names the file when it cannot be read, is
    larger than :data:`MAX_CATALOG_BYTES` or nested deeper than :data:`MAX_CATALOG_DEPTH`."""
    try:
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        if size > MAX_CATALOG_BYTES:
            raise CatalogError(str(path), [f"is {size:,} bytes, over the limit of {MAX_CATALOG_BYTES:,}; "
                                           "split the catalog into several files"])
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
    too_deep = CatalogError(str(path), [f"is nested deeper than {MAX_CATALOG_DEPTH} levels of arrays and "
                                        "objects; a GeoJSON site catalog needs 7 at most"])
    if _nesting(text) > MAX_CATALOG_DEPTH:  # checked before parsing: a deep document exhausts the stack
        raise too_deep
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CatalogError(
            str(path),
            [f"is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"],
        ) from None
    except RecursionError:
        raise too_deep from None


def _nesting(text: str) -> int:
    """Deepest nesting of arrays and objects in JSON ``text`` (brackets inside strings do not count),
    found in a few vectorised passes without parsing (a second for a 300 MB catalog)."""
    raw = np.frombuffer(text.replace("\\\\", "").replace('\\"', "").encode("utf-8"), dtype=np.uint8)
    if raw.size == 0:
        return 0
    inside = np.bitwise_xor.accumulate((raw == ord('"')).view(np.uint8)).view(bool)  # in a string
    opens = ((raw == ord("[")) | (raw == ord("{"))) & ~inside
    closes = ((raw == ord("]")) | (raw == ord("}"))) & ~inside
    # only where brackets are: a cumulative sum over them alone, not over every byte
    steps = opens[opens | closes].view(np.int8) * 2 - 1
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def load_catalog(path: Path) -> tuple[Site, ...]:
    """Sites of the GeoJSON catalog file at ``path`` (schema in docs/catalog.md)."""
    return parse_catalog(read_catalog_document(path), source=str(path))


@functools.cache
def builtin_sites() -> tuple[Site, ...]:
    """The reference sites shipped with sitewatch (approximate public locations)."""
    resource = resources.files("sitewatch.catalog").joinpath("data", BUILTIN_CATALOG)
    document = json.loads(resource.read_text(encoding="utf-8"))
    return parse_catalog(document, source=f"sitewatch.catalog/data/{BUILTIN_CATALOG}")


def read_yaml_document(path: Path | str | None, *, builtin: tuple[Callable[[], str], str],
                       error: type[ProblemsError]) -> tuple[object, str]:
    """(parsed YAML, source name) of ``path``, or of ``builtin`` = (a reader of its text, its file
    name) when ``path`` is None; ``error`` names the file when it cannot be read or is not YAML. The
    one reader of the analysts' YAML files (calendars and schedules, activity patterns)."""
    import yaml  # only the verbs that read these files pay for it

    if path is None:
        text, source = builtin[0](), f"built-in {builtin[1]}"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as problem:
            reason = problem.strerror if isinstance(problem, OSError) else "not UTF-8 text"
            raise error(str(path), [f"cannot be read ({reason}); give a readable YAML file"]) from None
        source = str(path)
    try:
        return yaml.safe_load(text), source
    except yaml.YAMLError as problem:
        raise error(source, [f"is not valid YAML: {problem}"]) from None
