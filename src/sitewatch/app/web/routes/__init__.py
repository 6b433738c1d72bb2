"""Routers of the web app, one module per group of routes."""
