"""One module per CLI verb group; each exposes ``register(app)``."""
