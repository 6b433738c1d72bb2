"""Float weights beside an exported model: ``<name>.weights.npz``, so that it can be fine-tuned.

Why a separate file: the shipped vehicle model is 8-bit (QDQ ONNX) and both ONNX files have
their BatchNorm layers folded into the convolutions, so neither gives back the float weights
a fine-tuning run starts from. The state dict is stored as a plain NumPy ``.npz`` archive
(one ``.npy`` member per tensor, no pickle), written with fixed member times so that the same
weights give the same bytes and the same SHA-256 in the model card.

Shipped models trained before this file existed get their npz from :func:`state_from_onnx`:
the float weights read back from the ONNX graph (dequantised where 8-bit), each folded
BatchNorm turned into an identity with the folded bias as its shift.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sitewatch.analytics.objects.onnx import file_sha256
from sitewatch.core.errors import UnsupportedInputError

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def weights_path(onnx_path: Path) -> Path:
    """Where the float weights of ``onnx_path`` go: ``vehicles.onnx`` -> ``vehicles.weights.npz``."""
    return onnx_path.with_suffix(".weights.npz")


def state_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's state dict (parameters and buffers) as NumPy arrays."""
    return {key: value.detach().cpu().numpy().copy() for key, value in model.state_dict().items()}


def save_weights(path: Path, arrays: Mapping[str, np.ndarray]) -> str:
    """Write ``arrays`` as an npz archive (sorted members, fixed times); returns its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            for key in sorted(arrays):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(arrays[key], order="C"), allow_pickle=False)
                archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_TIME), buffer.getvalue())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return file_sha256(path)


def load_weights(path: Path, sha256: str | None, *, card: Path) -> dict[str, np.ndarray]:
    """The arrays of the npz at ``path``, refused unless it matches the ``sha256`` of its ``card``."""
    if sha256 is None:
        raise UnsupportedInputError(
            f"model card {card} names no float weights (weights_file/weights_sha256), so the model cannot "
            "be fine-tuned; retrain it with `sitewatch train` (which writes them) or reinstall sitewatch"
        )
    if not path.is_file():
        raise UnsupportedInputError(
            f"float weights {path} named by {card} are missing; reinstall sitewatch or retrain the model"
        )
    if file_sha256(path) != sha256:
        raise UnsupportedInputError(
            f"float weights {path} do not match the checksum in {card}: the file is damaged or was replaced; "
            "reinstall sitewatch or retrain the model"
        )
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def load_into(model: nn.Module, arrays: Mapping[str, np.ndarray], *, source: Path) -> None:
    """Copy ``arrays`` into ``model``; every tensor must be there with its shape (else the
    model card's architecture does not describe these weights)."""
    state = model.state_dict()
    missing = sorted(set(state) - set(arrays))
    unexpected = sorted(set(arrays) - set(state))
    wrong = sorted(k for k in set(state) & set(arrays) if tuple(state[k].shape) != arrays[k].shape)
    if missing or unexpected or wrong:
        raise UnsupportedInputError(
            f"float weights {source} do not fit the model its card describes (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, other shape {wrong[:3]}); retrain the model with `sitewatch train`"
        )
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})


# --- float weights read back from an exported ONNX graph ------------------------------------------


