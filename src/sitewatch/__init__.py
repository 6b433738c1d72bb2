"""sitewatch: watch sites through time series of satellite and aerial images."""

__version__ = "0.1.0"
