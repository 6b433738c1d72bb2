"""The shipped change model (ONNX) and its card.

Regenerate with `sitewatch train change configs/change.yaml`.
"""
