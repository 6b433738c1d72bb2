"""Scoring analytics against labelled third-party data (readers, metrics, harnesses)."""
