"""8-bit integer versions of the exported models: the vehicle detector, calibrated on crops of its
training frames, and the learned change model, calibrated on synthetic pairs of its generator.

Why: on CPUs with 8-bit dot-product instructions (AVX-512 VNNI, AVX-VNNI, ARM dot product)
onnxruntime runs the quantised convolutions about twice as fast as float32, which is most of
the detection step's time; the held-out accuracy is the model card's to show.

How: static quantisation in QDQ form, weights per output channel (signed 8-bit), activations
per tensor (unsigned 8-bit) with min/max ranges measured on ``CALIBRATION_CROPS`` crops of the
training frames at the model's GSD. Only convolutions and the operations between them are
quantised; the heads' sigmoid and the peak test (max-pool, equality) stay in float, so a peak is
found exactly as in the float model. Calibration crops are drawn with the config's seed, so the
same inputs give the same bytes.

The detector then takes the image's bytes (:func:`take_bytes`). Its input, floats 0..1, is
normalised (``(x - mean) / std``) and quantised again to 8 bits before the first convolution; with
that tensor's range fixed to what bytes can give (not measured on the crops), the quantisation
maps every byte to itself, so the three steps are dropped and the bytes fed as they are: the same
outputs, without turning each tile into floats and back (5-10 % of the detection step; docs/detector.md,
*Bytes in*).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from sitewatch.training.data import TrainingFrame

log = logging.getLogger(__name__)

CALIBRATION_CROPS = 48
"""Crops whose activations set the 8-bit ranges."""
CALIBRATION_SIZE = 256
"""Side of each calibration crop in model pixels."""
QUANTISED_OPS = ("Conv", "Relu", "Add", "Resize")
CHANGE_QUANTISED_OPS = ("Conv", "Relu", "Concat", "Resize")
"""The change model's operations in 8 bits. The dates' difference (``Sub``, ``Abs``) and the input
scaling stay in float: quantising them too was as fast and a little further from the float model."""


class _Crops(CalibrationDataReader):
    """Feeds calibration crops one at a time, as onnxruntime's calibrator expects."""

    def __init__(self, crops: Iterator[np.ndarray]) -> None:
        self._crops = crops

    def get_next(self) -> dict[str, np.ndarray] | None:
        crop = next(self._crops, None)
        return None if crop is None else {"image": crop[None]}


def calibration_crops(frames: Sequence[TrainingFrame], *, model_gsd: float, seed: int,
                      count: int = CALIBRATION_CROPS, size: int = CALIBRATION_SIZE) -> list[np.ndarray]:
    """Crops of ``frames`` resampled to the model GSD as inference resamples them, unaugmented."""
    if not frames:
        return []
    rng = np.random.default_rng(seed)
    weights = np.array([f.weight for f in frames], dtype=np.float64)
    crops = []
    for _ in range(count):
        frame = frames[int(rng.choice(len(frames), p=weights / weights.sum()))]
        per_pixel = model_gsd / frame.gsd  # frame pixels per model pixel
        # A frame smaller than the crop gives the largest crop it holds (a multiple of 16 pixels).
        fits = int(min(frame.image.width, frame.image.height) / per_pixel) // 16 * 16
        side = min(size, fits)
        if side < 16:
            continue
        span = side * per_pixel
        x0 = rng.uniform(0.0, frame.image.width - span)
        y0 = rng.uniform(0.0, frame.image.height - span)
        patch = frame.image.convert("RGB").resize((side, side), Image.Resampling.BILINEAR,
                                                  box=(x0, y0, x0 + span, y0 + span))
        crops.append(np.asarray(patch, np.float32).transpose(2, 0, 1) / 255.0)
    return crops


def quantize_detector(float_path: Path, output: Path, crops: Sequence[np.ndarray], *,
                      byte_input: bool = True) -> None:
    """Write the 8-bit version of the float ONNX model at ``float_path`` to ``output``; with
    ``byte_input``, one that takes the image's bytes (:func:`take_bytes`)."""
    if not crops:
        raise ValueError("quantisation needs calibration crops; the training set gave none")
    steps = _input_steps(onnx.load(str(float_path)))
    overrides = {}
    if steps is not None:
        # The normalised input's range is what bytes 0..255 give, whatever the crops held: that is
        # the range whose 8-bit quantisation maps each byte to itself.
        low = (0.0 - steps.mean) / steps.std
        high = (1.0 - steps.mean) / steps.std
        overrides = {steps.normalised: [{"rmin": np.float32(low.min()), "rmax": np.float32(high.max())}]}
    _quantize(float_path, output, _Crops(iter(crops)), QUANTISED_OPS,
              extra_options={"TensorQuantOverrides": overrides})
    if byte_input and not take_bytes(output):
        log.warning("%s keeps its float input: its input steps do not map each byte to itself", output.name)


@dataclass(frozen=True, slots=True)
class _InputSteps:
    """The detector graph's first steps: ``(image - mean) / std``, then (once quantised) to 8 bits."""

    sub: onnx.NodeProto
    div: onnx.NodeProto
    mean: np.ndarray
    std: np.ndarray

    @property
    def normalised(self) -> str:
        return str(self.div.output[0])


