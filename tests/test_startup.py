"""Light verbs start without the heavy libraries: ``sitewatch --version`` should not load numpy.

Each case runs the real entry point in a fresh interpreter and names the modules it loaded that
it must not have (start-up time is measured by benchmarks/bench_startup.py, not here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sitewatch.app.cli import LAZY_GROUPS, app
from sitewatch.store import migrate

# Imported only by the verbs that compute: pixels, models, the web app, training.
COMPUTE = ("scipy", "skimage", "rasterio", "onnxruntime", "fastapi", "torch", "PIL", "pyproj",
           "sitewatch.analytics", "sitewatch.imagery", "sitewatch.pipeline", "sitewatch.evaluation",
           "sitewatch.training")
# ... and, for verbs that open no workspace, the store and the domain types with their geometry
# (shapely, which needs numpy).
STORE = ("sqlalchemy", "alembic", "shapely", "numpy", "sitewatch.store.workspace", "sitewatch.core.types")

PROBE = """
import json, sys
from sitewatch.app.cli import main
sys.argv = ["sitewatch", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def _loaded(args: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                          check=True, timeout=120)
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def _offending(loaded: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == b or m.startswith(f"{b}.") for b in banned))


LIGHT = [["--version"], ["--help"], ["alerts", "--help"], ["change", "scene", "--help"], ["brief", "--help"],
         ["check", "--help"]]


@pytest.mark.parametrize("args", LIGHT, ids=" ".join)
def test_help_and_version_load_no_heavy_module(args: list[str]) -> None:
    loaded = _loaded(args)
    assert "typer" in loaded  # the probe did run the command line
    assert _offending(loaded, COMPUTE + STORE) == []


def test_alerts_list_loads_the_store_but_no_compute_module(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    assert CliRunner().invoke(app, ["init", str(workspace)]).exit_code == 0
    loaded = _loaded(["alerts", "list", "-w", str(workspace)])
    assert "sitewatch.store.workspace" in loaded  # it did open the workspace
    # a database at the newest revision is recognised without Alembic
    # ... nor GeoAlchemy2 (every SQLAlchemy dialect), which only a PostgreSQL store needs
    assert _offending(loaded, (*COMPUTE, "alembic", "geoalchemy2")) == []


def test_the_newest_revision_read_without_alembic_is_alembics() -> None:
    assert migrate.packaged_head() == migrate.head_revision()


@pytest.mark.parametrize("name", sorted(LAZY_GROUPS))
def test_lazy_groups_are_listed_with_their_own_help(name: str) -> None:
    group_help, load = LAZY_GROUPS[name]
    assert typer.main.get_group(load()).help == group_help
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert set(typer.main.get_group(load()).commands) <= set(result.output.split())


def test_help_texts_written_out_match_the_library() -> None:
    """Values the light verb modules spell out instead of importing them."""
    from sitewatch.analytics.change.scene import DEFAULT_WINDOW
    from sitewatch.imagery.simulate import builtin_scenarios

    scene_help = CliRunner().invoke(app, ["change", "scene", "--help"], terminal_width=200).output
    assert f"(default: {DEFAULT_WINDOW})" in scene_help
    from sitewatch.app.report.brief import DEFAULT_MARGIN

    brief_help = CliRunner().invoke(app, ["brief", "--help"], terminal_width=200).output
    assert f"(default: {DEFAULT_MARGIN})" in brief_help
    simulate_help = CliRunner().invoke(app, ["simulate", "--help"], terminal_width=200).output
    assert all(name in simulate_help for name in builtin_scenarios())


def test_change_scene_opens_no_store(tmp_path: Path) -> None:
    """Two rasters outside any workspace: the command needs no database, nor the evidence step."""
    import numpy as np
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(0)
    paths = []
    for name in ("before", "after"):
        path = tmp_path / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=3, dtype="uint8",
                           crs="EPSG:32651", transform=Affine(0.5, 0, 400000, 0, -0.5, 4400000)) as dataset:
            dataset.write(rng.integers(0, 256, (3, 300, 300), dtype=np.uint8))
        paths.append(str(path))
    output = tmp_path / "change.tif"
    loaded = _loaded(["change", "scene", *paths, str(output), "--method", "cva", "--aligned"])
    assert output.is_file()
    unneeded = ("sqlalchemy", "alembic", "sitewatch.store.workspace", "sitewatch.pipeline.detect",
                "sitewatch.pipeline.evidence",
                # the other change methods' modules and what only they load (issue 18)
                "onnxruntime", "sitewatch.analytics.change.contrast", "sitewatch.analytics.change.learned",
                "sitewatch.analytics.change.irmad", "sitewatch.analytics.change.pcakmeans",
                "sitewatch.analytics.change.segments", "sitewatch.analytics.objects")
    assert _offending(loaded, unneeded) == []
