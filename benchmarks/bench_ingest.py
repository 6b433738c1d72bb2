"""Benchmark: ingest cost per file, and a site chip cut from a scene far larger than the site.

1. ``sitewatch.pipeline.ingest`` of the CC0 ``tests/data/RGB.byte.tif`` and, when ../shared/data is
   present, the 12-date MODIS JPEG2000 series: wall time per file (inspect + chip + COG + store).
2. ``extract_chip`` of a 2 km x 2 km site at 0.5 m (4000 x 4000 pixels) from a scene that declares
   46,000 x 46,000 pixels (a VRT over a tiled GeoTIFF): time and peak memory show that only the
   window over the site is read, not the 2 GB band.

    nice -n 10 .venv/bin/python benchmarks/bench_ingest.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import box

from sitewatch.core.types import Site
from sitewatch.imagery.chips import extract_chip
from sitewatch.imagery.grid import SiteGrid
from sitewatch.pipeline.ingest import ingest
from sitewatch.store import Workspace

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SITEWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
RGB_BYTE = REPO / "tests" / "data" / "RGB.byte.tif"
EXUMA = Site(id="exuma", name="Exuma", country="BS", category="benchmark",
             geometry=box(-77.9, 24.4, -77.6, 24.7), gsd=100.0)
SINOP = Site(id="sinop", name="Sinop", country="BR", category="benchmark",
             geometry=box(-55.6, -11.75, -55.4, -11.55), gsd=100.0)


def _ingest_times(folder: Path, repeat: int) -> dict[str, object]:
    files = [RGB_BYTE]
    modis = SHARED / "sits_modis_ndvi_timeseries"
    if modis.is_dir():
        files += sorted(modis.glob("*.jp2"))
    per_file: list[float] = []
    for run in range(repeat):
        with Workspace.init(folder / f"ws{run}", sites=[EXUMA, SINOP]) as ws:
            for path in files:
                started = time.perf_counter()
                when = datetime(2001, 5, 1, tzinfo=UTC) if path == RGB_BYTE else None  # MODIS: from names
                report = ingest(ws, [path], acquired=when)
                per_file.append(time.perf_counter() - started)
                if not report.ok:
                    raise SystemExit(f"benchmark input failed: {report.failed[0].message}")
    return {"files": len(files), "runs": repeat, "median_s_per_file": statistics.median(per_file),
            "max_s_per_file": max(per_file)}


def _big_scene(folder: Path) -> Path:
    tile = folder / "tile.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(tile, "w", driver="GTiff", width=4200, height=4200, count=1, dtype="uint8",
                       crs="EPSG:32652", transform=Affine(0.5, 0, 510_000, 0, -0.5, 4_310_000),
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate") as dataset:
        dataset.write(rng.integers(1, 255, (1, 4200, 4200), dtype=np.uint8))
    vrt = folder / "scene.vrt"
    # the tile sits at pixel offset (20000, 20000) of a 46,000-pixel scene
    vrt.write_text(
        '<VRTDataset rasterXSize="46000" rasterYSize="46000"><SRS>EPSG:32652</SRS>'
        "<GeoTransform>500000, 0.5, 0, 4320000, 0, -0.5</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><NoDataValue>0</NoDataValue><SimpleSource>'
        f"<SourceFilename>{tile}</SourceFilename><SourceBand>1</SourceBand>"
        '<SrcRect xOff="0" yOff="0" xSize="4200" ySize="4200"/>'
        '<DstRect xOff="20000" yOff="20000" xSize="4200" ySize="4200"/>'
        "</SimpleSource></VRTRasterBand></VRTDataset>", encoding="utf-8")
    return vrt


def _chip_times(folder: Path, repeat: int) -> dict[str, object]:
    scene = _big_scene(folder)
    # 2 km site inside the tile, on a grid shifted by a quarter pixel (real resampling)
    grid = SiteGrid(epsg=32652, transform=Affine(0.5, 0, 510_050.125, 0, -0.5, 4_309_949.875),
                    width=4000, height=4000, gsd=0.5)
    times = []
    valid = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        chip = extract_chip(scene, grid)
        times.append(time.perf_counter() - started)
        valid = chip.valid_fraction
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"grid": "4000x4000 at 0.5 m", "scene": "46000x46000 declared",
            "median_s": statistics.median(times), "valid_fraction": valid, "peak_rss_mib": round(peak_mib, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        results = {"ingest": _ingest_times(folder, args.repeat), "chip": _chip_times(folder, args.repeat)}
    if args.json:
        print(json.dumps(results))
        return
    ingested, chip = results["ingest"], results["chip"]
    print(f"ingest: {ingested['files']} files x {ingested['runs']} runs, "
          f"median {ingested['median_s_per_file']:.3f} s/file, max {ingested['max_s_per_file']:.3f} s")
    print(f"chip:   {chip['grid']} from a {chip['scene']} scene: median {chip['median_s']:.3f} s, "
          f"valid {chip['valid_fraction']:.3f}, peak RSS {chip['peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
