"""`sitewatch ingest` through its runner and as a process: exit codes, messages, and the crash test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import box
from typer.testing import CliRunner

from sitewatch.app.cli import app
from sitewatch.core.types import Site
from sitewatch.store import Workspace

EXUMA = Site(id="exuma", name="Exuma", country="BS", category="test",
             geometry=box(-77.9, 24.4, -77.6, 24.7), gsd=100.0)
CLI = [sys.executable, "-c", "from sitewatch.app.cli import main; main()"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    Workspace.init(path, sites=[EXUMA]).close()
    return path


def _state(root: Path) -> tuple[int, int, list[str]]:
    with Workspace.open(root) as ws:
        chips = sorted(p.relative_to(root).as_posix() for p in (root / "chips").rglob("*") if p.is_file())
        return len(ws.scenes()), len(ws.observations()), chips


def test_ingest_json_and_idempotent(root: Path, test_data: Path) -> None:
    runner = CliRunner()
    image = str(test_data / "RGB.byte.tif")
    result = runner.invoke(app, ["ingest", image, "--acquired", "2001-05-01T15:00:00Z", "-w", str(root),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["ingested"], report["failed"]) == (1, 0)
    assert report["files"][0]["sites"] == ["exuma"] and report["files"][0]["status"] == "ingested"
    with Workspace.open(root) as ws:
        assert ws.observations()[0].acquired == datetime(2001, 5, 1, 15, tzinfo=UTC)
    again = runner.invoke(app, ["ingest", image, "-w", str(root)])
    assert again.exit_code == 0, again.output
    assert "skipped" in again.stdout and "0 ingested, 1 skipped, 0 failed" in again.stdout


def test_bad_acquired_is_a_usage_error(root: Path, test_data: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", str(test_data / "RGB.byte.tif"), "--acquired", "Feb 22",
                                      "-w", str(root)])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output


def test_bands_names_the_scene_and_its_chips(root: Path, test_data: Path) -> None:
    from sitewatch.imagery.chips import read_chip

    image = str(test_data / "RGB.byte.tif")
    runner = CliRunner()
    wrong = runner.invoke(app, ["ingest", image, "--acquired", "2001-05-01", "--bands", "red,green,blue,nir",
                                "-w", str(root), "--json"])
    assert wrong.exit_code == 5
    message = json.loads(wrong.stdout)["files"][0]["message"]
    assert image in message and "3 band(s)" in message and "--bands" in message
    empty = runner.invoke(app, ["ingest", image, "--bands", "red,,blue", "-w", str(root)])
    assert empty.exit_code == 2 and "empty band name" in empty.output
    done = runner.invoke(app, ["ingest", image, "--acquired", "2001-05-01", "--bands", "Red,Green,Blue",
                               "-w", str(root)])
    assert done.exit_code == 0, done.output
    with Workspace.open(root) as ws:
        observation = ws.observations()[0]
        assert ws.scene(observation.scene_id).bands == ("red", "green", "blue")
        assert read_chip(ws.chip_path(observation)).bands == ("red", "green", "blue")


def test_corrupt_file_exits_5_names_it_and_leaves_the_store_unchanged(root: Path, test_data: Path,
                                                                     tmp_path: Path) -> None:
    first = [*CLI, "ingest", str(test_data / "RGB.byte.tif"), "--acquired", "2001-05-01", "-w", str(root)]
    subprocess.run(first, check=True, capture_output=True, timeout=120)
    before = _state(root)
    corrupt = tmp_path / "corrupt_2019-02-22.tif"
    corrupt.write_bytes((test_data / "RGB.byte.tif").read_bytes()[:250_000])
    done = subprocess.run([*CLI, "ingest", str(corrupt), "-w", str(root)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 5, done.stdout + done.stderr
    assert str(corrupt) in done.stderr and "truncated" in done.stderr
    assert "1 failed" in done.stdout
    assert _state(root) == before


def test_missing_workspace_says_how_to_make_one(tmp_path: Path, test_data: Path) -> None:
    done = subprocess.run([*CLI, "ingest", str(test_data / "RGB.byte.tif"), "-w", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "sitewatch init" in done.stderr


def _scenes(test_data: Path, folder: Path, count: int) -> list[Path]:
    """``count`` distinct dated scenes derived from RGB.byte.tif (different pixels, so different ids)."""
    folder.mkdir()
    with rasterio.open(test_data / "RGB.byte.tif") as source:
        profile = source.profile
        pixels = source.read()
    paths = []
    for index in range(count):
        changed = pixels.copy()
        changed[pixels > 0] = np.clip(pixels[pixels > 0].astype(int) + index + 1, 1, 255).astype(np.uint8)
        path = folder / f"scene_2019-02-{10 + index:02d}.tif"
        with rasterio.open(path, "w", **profile) as target:
            target.write(changed)
        paths.append(path)
    return paths


@pytest.mark.slow
def test_killed_ingest_leaves_a_consistent_store_and_the_rerun_completes(root: Path, test_data: Path,
                                                                        tmp_path: Path) -> None:
    files = _scenes(test_data, tmp_path / "in", 4)
    env = {**os.environ, "SITEWATCH_INGEST_PAUSE_S": "2"}
    process = subprocess.Popen([*CLI, "ingest", *map(str, files), "-w", str(root)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        # Kill as soon as the first chip lands in chips/: inside or just after the first transaction.
        while not any((root / "chips").rglob("*.tif")):
            assert process.poll() is None, "ingest ended before it could be killed"
            assert time.monotonic() < deadline, "no chip appeared within 90 s"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    rerun = subprocess.run([*CLI, "ingest", *map(str, files), "-w", str(root), "--json"],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["failed"] == 0 and report["ingested"] + report["skipped"] == 4
    assert report["ingested"] >= 3  # the kill came before the second file

    with Workspace.open(root) as ws:
        scenes = ws.scenes()
        observations = ws.observations()
        assert len(scenes) == 4 and len({s.id for s in scenes}) == 4  # each file exactly once
        assert sorted(s.acquired.day for s in scenes) == [10, 11, 12, 13]
        assert len(observations) == 4 and {o.scene_id for o in observations} == {s.id for s in scenes}
        referenced = {o.chip_path for o in observations}
        for observation in observations:
            assert ws.chip_path(observation).is_file()
        on_disk = {p.relative_to(root).as_posix() for p in (root / "chips").rglob("*") if p.is_file()}
        assert on_disk == referenced  # no orphan chip, no partial file
        assert not any(ws.staging_dir().iterdir())  # no staging leftovers


@pytest.mark.slow
def test_concurrent_ingests_of_one_folder_skip_what_the_other_stored(root: Path, test_data: Path,
                                                                     tmp_path: Path) -> None:
    # Two real processes over the same files in the same order: each file is checked by both at about
    # the same time, so one of them finds the scene stored only when it inserts (issue 17, item 8).
    folder = tmp_path / "in"
    _scenes(test_data, folder, 6)
    command = [*CLI, "ingest", str(folder), "-w", str(root), "--json"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    assert all(report["failed"] == 0 for report in reports)
    assert sum(report["ingested"] for report in reports) == 6  # each scene stored by exactly one
    assert all(report["ingested"] + report["skipped"] == 6 for report in reports)
    scenes, observations, chips = _state(root)
    assert (scenes, observations, len(chips)) == (6, 6, 6)
