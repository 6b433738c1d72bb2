"""Limits on what input may ask for: crafted headers, absurd sites, deep or huge catalogs, and any
failure of one file staying that file's (issue 17, items 4, 5 and 10)."""

from __future__ import annotations

import json
import struct
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import box
from typer.testing import CliRunner

from sitewatch.app.cli import app, main
from sitewatch.app.errors import exit_code_for
from sitewatch.catalog import site_to_feature
from sitewatch.catalog.files import _nesting
from sitewatch.core.errors import UnsupportedInputError, ValidationError
from sitewatch.core.types import Site
from sitewatch.imagery import grid as grid_module
from sitewatch.pipeline import ingest as ingest_module
from sitewatch.pipeline.ingest import FileStatus, ingest
from sitewatch.store import Workspace

EXUMA = Site(id="exuma", name="Exuma", country="BS", category="test",
             geometry=box(-77.9, 24.4, -77.6, 24.7), gsd=100.0)
ANDROS_EDGE = Site(id="andros-edge", name="Andros edge", country="BS", category="test",
                   geometry=box(-79.1, 24.3, -78.6, 24.6), gsd=100.0)
runner = CliRunner()
WHEN = datetime(2001, 5, 1, tzinfo=UTC)


@pytest.fixture
def workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Workspace.init(tmp_path / "ws", sites=[EXUMA, ANDROS_EDGE]) as ws:
        yield ws


def crafted_tiff(path: Path, bands: int) -> Path:
    """A tiny GeoTIFF over Exuma (one pixel, 0.5 degrees) whose header declares ``bands`` bands, written
    byte by byte (GDAL takes a minute to write 20,000 bands; the header is what is being tested)."""
    geokeys = [1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326]
    blobs = {
        258: struct.pack(f"<{bands}H", *[8] * bands),
        33550: struct.pack("<3d", 0.5, 0.5, 0.0),
        33922: struct.pack("<6d", 0, 0, 0, -78.0, 24.8, 0),
        34735: struct.pack(f"<{len(geokeys)}H", *geokeys),
    }
    entries = [  # tag, type (3 SHORT, 4 LONG, 12 DOUBLE), count, value or None for a blob
        (256, 3, 1, 1), (257, 3, 1, 1), (258, 3, bands, None), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, 1, None), (277, 3, 1, bands), (278, 3, 1, 1), (279, 4, 1, bands), (284, 3, 1, 1),
        (33550, 12, 3, None), (33922, 12, 6, None), (34735, 3, len(geokeys), None),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    offset = 8 + ifd_size
    placed: dict[int, int] = {}
    data = b""
    for tag, blob in blobs.items():
        placed[tag] = offset + len(data)
        data += blob
    pixels_at = offset + len(data)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = pixels_at
        elif value is None:
            value = placed[tag]
        inline_short = kind == 3 and tag not in placed
        packed = struct.pack("<HH", value, 0) if inline_short else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + data + b"\x01" * bands)
    return path


def test_a_tiff_declaring_20000_bands_is_refused_and_the_batch_goes_on(workspace: Workspace, tmp_path: Path,
                                                                        test_data: Path) -> None:
    crafted = crafted_tiff(tmp_path / "a_crafted.tif", 20_000)
    assert crafted.stat().st_size < 240_000
    report = ingest(workspace, [crafted, test_data / "RGB.byte.tif"], acquired=WHEN)
    assert [o.status for o in report.outcomes] == [FileStatus.FAILED, FileStatus.INGESTED]
    assert "declares 20000 bands, over the limit of 256" in report.outcomes[0].message
    assert "max_image_bands" in report.outcomes[0].message


