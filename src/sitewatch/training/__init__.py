"""Training of the project's own models (plain torch); the only package that imports torch.

Users need torch only to retrain: the trained detector is exported to ONNX and run by
:mod:`sitewatch.analytics.objects` with onnxruntime.
"""
