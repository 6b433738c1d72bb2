"""Benchmark: change detection with co-registration, against just reading the same pixels.

Two cases, both on synthetic two-date 3-band uint8 GeoTIFFs (tiled, deflate) written here from a
continuous procedural texture, so the second date can carry a true sub-pixel shift, a radiometric
change and new bright "buildings":

* ``chip``: a 4096 x 4096 chip processed whole, as the workspace change step does, and the same
  chip in ``--window`` windows, as ``sitewatch change scene`` does;
* ``scene``: a 20,000 x 20,000 scene read and processed window by window (``--window`` pixels),
  so memory must not grow with the scene.

For every method the change step is the library's ``scene_change``: one scene-wide shift (phase
correlation on nine textured probe tiles spread over the scene) and one radiometric map fitted on
pseudo-invariant pixels of the same tiles, then per window: read both dates, shift the second, map
its radiometry, run the detector, ``--workers`` windows at a time. Each (case, method) runs in a
fresh subprocess whose peak resident memory is reported, beside the time of only reading and
decoding the same windows with rasterio, sequentially, in the same subprocess.

    nice -n 10 .venv/bin/python benchmarks/bench_change.py            # both cases, all methods
    nice -n 10 .venv/bin/python benchmarks/bench_change.py --scene-size 8192 --methods cva irmad

``--command SIZE [SIZE ...]`` times the whole ``sitewatch change scene BEFORE AFTER OUT`` command
instead (start-up, co-registration, every window, and the output file written), against
reading and decoding the same two files with rasterio in a fresh process, alternately
``--repeat`` times, and prints the medians and their ratio (targets: at most 5x at 4,096 px and
3x at 16,384 px with CVA). ``--baseline SRC`` adds the same command run from another checkout's
``src`` folder in the same rounds:

    nice -n 10 .venv/bin/python benchmarks/bench_change.py --command 4096 16384 --methods cva
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window
from scipy import ndimage

SHIFT = (1.6, -2.3)
"""True shift (rows, cols) of the second date's content, in pixels."""
GAIN, OFFSET = 0.85, 12.0
"""Radiometric change of the second date."""


def _texture(rows: np.ndarray, cols: np.ndarray, coarse: np.ndarray, scale: float) -> np.ndarray:
    """Value noise: the coarse random grid bilinearly sampled at fractional positions."""
    return ndimage.map_coordinates(coarse, [rows / scale, cols / scale], order=1, mode="wrap")


