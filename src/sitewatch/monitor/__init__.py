"""Baselines, scoring and alert rules."""