def _onnx_weights(onnx_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias) in float of each convolution of the graph by the name of the torch module it was
    exported from (the exporter names a node ``/stem/stem.0/stem.0.0/Conv``, a second use of the same
    module ``..._1/Conv``); ``DequantizeLinear`` of 8-bit initialisers is undone."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    initial = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # constants the exporter left as nodes
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    initial[node.output[0]] = numpy_helper.to_array(attribute.t)
    producers = {out: node for node in graph.node for out in node.output}

    def source(name: str) -> str:
        """The name behind any Identity nodes (the exporter shares weights used twice through them)."""
        node = producers.get(name)
        while name not in initial and node is not None and node.op_type == "Identity":
            name = node.input[0]
            node = producers.get(name)
        return name

    def value(name: str) -> np.ndarray:
        name = source(name)
        if name in initial:
            return initial[name].astype(np.float32)
        node = producers.get(name)
        if node is None or node.op_type != "DequantizeLinear":
            raise UnsupportedInputError(f"{onnx_path}: input {name!r} of a convolution is not a constant")
        quantised = initial[node.input[0]].astype(np.float32)
        scale = initial[node.input[1]].astype(np.float32)
        zero = initial[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and quantised.ndim > 1:
            shape = [1] * quantised.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return np.asarray((quantised - zero) * scale, np.float32)

    found: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        bias = value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        found.setdefault(_module_name(node.name), (value(node.input[1]), bias))
    return found


def _module_name(node_name: str) -> str:
    """``/stage8/stage8.0/depthwise/Conv`` -> ``stage8.0.depthwise``: each scope is the module's full
    name inside a Sequential, its attribute name elsewhere; ``_1`` marks a module's second use."""
    path = ""
    for scope in node_name.strip("/").split("/")[:-1]:
        scope = re.sub(r"_\d+$", "", scope)
        path = scope if not path or scope.startswith(f"{path}.") else f"{path}.{scope}"
    return path


def _folded_norms(model: nn.Module, inputs: Sequence[torch.Tensor]) -> dict[str, nn.BatchNorm2d]:
    """Convolution name -> the BatchNorm that normalises its output directly in the forward pass
    (the one an ONNX export folds into it)."""
    outputs: dict[int, str] = {}
    folded: dict[str, nn.BatchNorm2d] = {}
    names = {module: name for name, module in model.named_modules()}

    def on_conv(module: nn.Module, _: object, output: torch.Tensor) -> None:
        outputs[id(output)] = names[module]

    def on_norm(module: nn.Module, args: tuple[torch.Tensor, ...], _: object) -> None:
        conv = outputs.get(id(args[0]))
        if conv is not None and isinstance(module, nn.BatchNorm2d):
            folded[conv] = module

    hooks = [m.register_forward_hook(on_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(on_norm) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return folded


def state_from_onnx(model: nn.Module, onnx_path: Path,
                    inputs: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
    """Float weights for ``model`` read back from its export at ``onnx_path``.

    Each convolution is found by its module's name in the graph (shapes checked); a BatchNorm
    folded into its convolution becomes scale 1, shift = the folded bias, mean 0 and variance
    1 - eps, which computes exactly what the folded graph computes. ``inputs`` is an example
    input, run once to see which BatchNorm follows which convolution. Loads the weights into
    ``model`` and returns its new state.
    """
    norms = _folded_norms(model, inputs)
    weights = _onnx_weights(onnx_path)
    convolutions = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if set(convolutions) != set(weights):
        raise UnsupportedInputError(
            f"{onnx_path}: its convolutions ({len(weights)}) are not the model's ({len(convolutions)}; "
            f"e.g. {sorted(set(convolutions) ^ set(weights))[:3]}): the architecture in its card does not "
            "describe this file"
        )
    with torch.no_grad():
        for name, conv in convolutions.items():
            weight, bias = weights[name]
            if tuple(conv.weight.shape) != weight.shape:
                raise UnsupportedInputError(
                    f"{onnx_path}: convolution {name} has shape {weight.shape}, the model's "
                    f"{tuple(conv.weight.shape)}; the architecture in its card does not describe this file"
                )
            conv.weight.copy_(torch.from_numpy(weight))
            shift = torch.from_numpy(bias) if bias is not None else torch.zeros(weight.shape[0])
            norm = norms.get(name)
            if norm is None:
                if conv.bias is not None:
                    conv.bias.copy_(shift)
                elif bias is not None and np.any(bias):
                    raise UnsupportedInputError(f"{onnx_path}: convolution {name} has a bias the model lacks")
                continue
            if conv.bias is not None:
                conv.bias.zero_()
            norm.weight.fill_(1.0)
            norm.bias.copy_(shift)
            norm.running_mean.zero_()  # type: ignore[union-attr]
            norm.running_var.fill_(1.0 - norm.eps)  # type: ignore[union-attr]
    return state_arrays(model)