def test_image_limits_are_workspace_settings(workspace: Workspace, test_data: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_MAX_IMAGE_BANDS", "2")
    with Workspace.open(workspace.root) as limited:
        assert limited.settings.max_image_bands == 2
        report = ingest(limited, [test_data / "RGB.byte.tif"], acquired=None)
    assert "declares 3 bands, over the limit of 2" in report.failed[0].message
    monkeypatch.setenv("SITEWATCH_MAX_IMAGE_BANDS", "3")
    monkeypatch.setenv("SITEWATCH_MAX_IMAGE_PIXELS", "1000")
    with Workspace.open(workspace.root) as limited:
        report = ingest(limited, [test_data / "RGB.byte.tif"], acquired=None)
    assert "791x718 pixels per band" in report.failed[0].message
    monkeypatch.setenv("SITEWATCH_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValidationError, match="not a whole number"):
        Workspace.open(workspace.root)


def test_any_error_of_one_file_is_that_files_and_the_batch_goes_on(workspace: Workspace, test_data: Path,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "first.tif"
    first.write_bytes((test_data / "RGB.byte.tif").read_bytes()[:-1] + b"\x01")  # another scene id
    inspect = ingest_module.inspect_image

    def explode_on_first(path: Path, **kwargs):  # type: ignore[no-untyped-def]
        if path == first:
            raise MemoryError("Unable to allocate 38.7 GiB for an array with shape (20000, 1024, 1024)")
        return inspect(path, **kwargs)

    monkeypatch.setattr(ingest_module, "inspect_image", explode_on_first)
    report = ingest(workspace, [first, test_data / "RGB.byte.tif"], acquired=WHEN)
    assert [o.status for o in report.outcomes] == [FileStatus.FAILED, FileStatus.INGESTED]
    assert str(first) in report.failed[0].message and "38.7 GiB" in report.failed[0].message


def test_one_absurd_site_never_blocks_another_sites_chip(workspace: Workspace, test_data: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real = grid_module.site_grid

    def refusing(site: Site, **kwargs):  # type: ignore[no-untyped-def]
        if site.id == "andros-edge":
            raise UnsupportedInputError("site 'andros-edge': its grid would be 4488358x79983499 pixels")
        return real(site, **kwargs)

    monkeypatch.setattr(ingest_module, "site_grid", refusing)
    report = ingest(workspace, [test_data / "RGB.byte.tif"], acquired=WHEN)
    assert report.ok and report.ingested[0].site_ids == ("exuma",)


def _catalog(path: Path, sites: list[Site]) -> Path:
    features = [site_to_feature(site) for site in sites]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def _feature_with(site: Site, **properties: object) -> dict[str, object]:
    feature = site_to_feature(site)
    feature["properties"].update(properties)  # type: ignore[union-attr]
    return feature


def test_sites_validate_and_add_refuse_a_whole_world_site_with_its_size(tmp_path: Path,
                                                                        workspace: Workspace) -> None:
    world = Site(id="world", name="World", country="XX", category="test",
                 geometry=box(-179.9, -89, 179.9, 89), gsd=1.0)
    path = _catalog(tmp_path / "world.geojson", [world])
    result = runner.invoke(app, ["sites", "validate", str(path), "--json"])
    assert result.exit_code == 4, result.output
    problems = json.loads(result.output)["problems"]
    assert len(problems) == 1 and "its grid would be" in problems[0] and "pixels at 1 m" in problems[0]
    assert "max_site_grid_side" in problems[0]
    result = runner.invoke(app, ["sites", "add", str(path), "-w", str(workspace.root)])
    assert isinstance(result.exception, UnsupportedInputError)  # exit 4 (sitewatch.app.errors)
    assert exit_code_for(result.exception) == 4 and "its grid would be" in str(result.exception)
    assert [s.id for s in workspace.sites()] == ["andros-edge", "exuma"]  # nothing added


def test_the_grid_limit_is_settable(tmp_path: Path, workspace: Workspace,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = _catalog(tmp_path / "one.geojson", [Site(id="town", name="Town", country="XX", category="test",
                                                    geometry=box(10.0, 50.0, 10.02, 50.02), gsd=1.0)])
    assert runner.invoke(app, ["sites", "validate", str(path), "-w", str(workspace.root)]).exit_code == 0
    monkeypatch.setenv("SITEWATCH_MAX_SITE_GRID_SIDE", "1000")
    result = runner.invoke(app, ["sites", "validate", str(path), "-w", str(workspace.root)])
    assert result.exit_code == 4 and "over the limit of 1000 per side" in result.output


@pytest.mark.parametrize("gsd", [1e-9, 0.01, 150.0])
def test_a_site_gsd_outside_5_cm_to_100_m_is_refused(tmp_path: Path, gsd: float) -> None:
    feature = _feature_with(EXUMA, gsd=gsd)
    path = tmp_path / "gsd.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    result = runner.invoke(app, ["sites", "validate", str(path), "--json"])
    assert result.exit_code == 4
    assert "must be 0.05 to 100 metres per pixel" in json.loads(result.output)["problems"][0]
    with pytest.raises(ValidationError, match="gsd"):
        Site(id="x", name="x", country="XX", category="t", geometry=EXUMA.geometry, gsd=gsd)


def test_a_deeply_nested_catalog_is_a_clear_error_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "deep.geojson"
    path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")  # 400 KB
    for verb in ("validate", "add"):
        argv = ["sitewatch", "sites", verb, str(path), "-w", str(tmp_path / "none")]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        assert exited.value.code == 4, captured
        assert "nested deeper than 32 levels" in captured.out + captured.err
        assert "RecursionError" not in captured.out + captured.err and "Traceback" not in captured.err


@pytest.mark.slow
def test_adding_100000_sites_is_linear(tmp_path: Path) -> None:
    sites = [Site(id=f"s{index:06d}", name=f"Site {index}", country="XX", category="test",
                  geometry=box(10 + (index % 300) * 0.01, 40 + (index // 300) * 0.01,
                               10 + (index % 300) * 0.01 + 0.005, 40 + (index // 300) * 0.01 + 0.005),
                  gsd=1.0) for index in range(100_000)]
    with Workspace.init(tmp_path / "ws", sites=[EXUMA]) as ws:
        started = time.perf_counter()
        ws.add_sites(sites)
        elapsed = time.perf_counter() - started
        assert len(ws.sites()) == 100_001
        with pytest.raises(UnsupportedInputError, match="more than once: s000007"):
            ws.add_sites([*sites[:10], sites[7]])
    assert elapsed < 120, f"adding 100,000 sites took {elapsed:.0f} s"


@pytest.mark.parametrize(("text", "depth"), [
    ('{"a": [1, "[[[", {"b": "\\"]"}]}', 3), ("[" * 50 + "]" * 50, 50), ('"[[[["', 0),
    ('{"a": "x\\\\", "b": [[1]]}', 3), ("", 0), ('{"é": ["ü"]}', 2),
])
def test_nesting_is_counted_outside_strings(text: str, depth: int) -> None:
    assert _nesting(text) == depth
