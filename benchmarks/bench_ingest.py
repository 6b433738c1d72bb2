"""Benchmark: ingest cost per file, and a site chip cut from a scene far larger than the site.

1. ``sitewatch.pipeline.ingest`` of the CC0 ``tests/data/RGB.byte.tif`` and, when ../shared/data is
   present, the 12-date MODIS JPEG2000 series: wall time per file (inspect + chip + COG + store).
2. The demo's scenes: the ``quick`` scenario (Sanumdong at 0.5 m, the demo's generator, 9 images)
   simulated once, then each image ingested alone: median wall and CPU seconds per file beside the
   target of issue 18 (<= 0.1 s per file). ``--baseline SRC`` ingests the same images with another
   checkout's ``src`` folder (the code before a change) in the same run, alternating ``--rounds``
   times, and says whether both wrote chips with the same pixels.
3. ``extract_chip`` of a 2 km x 2 km site at 0.5 m (4000 x 4000 pixels) from a scene that declares
   46,000 x 46,000 pixels (a VRT over a tiled GeoTIFF): time and peak memory show that only the
   window over the site is read, not the 2 GB band.

    nice -n 10 .venv/bin/python benchmarks/bench_ingest.py [--repeat 3] [--json]
    mkdir -p /tmp/before && git archive BASE src | tar -x -C /tmp/before
    nice -n 10 .venv/bin/python benchmarks/bench_ingest.py --baseline /tmp/before/src --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
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


TARGET_S_PER_FILE = 0.1


def _demo_images(folder: Path) -> Path:
    from sitewatch.imagery.simulate import load_scenario, simulate

    simulate(load_scenario("quick"), folder / "images", seed=11)
    return folder / "images"


def _demo_ingest(images: Path, folder: Path, repeat: int) -> dict[str, object]:
    """Each demo image ingested alone: median wall and CPU seconds per file, and the chips' pixels."""
    from sitewatch.imagery.chips import read_chip
    from sitewatch.imagery.simulate.sites import site_by_id

    files = sorted(images.rglob("*.tif"))
    walls, cpus = [], []
    pixels = hashlib.sha256()
    for run in range(repeat):
        with Workspace.init(folder / f"demo{run}", sites=[site_by_id("sanumdong")]) as ws:
            for path in files:
                started, cpu_started = time.perf_counter(), time.process_time()
                report = ingest(ws, [path])
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu_started)
                if not report.ok:
                    raise SystemExit(f"benchmark input failed: {report.failed[0].message}")
            if run == 0:
                for observation in ws.observations():
                    chip = read_chip(ws.chip_path(observation))
                    pixels.update(chip.array.tobytes())
                    pixels.update(chip.valid.tobytes())
    return {"files": len(files), "runs": repeat, "median_s_per_file": statistics.median(walls),
            "median_cpu_s_per_file": statistics.median(cpus), "pixels_sha256": pixels.hexdigest()[:16]}


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
    parser.add_argument("--baseline", type=Path, help="another checkout's src folder, run alongside")
    parser.add_argument("--rounds", type=int, default=3, help="alternations with --baseline")
    parser.add_argument("--demo-images", type=Path, help=argparse.SUPPRESS)  # a child's input
    args = parser.parse_args()
    if args.demo_images is not None:
        with tempfile.TemporaryDirectory() as temporary:
            print(json.dumps(_demo_ingest(args.demo_images, Path(temporary), args.repeat)))
        return
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        images = _demo_images(folder)
        if args.baseline is not None:
            _side_by_side(images, args.baseline, args.rounds, args.repeat)
            return
        results = {"ingest": _ingest_times(folder, args.repeat),
                   "demo": _demo_ingest(images, folder, args.repeat),
                   "chip": _chip_times(folder, args.repeat)}
    if args.json:
        print(json.dumps(results))
        return
    ingested, demo, chip = results["ingest"], results["demo"], results["chip"]
    print(f"ingest: {ingested['files']} files x {ingested['runs']} runs, "
          f"median {ingested['median_s_per_file']:.3f} s/file, max {ingested['max_s_per_file']:.3f} s")
    print(f"demo:   {demo['files']} scenes x {demo['runs']} runs, "
          f"median {demo['median_s_per_file']:.3f} s/file (target <= {TARGET_S_PER_FILE}), "
          f"{demo['median_cpu_s_per_file']:.3f} CPU-s/file")
    print(f"chip:   {chip['grid']} from a {chip['scene']} scene: median {chip['median_s']:.3f} s, "
          f"valid {chip['valid_fraction']:.3f}, peak RSS {chip['peak_rss_mib']} MiB")


def _side_by_side(images: Path, baseline: Path, rounds: int, repeat: int) -> None:
    """The demo scenes ingested by this checkout and by ``baseline`` in turn, each in a child process."""
    found: dict[str, list[dict[str, object]]] = {"this checkout": [], "baseline": []}
    print(f"demo scenes ingested one by one; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for _ in range(rounds):
        for label, source in (("this checkout", None), ("baseline", baseline)):
            env = dict(os.environ)
            if source is not None:
                env["PYTHONPATH"] = str(source.resolve())
            done = subprocess.run([sys.executable, __file__, "--demo-images", str(images), "--repeat",
                                   str(repeat)], check=True, capture_output=True, text=True, env=env)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            found[label].append(result)
            print(f"  {label:13s} {result['median_s_per_file']:.3f} s/file, "
                  f"{result['median_cpu_s_per_file']:.3f} CPU-s/file, pixels {result['pixels_sha256']}",
                  flush=True)
    medians = {label: (statistics.median(float(r["median_s_per_file"]) for r in results),
                       statistics.median(float(r["median_cpu_s_per_file"]) for r in results))
               for label, results in found.items()}
    (wall, cpu), (base_wall, base_cpu) = medians["this checkout"], medians["baseline"]
    same = len({str(r["pixels_sha256"]) for results in found.values() for r in results}) == 1
    print(f"median: {wall:.3f} s/file (target <= {TARGET_S_PER_FILE}), {cpu:.3f} CPU-s/file; baseline "
          f"{base_wall:.3f} s/file, {base_cpu:.3f} CPU-s/file; ratio wall {wall / base_wall:.2f}, "
          f"CPU {cpu / base_cpu:.2f}; same chip pixels: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
