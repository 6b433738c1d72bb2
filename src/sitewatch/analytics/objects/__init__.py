"""Object detectors (vehicles, ...) behind one small protocol, with a registry.

The project's detector is shipped as ONNX inside this package and run with onnxruntime;
see :mod:`sitewatch.analytics.objects.onnx` and docs/detector.md.
"""

from sitewatch.analytics.objects.base import (
    DEFAULT_DETECTOR,
    DetectorInfo,
    ObjectBox,
    ObjectDetector,
    available_detectors,
    get_detector,
    register_detector,
)
from sitewatch.analytics.objects.onnx import ModelCard, OnnxDetector, load_shipped_detector

register_detector(DEFAULT_DETECTOR, load_shipped_detector)

__all__ = [
    "DEFAULT_DETECTOR",
    "DetectorInfo",
    "ModelCard",
    "ObjectBox",
    "ObjectDetector",
    "OnnxDetector",
    "available_detectors",
    "get_detector",
    "load_shipped_detector",
    "register_detector",
]
