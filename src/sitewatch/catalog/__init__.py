"""Site catalogs: the GeoJSON schema, validation, and the built-in reference sites."""

from sitewatch.catalog.files import builtin_sites, load_catalog, read_catalog_document
from sitewatch.catalog.geojson import (
    DEFAULT_GSD,
    SITE_PROPERTIES,
    ZONE_FIELDS,
    catalog_to_geojson,
    parse_catalog,
    site_to_feature,
    validate_catalog,
)

__all__ = [
    "DEFAULT_GSD",
    "SITE_PROPERTIES",
    "ZONE_FIELDS",
    "builtin_sites",
    "catalog_to_geojson",
    "load_catalog",
    "parse_catalog",
    "read_catalog_document",
    "site_to_feature",
    "validate_catalog",
]
