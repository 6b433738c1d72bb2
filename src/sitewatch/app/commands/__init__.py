"""One module per CLI verb group; each exposes ``register(app)``.

Every ``sitewatch`` run imports all of them to build the command tree, so they import at their
top only typer, rich and light sitewatch modules (options, errors); the library a verb calls
is imported inside the verb, so that ``sitewatch --help`` or ``alerts list`` do not load numpy,
rasterio or onnxruntime. A group whose option definitions need heavy values is loaded as a whole
when it runs (:mod:`sitewatch.app.lazy`). tests/test_startup.py checks what light verbs load.
"""
