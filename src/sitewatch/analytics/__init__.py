"""Change and object detectors behind small registered protocols; zone indicators."""
