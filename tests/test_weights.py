"""Float weights beside the ONNX models: the npz file, its checksum, and weights read back from ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitewatch.core.errors import UnsupportedInputError

torch = pytest.importorskip("torch", reason="training needs the `train` extra (torch)")

from sitewatch.analytics.change.learned import ChangeModelCard  # noqa: E402
from sitewatch.analytics.objects.onnx import ModelCard, file_sha256, shipped_model_dir  # noqa: E402
from sitewatch.training.change import export_change_onnx  # noqa: E402
from sitewatch.training.change_model import SiameseUNet  # noqa: E402
from sitewatch.training.detector import export_onnx  # noqa: E402
from sitewatch.training.model import CenterNetLite  # noqa: E402
from sitewatch.training.weights import (  # noqa: E402
    load_into,
    load_weights,
    save_weights,
    state_arrays,
    state_from_onnx,
    weights_path,
)


def _randomised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random BatchNorm statistics and affine terms, so folding them is not a no-op."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.2)
    return model.eval()


def test_weights_file_is_byte_reproducible_and_round_trips(tmp_path: Path) -> None:
    model = CenterNetLite(2, width=8)
    first = save_weights(tmp_path / "a.weights.npz", state_arrays(model))
    second = save_weights(tmp_path / "b.weights.npz", state_arrays(model))
    assert first == second == file_sha256(tmp_path / "a.weights.npz")
    other = CenterNetLite(2, width=8)
    load_into(other, load_weights(tmp_path / "a.weights.npz", first, card=tmp_path / "card.json"),
              source=tmp_path / "a.weights.npz")
    for key, value in model.state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key
    assert weights_path(Path("m/vehicles.onnx")) == Path("m/vehicles.weights.npz")


def test_damaged_or_unnamed_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.weights.npz"
    digest = save_weights(path, state_arrays(CenterNetLite(2, width=8)))
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(UnsupportedInputError, match="do not match the checksum"):
        load_weights(path, digest, card=tmp_path / "card.json")
    with pytest.raises(UnsupportedInputError, match="names no float weights"):
        load_weights(path, None, card=tmp_path / "card.json")
    digest = save_weights(path, state_arrays(CenterNetLite(2, width=8)))
    with pytest.raises(UnsupportedInputError, match="do not fit the model"):
        load_into(CenterNetLite(2, width=16), load_weights(path, digest, card=tmp_path / "card.json"),
                  source=path)


def test_float_weights_read_back_from_an_exported_detector(tmp_path: Path) -> None:
    torch.manual_seed(1)
    original = _randomised(CenterNetLite(3, width=8), 2)
    export_onnx(original, tmp_path / "d.onnx")
    image = torch.rand(1, 3, 64, 64)
    rebuilt = CenterNetLite(3, width=8)
    state_from_onnx(rebuilt, tmp_path / "d.onnx", (image,))
    with torch.no_grad():
        expected, got = original(image), rebuilt.eval()(image)
    for a, b in zip(expected, got, strict=True):
        assert torch.allclose(a, b, atol=1e-4)


def test_float_weights_read_back_from_an_exported_change_model(tmp_path: Path) -> None:
    torch.manual_seed(3)
    original = _randomised(SiameseUNet(4), 4)
    export_change_onnx(original, tmp_path / "c.onnx")
    before, after = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    rebuilt = SiameseUNet(4)
    state_from_onnx(rebuilt, tmp_path / "c.onnx", (before, after))
    with torch.no_grad():
        assert torch.allclose(original(before, after), rebuilt.eval()(before, after), atol=1e-4)
    with pytest.raises(UnsupportedInputError, match="does not describe this file"):
        state_from_onnx(SiameseUNet(8), tmp_path / "c.onnx", (before, after))


@pytest.mark.parametrize("card_name", ["objects/models/vehicles.json", "change/models/buildings.json"])
def test_shipped_models_carry_matching_float_weights(card_name: str) -> None:
    card_path = shipped_model_dir().parents[1] / card_name
    data = json.loads(card_path.read_text(encoding="utf-8"))
    card = (ModelCard if "vehicles" in card_name else ChangeModelCard).from_dict(data, str(card_path))
    assert card.weights_file and card.architecture["width"] > 0
    arrays = load_weights(card_path.parent / card.weights_file, card.weights_sha256, card=card_path)
    model = (CenterNetLite(5, width=card.architecture["width"]) if "vehicles" in card_name
             else SiameseUNet(card.architecture["width"], card.architecture["outputs"]))
    load_into(model, arrays, source=card_path)
