"""Site catalogs: the GeoJSON schema, validation, and the built-in reference sites."""