def write_pair(folder: Path, size: int, seed: int = 0, block: int = 2048) -> tuple[Path, Path]:
    """Two dates of a ``size`` x ``size`` 3-band scene, written block by block (memory stays flat)."""
    rng = np.random.default_rng(seed)
    coarse = [rng.normal(size=(size // s + 2, size // s + 2)).astype(np.float32) for s in (3, 11, 41)]
    weights = (35.0, 30.0, 25.0)
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
        "crs": "EPSG:32651", "transform": Affine(0.5, 0, 400000, 0, -0.5, 4400000),
        "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate",
    }
    paths = (folder / f"before_{size}.tif", folder / f"after_{size}.tif")
    with rasterio.open(paths[0], "w", **profile) as before, rasterio.open(paths[1], "w", **profile) as after:
        for row in range(0, size, block):
            for col in range(0, size, block):
                height, width = min(block, size - row), min(block, size - col)
                rr, cc = np.mgrid[row:row + height, col:col + width].astype(np.float32)
                for target, (dr, dc), gain, offset in (
                    (before, (0.0, 0.0), 1.0, 0.0), (after, SHIFT, GAIN, OFFSET)
                ):
                    base = sum(w * _texture(rr - dr, cc - dc, c, s)
                               for w, c, s in zip(weights, coarse, (3, 11, 41), strict=True))
                    bands = np.stack([base * f + 110 + 8 * b for b, f in enumerate((1.0, 0.9, 0.8))])
                    if target is after:
                        # new 20 x 30 px buildings on a fixed lattice
                        built = ((rr.astype(int) % 300) < 20) & ((cc.astype(int) % 420) < 30)
                        bands[:, built] = 235.0
                    bands = bands * gain + offset
                    pixels = np.clip(bands, 0, 255).astype(np.uint8)
                    target.write(pixels, window=Window(col, row, width, height))
    return paths


def run_case(before_path: Path, after_path: Path, method: str, window: int, workers: int) -> dict[str, float]:
    """Time reading alone, then the whole change step, over the same windows; report peak memory.

    The change step is the library's :func:`~sitewatch.analytics.change.scene.scene_change`: a
    scene-wide shift (phase correlation on nine textured probe tiles) and radiometric map (fitted on
    the same tiles), then per window: read both dates, shift the second, map its radiometry, run
    the detector; ``workers`` windows at a time. Reading alone is one plain sequential pass. The
    change step runs twice: the first run is the figure (a fresh process, as a command-line run
    is); the second, warm, shows what fresh memory cost (on virtual machines whose memory the host
    backs lazily, the first touch of each page is slow, and one 4096 px window touches 1-3 GiB).
    """
    from sitewatch.analytics.change import get_change_detector
    from sitewatch.analytics.change.scene import plan_scene, scene_change, scene_windows

    detector = get_change_detector(method)
    # GDAL's block cache defaults to 5 % of RAM; capped so the peak measures the change step.
    with rasterio.Env(GDAL_CACHEMAX=64):
        with rasterio.open(before_path) as before, rasterio.open(after_path) as after:
            size = before.width
            started = time.perf_counter()
            for w in scene_windows(size, size, window):
                before.read(window=w)
                after.read(window=w)
            read_seconds = time.perf_counter() - started
        runs = []
        for _ in range(2):  # the first run is cold (fresh memory), the second warm
            with rasterio.open(before_path) as before, rasterio.open(after_path) as after:
                started = time.perf_counter()
                plan = plan_scene(before, after)
                coregister_seconds = time.perf_counter() - started
            changed = 0
            windows = 0
            parts = scene_change(before_path, after_path, detector, window=window, workers=workers, plan=plan)
            for part in parts:
                changed += int(part.result.mask.sum())
                windows += 1
            runs.append(time.perf_counter() - started)
    change_seconds, warm_seconds = runs
    megapixels = size * size / 1e6
    return {
        "megapixels": megapixels,
        "windows": windows,
        "workers": workers,
        "read_seconds": read_seconds,
        "change_seconds": change_seconds,
        "coregister_seconds": coregister_seconds,
        "read_mpix_per_s": megapixels / read_seconds,
        "change_mpix_per_s": megapixels / change_seconds,
        "ratio_to_read": change_seconds / read_seconds,
        "warm_change_seconds": warm_seconds,
        "warm_ratio_to_read": warm_seconds / read_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "changed_fraction": changed / (size * size),
        "shift_rows": plan.registration.shift[0],
        "shift_cols": plan.registration.shift[1],
        "shift_confidence": plan.registration.confidence,
        "gains": list(plan.radiometry.gains) if plan.radiometry else [],
    }


READ = """
import sys, rasterio
from rasterio.windows import Window
side = int(sys.argv[3])
with rasterio.open(sys.argv[1]) as before, rasterio.open(sys.argv[2]) as after:
    for row in range(0, before.height, side):
        for col in range(0, before.width, side):
            window = Window(col, row, min(side, before.width - col), min(side, before.height - row))
            before.read(window=window)
            after.read(window=window)
"""
"""Reading and decoding both dates window by window, sequentially, in a process that imports only
rasterio: the floor a change command is held to."""


def _wall(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - started


def run_command_case(before: Path, after: Path, output: Path, method: str, window: int, repeat: int,
                     baseline: Path | None) -> dict[str, object]:
    """Median wall time of ``sitewatch change scene`` and of reading the same files, run alternately."""
    sitewatch = str(Path(sys.executable).parent / "sitewatch")
    runs: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "read": ([sys.executable, "-c", READ, str(before), str(after), str(window)], None),
        "command": ([sitewatch, "change", "scene", str(before), str(after), str(output), "--method", method,
                     "--window", str(window)], None),
    }
    if baseline is not None:
        runs["baseline command"] = (
            [sys.executable, "-c", "from sitewatch.app.cli import main; main()", *runs["command"][0][1:]],
            {**os.environ, "PYTHONPATH": str(baseline.resolve())})
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, (command, env) in runs.items():
            times[name].append(_wall(command, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {name: medians[name] / medians["read"] for name in runs if name != "read"}
    return {"medians_s": medians, "ratios_to_read": ratios, "all_s": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chip-size", type=int, default=4096)
    parser.add_argument("--scene-size", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=2048, help="window side for the scene case")
    parser.add_argument("--methods", nargs="+", default=["cva", "pca-kmeans", "irmad", "segments", "learned"])
    parser.add_argument("--scene-methods", nargs="+", default=None,
                        help="methods for the scene case (default: --methods)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the synthetic GeoTIFFs go")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="windows processed at a time (default: the CPU count, at most 4)")
    parser.add_argument("--command", type=int, nargs="+", metavar="SIZE", default=None,
                        help="time the whole `sitewatch change scene` command on SIZE x SIZE pairs")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the --command timing")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout's src folder whose command is timed alongside (--command)")
    parser.add_argument("--case", nargs=4, metavar=("BEFORE", "AFTER", "METHOD", "WINDOW"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    if args.case:
        before, after, method, window = args.case
        print(json.dumps(run_case(Path(before), Path(after), method, int(window), args.workers)))
        return
    if args.command:
        command_cases(args)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        rows = []
        for case, size, windows, methods in (
            ("chip", args.chip_size, (args.chip_size, args.window), args.methods),
            ("scene", args.scene_size, (args.window,), args.scene_methods or args.methods),
        ):
            started = time.perf_counter()
            before, after = write_pair(folder, size)
            print(f"# wrote {case} pair {size}x{size} in {time.perf_counter() - started:.0f} s", flush=True)
            for window, method in ((w, m) for w in dict.fromkeys(windows) for m in methods):
                output = subprocess.run(
                    [sys.executable, __file__, "--case", str(before), str(after), method, str(window),
                     "--workers", str(args.workers)],
                    check=True, capture_output=True, text=True,
                ).stdout
                figures = json.loads(output.strip().splitlines()[-1])
                rows.append({"case": case, "size": size, "window": window, "method": method, **figures})
                print(f"{case:5} {size:6d} window {window:5d} {method:10} "
                      f"change {figures['change_mpix_per_s']:7.2f} MP/s  "
                      f"read {figures['read_mpix_per_s']:7.1f} MP/s  "
                      f"ratio {figures['ratio_to_read']:5.1f}x (warm {figures['warm_ratio_to_read']:5.1f}x)  "
                      f"peak {figures['peak_rss_mib']:7.0f} MiB  shift ({figures['shift_rows']:+.2f}, "
                      f"{figures['shift_cols']:+.2f}) (true {-SHIFT[0]:+.2f}, {-SHIFT[1]:+.2f})",
                      flush=True)
            for path in (before, after):
                path.unlink()
        print(json.dumps(rows, indent=1))


def command_cases(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        for size in args.command:
            started = time.perf_counter()
            before, after = write_pair(folder, size)
            print(f"# wrote pair {size}x{size} in {time.perf_counter() - started:.0f} s; load average "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
            for method in args.methods:
                figures = run_command_case(before, after, folder / "change.tif", method, args.window,
                                           args.repeat, args.baseline)
                rows.append({"size": size, "method": method, **figures})
                medians, ratios = figures["medians_s"], figures["ratios_to_read"]
                assert isinstance(medians, dict) and isinstance(ratios, dict)
                line = " ".join(f"{name} {medians[name]:6.2f} s ({ratios[name]:4.1f}x read)"
                                for name in ratios)
                print(f"{size:6d} {method:10} read {medians['read']:6.2f} s "
                      f"({2 * size * size / 1e6 / medians['read']:5.0f} MP/s)  {line}  "
                      f"(medians of {args.repeat})", flush=True)
            for path in (before, after):
                path.unlink()
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
