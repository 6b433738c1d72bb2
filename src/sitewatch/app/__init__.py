"""User-facing surfaces: the CLI and HTML reports. Thin: they call library functions."""
