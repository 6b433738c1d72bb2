"""The layers of DESIGN.md §3: imports point one way, lower never imports higher."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "sitewatch"

# Lower number = lower layer. A module may import its own layer or lower ones.
LAYERS = {
    "core": 0,
    "catalog": 1,
    "imagery": 2,
    "analytics": 3,
    "monitor": 4,
    "store": 5,
    "evaluation": 6,
    "training": 6,
    "pipeline": 6,
    "app": 7,
}


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "sitewatch" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if p.relative_to(SOURCE).parts[0] in LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_imports_point_down(path: Path) -> None:
    own = path.relative_to(SOURCE).parts[0]
    upward = [
        f"line {line}: {module}"
        for line, module in _imports(path)
        if (target := _layer_of(module)) is not None and LAYERS[target] > LAYERS[own]
    ]
    assert not upward, f"{path.relative_to(SOURCE)} ({own}) imports a higher layer: {upward}"


def test_torch_only_in_training() -> None:
    offenders = [
        str(path.relative_to(SOURCE))
        for path in _modules()
        if path.relative_to(SOURCE).parts[0] != "training"
        and any(module == "torch" or module.startswith("torch.") for _, module in _imports(path))
    ]
    assert not offenders, f"torch is a training-only dependency, imported by: {offenders}"