def _input_steps(model: onnx.ModelProto) -> _InputSteps | None:
    """The ``Sub`` and ``Div`` normalising the float input ``image``; None when the graph starts otherwise."""
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    first = users.get(BYTE_INPUT, [])
    if len(first) != 1 or first[0].op_type != "Sub" or first[0].input[1] not in constants:
        return None
    sub = first[0]
    after = users.get(sub.output[0], [])
    if len(after) != 1 or after[0].op_type != "Div" or after[0].input[1] not in constants:
        return None
    div = after[0]
    return _InputSteps(sub, div, constants[sub.input[1]].astype(np.float32),
                       constants[div.input[1]].astype(np.float32))


BYTE_INPUT = "image"
"""The detector's input, floats 0..1 before :func:`take_bytes`, the image's bytes after."""


def take_bytes(path: Path) -> bool:
    """Rewrite the 8-bit detector at ``path`` to take the image's bytes (uint8 RGB, batch x 3 x rows
    x cols, as the tiles are resampled) instead of floats 0..1, when its first steps (normalise,
    quantise) map every byte to itself; True when it was rewritten, False when it is left as it was.

    Each byte is run through the model's own steps in onnxruntime (its float32 arithmetic, as the
    float input ``float32(byte) * float32(1 / 255)`` would be), so "maps to itself" is the runtime's
    answer, not a re-derivation of it. The rewritten graph gives the same outputs bit for bit
    (``tests/test_training.py``).
    """
    model = onnx.load(str(path))
    graph = model.graph
    steps = _input_steps(model)
    quantise = [n for n in graph.node if steps is not None and steps.normalised in n.input]
    if steps is None or len(quantise) != 1 or quantise[0].op_type != "QuantizeLinear":
        return False
    quantised = quantise[0].output[0]
    kept = {steps.sub.input[1], steps.div.input[1], *quantise[0].input[1:]}
    prefix = helper.make_graph(
        [steps.sub, steps.div, quantise[0]], "input-steps",
        [helper.make_tensor_value_info(BYTE_INPUT, onnx.TensorProto.FLOAT, [1, 3, 1, 256])],
        [helper.make_tensor_value_info(quantised, onnx.TensorProto.UINT8, [1, 3, 1, 256])],
        [init for init in graph.initializer if init.name in kept])
    probe = helper.make_model(prefix, opset_imports=model.opset_import)
    probe.ir_version = model.ir_version
    values = np.arange(256, dtype=np.uint8)
    floats = np.multiply(np.broadcast_to(values, (1, 3, 1, 256)), np.float32(1.0 / 255.0), dtype=np.float32)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    mapped = session.run(None, {BYTE_INPUT: floats})[0]
    if mapped.dtype != np.uint8 or not (mapped == values).all():
        return False
    dropped = {id(steps.sub), id(steps.div), id(quantise[0])}
    nodes = [n for n in graph.node if id(n) not in dropped]
    for node in nodes:
        for index, name in enumerate(node.input):
            if name == quantised:
                node.input[index] = BYTE_INPUT
    used = {name for node in nodes for name in node.input}
    shape = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    rewritten = helper.make_graph(
        nodes, graph.name, [helper.make_tensor_value_info(BYTE_INPUT, onnx.TensorProto.UINT8, shape)],
        list(graph.output), [init for init in graph.initializer if init.name in used])
    out = helper.make_model(rewritten, opset_imports=model.opset_import, producer_name=model.producer_name,
                            producer_version=model.producer_version)
    out.ir_version = model.ir_version
    out.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(out)
    onnx.save(out, str(path))
    return True


def _quantize(float_path: Path, output: Path, reader: CalibrationDataReader, ops: Sequence[str],
              **options: Any) -> None:
    """Static QDQ quantisation, weights per channel in int8, activations in uint8, of ``ops``."""
    with tempfile.TemporaryDirectory(prefix="sitewatch-quant-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Symbolic shape inference cannot follow the dynamic height/width through Resize; the
        # ONNX shape inference and graph clean-up are enough for these operators.
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(output), reader,
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            op_types_to_quantize=list(ops), **options,
        )
    log.info("quantised %s to 8 bits: %s", float_path.name, output)


class _Pairs(CalibrationDataReader):
    """Feeds normalised (before, after) pairs a few at a time."""

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], batch: int = 8) -> None:
        self._pairs, self._batch, self._next = pairs, batch, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        part = self._pairs[self._next:self._next + self._batch]
        self._next += self._batch
        if not part:
            return None
        return {"before": np.stack([b for b, _ in part]), "after": np.stack([a for _, a in part])}


def quantize_change_model(float_path: Path, output: Path,
                          pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    """Write the 8-bit version of the float change model at ``float_path`` to ``output``, its
    activation ranges set on ``pairs`` (each date already normalised, as the detector normalises).

    Ranges are the 99.999th percentile of each activation rather than its extreme. Chosen by how
    close the 8-bit logits stay to the float model's, which needs no labels: on 500 synthetic
    validation pairs the median difference was 0.086 (decisions differing on 0.20 % of the pixels)
    against 0.108 (0.24 %) with min/max ranges and 0.117 (0.26 %) with the difference quantised
    too; on the Joplin pair 0.083 against 0.099 and 0.106."""
    if not pairs:
        raise ValueError("quantisation needs calibration pairs; none were given")
    _quantize(float_path, output, _Pairs(pairs), CHANGE_QUANTISED_OPS,
              calibrate_method=CalibrationMethod.Percentile)
