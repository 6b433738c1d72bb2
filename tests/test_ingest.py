"""The ingest pipeline against a real workspace: chips per covered site, idempotence, bad files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from sitewatch.core.types import Site
from sitewatch.imagery.chips import read_chip
from sitewatch.pipeline.ingest import FileOutcome, FileStatus, expand_paths, ingest
from sitewatch.store import Workspace
from sitewatch.store import workspace as workspace_module

WHEN = datetime(2001, 5, 1, tzinfo=UTC)
# Inside RGB.byte.tif's valid (non-collar) area, and one straddling its west edge.
BAHAMAS = Site(id="exuma", name="Exuma", country="BS", category="test",
               geometry=box(-77.9, 24.4, -77.6, 24.7), gsd=100.0)
ANDROS_EDGE = Site(id="andros-edge", name="Andros edge", country="BS", category="test",
                   geometry=box(-79.1, 24.3, -78.6, 24.6), gsd=100.0)
ELSEWHERE = Site(id="elsewhere", name="Elsewhere", country="KP", category="test",
                 geometry=box(125.70, 39.00, 125.72, 39.02), gsd=10.0)


def _site_over(footprint_bounds: tuple[float, float, float, float], site_id: str, gsd: float,
               fraction: float = 0.3) -> Site:
    west, south, east, north = footprint_bounds
    cx, cy = (west + east) / 2, (south + north) / 2
    half_x, half_y = (east - west) * fraction / 2, (north - south) * fraction / 2
    return Site(id=site_id, name=site_id, country="XX", category="test",
                geometry=box(cx - half_x, cy - half_y, cx + half_x, cy + half_y), gsd=gsd)


def _snapshot(ws: Workspace) -> tuple[int, int, list[str]]:
    chips = sorted(str(p.relative_to(ws.root)) for p in (ws.root / "chips").rglob("*") if p.is_file())
    return len(ws.scenes()), len(ws.observations()), chips


@pytest.fixture
def workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Workspace.init(tmp_path / "ws", sites=[BAHAMAS, ANDROS_EDGE, ELSEWHERE]) as ws:
        yield ws


def test_ingest_cuts_one_chip_per_covered_site(workspace: Workspace, test_data: Path) -> None:
    calls: list[tuple[str, int, int, FileOutcome | None]] = []
    report = ingest(workspace, [test_data / "RGB.byte.tif"], acquired=WHEN, sensor="landsat-7",
                    progress=lambda path, i, n, outcome: calls.append((path.name, i, n, outcome)))
    assert report.ok and len(report.ingested) == 1
    outcome = report.ingested[0]
    assert set(outcome.site_ids) == {"exuma", "andros-edge"}  # not "elsewhere"
    assert [c[3] is None for c in calls] == [True, False] and calls[0][:3] == ("RGB.byte.tif", 0, 1)

    scene = workspace.scene(outcome.scene_id or "")
    assert scene.sensor == "landsat-7" and scene.acquired == WHEN and scene.crs == "EPSG:32618"
    observations = {o.site_id: o for o in workspace.observations()}
    assert set(observations) == {"exuma", "andros-edge"}
    inner, edge = observations["exuma"], observations["andros-edge"]
    assert inner.id == f"exuma-{scene.id}" and inner.scene_id == scene.id and inner.acquired == WHEN
    assert 0.9 < inner.valid_fraction < 0.99  # the scene's scattered cumulus is masked out
    assert 0.1 < edge.valid_fraction < 0.9
    for observation in (inner, edge):
        chip = read_chip(workspace.chip_path(observation))
        assert chip.valid_fraction == pytest.approx(observation.valid_fraction)
        assert chip.array.shape[0] == 3 and chip.array.dtype == np.uint8
    assert not any(workspace.staging_dir().iterdir())


def test_reingest_changes_nothing(workspace: Workspace, test_data: Path) -> None:
    ingest(workspace, [test_data / "RGB.byte.tif"], acquired=WHEN)
    before = _snapshot(workspace)
    # no --acquired needed to recognise a stored file: it is matched by checksum first
    report = ingest(workspace, [test_data / "RGB.byte.tif", test_data])
    assert [o.status for o in report.outcomes] == [FileStatus.SKIPPED]  # the folder holds the same file
    assert "already ingested" in report.skipped[0].message
    assert _snapshot(workspace) == before


def _write(path: Path, array: np.ndarray, transform: Affine, crs: str = "EPSG:32618",
           nodata: float | None = None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1],
                       count=array.shape[0], dtype=array.dtype.name, crs=crs, transform=transform,
                       nodata=nodata) as dataset:
        dataset.write(array)
    return path


def _rgb_byte_transform(test_data: Path) -> Affine:
    with rasterio.open(test_data / "RGB.byte.tif") as dataset:
        return dataset.transform


def test_bad_files_fail_with_their_name_and_the_batch_goes_on(workspace: Workspace, test_data: Path,
                                                             tmp_path: Path) -> None:
    transform = _rgb_byte_transform(test_data)
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    good = test_data / "RGB.byte.tif"
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[:300_000])
    all_nan = _write(tmp_path / "nan_2001-05-01.tif", np.full((1, 718, 791), np.nan, "float32"), transform)
    nowhere = _write(tmp_path / "nowhere_2001-05-01.tif", np.ones((1, 10, 10), "uint8"),
                     Affine(30, 0, 500_000, 0, -30, 1_000_000), crs="EPSG:32633")
    report = ingest(workspace, [empty, truncated, all_nan, good, nowhere], acquired=WHEN)
    statuses = {o.path.name: o.status for o in report.outcomes}
    assert statuses == {"empty.tif": FileStatus.FAILED, "truncated.tif": FileStatus.FAILED,
                        "nan_2001-05-01.tif": FileStatus.FAILED, "RGB.byte.tif": FileStatus.INGESTED,
                        "nowhere_2001-05-01.tif": FileStatus.FAILED}
    messages = {o.path.name: o.message for o in report.failed}
    for name, message in messages.items():
        assert name in message
    assert "empty" in messages["empty.tif"]
    assert "truncated" in messages["truncated.tif"]
    assert "nodata, masked or NaN" in messages["nan_2001-05-01.tif"]
    nowhere_message = messages["nowhere_2001-05-01.tif"]
    assert "covers none" in nowhere_message and "lon " in nowhere_message
    assert len(workspace.scenes()) == 1  # only the good file
    assert not report.ok


def test_store_unchanged_after_a_corrupt_file(workspace: Workspace, test_data: Path, tmp_path: Path) -> None:
    ingest(workspace, [test_data / "RGB.byte.tif"], acquired=WHEN)
    before = _snapshot(workspace)
    corrupt = tmp_path / "corrupt.tif"
    data = bytearray((test_data / "RGB.byte.tif").read_bytes())
    data[-200_000:] = b"\x00" * 200_000  # checksum differs, header intact, strips gone
    corrupt.write_bytes(bytes(data[:-150_000]))
    report = ingest(workspace, [corrupt], acquired=WHEN)
    assert not report.ok and "corrupt.tif" in report.failed[0].message
    assert _snapshot(workspace) == before
    assert not any(workspace.staging_dir().iterdir())


def test_site_only_over_nodata_gets_no_observation(tmp_path: Path, test_data: Path) -> None:
    # The north-west corner of RGB.byte.tif is black collar (nodata 0) yet inside the footprint.
    with rasterio.open(test_data / "RGB.byte.tif") as dataset:
        assert not dataset.read(1, window=((0, 20), (0, 20))).any()
        west, north = dataset.transform.c, dataset.transform.f
    to_lonlat = Transformer.from_crs("EPSG:32618", "EPSG:4326", always_xy=True)
    lon0, lat0 = to_lonlat.transform(west + 2 * 300, north - 2 * 300)
    lon1, lat1 = to_lonlat.transform(west + 15 * 300, north - 15 * 300)
    collar = Site(id="collar", name="Collar", country="BS", category="test",
                  geometry=box(lon0, lat1, lon1, lat0), gsd=100.0)
    with Workspace.init(tmp_path / "ws", sites=[collar]) as ws:
        report = ingest(ws, [test_data / "RGB.byte.tif"], acquired=WHEN)
        assert "nodata, masked or NaN" in report.failed[0].message and "collar" in report.failed[0].message
        assert ws.scenes() == [] and ws.observations() == []
    with Workspace.init(tmp_path / "ws2", sites=[collar, BAHAMAS]) as ws:
        report = ingest(ws, [test_data / "RGB.byte.tif"], acquired=WHEN)
        assert report.ingested[0].site_ids == ("exuma",)  # the all-nodata site is dropped


def test_folder_expansion_skips_sidecars(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name in ("a.tif", "sub/b.TIF", "c.jp2", "a.tif.aux.xml", "a.json", "c.stac.json", "a.ovr",
                 "quick.jpg", "2000TM", "2000TM.HDR", "notes.txt", ".hidden/d.tif", "x.dat", "x.hdr"):
        (folder / name).write_bytes(b"x")
    found = [p.relative_to(folder).as_posix() for p in expand_paths([folder])]
    assert found == ["2000TM", "a.tif", "c.jp2", "sub/b.TIF", "x.dat"]
    explicit = folder / "notes.txt"  # a file named on the command line is always tried
    assert expand_paths([explicit, explicit]) == [explicit]


# --- real files from ../shared/data ------------------------------------------------------------------


def test_ingest_real_envi_geotiff_and_jpeg2000(shared_data: Path, tmp_path: Path) -> None:
    landsat = shared_data / "landsat_taizhou_nanjing_cd"
    nanjing = landsat / "Nanjing" / "LT51200382000124BJC00_Nanjing"
    spacenet = shared_data / "spacenet_atlanta_solaris_sample" / "sample_geotiff.tif"
    modis = shared_data / "sits_modis_ndvi_timeseries"
    sites = [
        _site_over((118.6976, 31.8665, 118.9558, 32.0865), "nanjing", 30.0),
        _site_over((119.841, 32.4341, 119.9723, 32.5453), "taizhou", 30.0),
        _site_over((-84.4814, 33.6363, -84.4765, 33.6405), "atlanta", 0.5),
        _site_over((-55.8026, -11.8021, -55.199, -11.4958), "sinop", 100.0),
    ]
    with Workspace.init(tmp_path / "ws", sites=sites) as ws:
        dated = ingest(ws, [nanjing, landsat / "Nanjing" / "LT51200382002193BJC00_Nanjing", modis])
        assert dated.ok, [o.message for o in dated.failed]
        assert len(dated.ingested) == 14
        undated = ingest(ws, [landsat / "Taizhou" / "2000TM", spacenet], acquired=datetime(2000, 3, 17))
        assert undated.ok, [o.message for o in undated.failed]

        by_site = {site.id: ws.observations(site.id) for site in sites}
        assert [len(by_site[s]) for s in ("nanjing", "taizhou", "atlanta", "sinop")] == [2, 1, 1, 12]
        assert [o.acquired.date().isoformat() for o in by_site["nanjing"]] == ["2000-05-03", "2002-07-12"]
        sinop_dates = [o.acquired for o in by_site["sinop"]]
        assert sinop_dates == sorted(sinop_dates) and sinop_dates[0] == datetime(2013, 9, 14, tzinfo=UTC)
        for site_id, observations in by_site.items():
            for observation in observations:
                chip = read_chip(ws.chip_path(observation))
                assert chip.valid_fraction > 0.99, site_id
        atlanta = read_chip(ws.chip_path(by_site["atlanta"][0]))
        assert atlanta.array.dtype == np.uint16 and atlanta.array.shape[1] > 100
        assert ingest(ws, [modis]).skipped and len(ws.observations("sinop")) == 12  # idempotent


def test_scene_stored_by_another_process_meanwhile_is_skipped(workspace: Workspace, test_data: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process stores the scene after this one's checks and before its insert: the insert's
    # constraint failure means "already stored", never an error (issue 17, item 8).
    other = Workspace.open(workspace.root)
    try:
        report = ingest(other, [test_data / "RGB.byte.tif"], acquired=WHEN)
        assert report.ok and len(report.ingested) == 1
    finally:
        other.close()
    before = _snapshot(workspace)
    checks = iter([False, False])  # both checks before the insert miss the other process's row
    monkeypatch.setattr(workspace_module.Workspace, "has_scene",
                        lambda self, scene_id: next(checks, True))
    monkeypatch.setattr(workspace_module, "_scene_exists", lambda connection, scene_id: False)
    report = ingest(workspace, [test_data / "RGB.byte.tif"], acquired=WHEN)
    assert [o.status for o in report.outcomes] == [FileStatus.SKIPPED], report.outcomes
    assert _snapshot(workspace) == before
    assert not any(workspace.staging_dir().iterdir())
