"""Benchmark: the whole object-detection step on a 4096x4096 chip at 0.5 m with 2 threads.

Compares, in the same run and with the same shipped model, sitewatch's inference path
(tiles resampled straight from the source, batched, owned-core de-duplication) with a plain
sliding window (resample the whole chip first, then one 256-pixel window at a time, global
NMS). Each method runs in its own process so its peak memory (max RSS) is its own.

    nice -n 10 .venv/bin/python benchmarks/bench_detect.py [--size 4096] [--repeat 2] [--json]
    nice -n 10 .venv/bin/python benchmarks/bench_detect.py --baseline /tmp/before/src

``--baseline SRC`` also runs the tiled path from another checkout's ``src`` folder (the code
before a change), alternating with this one's ``--rounds`` times, and says whether both found
the same boxes.

The chip is a mosaic of KIT AIS frames resampled to 0.5 m when ../shared/data is present
(so there are real cars to find), else seeded texture.

The peer, in the same run: SAHI sliced inference with YOLOv8n (random weights; ``peer_sahi.py``)
on the same chip and threads, run by the python of a separate environment that has ``sahi`` and
``ultralytics`` (``--peer-python``, default ``/tmp/peer-venv/bin/python``); without one the
benchmark says how to make it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

THREADS = 2
GSD = 0.5
PEER_PYTHON = Path("/tmp/peer-venv/bin/python")
PEER_HOW_TO = ("peer not installed: how to: python3 -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install "
               "torch==2.14.1 torchvision==0.29.1 sahi ultralytics (a separate environment: ultralytics "
               "pulls torch and torchvision, whose operators need a torch of their own version), then run "
               "this again or pass --peer-python")
SHARED = Path(os.environ.get("SITEWATCH_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))


def make_chip(size: int, seed: int = 0) -> np.ndarray:
    """(3, size, size) uint8 test chip at 0.5 m."""
    rng = np.random.default_rng(seed)
    frames = sorted((SHARED / "kit_ais_aerial_cars" / "images").glob("*.png"))
    canvas = Image.new("RGB", (size, size), (110, 112, 105))
    if frames:
        from sitewatch.evaluation.detect import read_folder

        _, labelled = read_folder(SHARED / "kit_ais_aerial_cars")
        source_gsd = labelled[0].gsd or 0.134
        tiles = []
        for path in frames:
            with Image.open(path) as frame:
                rgb = frame.convert("RGB")
                scale = source_gsd / GSD
                tiles.append(rgb.resize((round(rgb.width * scale), round(rgb.height * scale)),
                                        Image.Resampling.BOX))
        y = 0
        while y < size:
            x, row_height = 0, 0
            while x < size:
                tile = tiles[int(rng.integers(len(tiles)))]
                canvas.paste(tile, (x, y))
                x += tile.width
                row_height = max(row_height, tile.height)
            y += row_height
    else:
        noise = rng.normal(115, 25, (size // 8, size // 8, 3)).clip(0, 255).astype(np.uint8)
        canvas = Image.fromarray(noise).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(canvas).transpose(2, 0, 1).copy()


def sliding_window(detector: object, image: np.ndarray, gsd: float, window: int = 256,
                   overlap: int = 96) -> int:
    """The plain way: resample everything, then one window per inference call, then global NMS."""
    from sitewatch.analytics.objects.onnx import OnnxDetector, nms

    assert isinstance(detector, OnnxDetector)
    card = detector.card
    scale = gsd / card.model_gsd
    pil = Image.fromarray(image.transpose(1, 2, 0))
    full = pil.resize((round(pil.width * scale), round(pil.height * scale)), Image.Resampling.BILINEAR)
    pixels = detector.model_input(np.asarray(full).transpose(2, 0, 1))  # bytes, or floats 0..1
    height, width = pixels.shape[1:]
    rows = []
    step = window - overlap
    for y in range(0, max(1, height - overlap), step):
        for x in range(0, max(1, width - overlap), step):
            patch = np.zeros((1, 3, window, window), pixels.dtype)
            part = pixels[:, y:y + window, x:x + window]
            patch[0, :, : part.shape[1], : part.shape[2]] = part
            peaks, size, offset = detector.session.run(None, {"image": patch})
            cls, iy, ix = np.nonzero(peaks[0] >= card.score_threshold)
            cx = (ix + offset[0, 0, iy, ix]) * card.stride + x
            cy = (iy + offset[0, 1, iy, ix]) * card.stride + y
            w, h = np.exp(size[0, 0, iy, ix]), np.exp(size[0, 1, iy, ix])
            rows.append(np.stack([cls, peaks[0][cls, iy, ix], cx - w / 2, cy - h / 2, cx + w / 2,
                                  cy + h / 2], axis=1))
    found = np.concatenate(rows)
    kept = [found[found[:, 0] == c][nms(found[found[:, 0] == c][:, 2:], found[found[:, 0] == c][:, 1], 0.5)]
            for c in np.unique(found[:, 0])]
    return int(sum(len(k) for k in kept))


def run_one(method: str, size: int, repeat: int, card: str | None) -> dict[str, float | int | str]:
    from sitewatch.analytics.objects.onnx import load_detector, shipped_model_dir

    image = make_chip(size)
    detector = load_detector(Path(card) if card else shipped_model_dir() / "vehicles.json", threads=THREADS)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, cpu_times, count = [], [], 0
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        if method == "tiled":
            count = len(detector.detect(image, GSD))
        else:
            count = sliding_window(detector, image, GSD)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    best = min(times)
    cpu = min(cpu_times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "method": method,
        "size": size,
        "threads": THREADS,
        "seconds": round(best, 3),
        "megapixels_per_second": round(size * size / best / 1e6, 2),
        "cpu_seconds": round(cpu, 3),
        # What the wall clock would give if the 2 threads had 2 idle cores (shared machines).
        "megapixels_per_cpu_second_x2": round(2 * size * size / cpu / 1e6, 2),
        "peak_rss_mib": round(peak / 1024, 1),
        "rss_growth_mib": round((peak - rss_before) / 1024, 1),
        "detections": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--card", help="model card JSON of another model (default: the shipped one)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout's src folder whose tiled path runs alongside")
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --baseline")
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON,
                        help="python of an environment with sahi and ultralytics (the peer)")
    parser.add_argument("--method", choices=["tiled", "sliding"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_one(args.method, args.size, args.repeat, args.card)))
        return

    def child(method: str, source: Path | None = None) -> dict[str, float | int | str]:
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
        if source is not None:
            env["PYTHONPATH"] = str(source.resolve())
        done = subprocess.run(
            [sys.executable, __file__, "--method", method, "--size", str(args.size),
             "--repeat", str(args.repeat), *(["--card", args.card] if args.card else [])],
            check=True, capture_output=True, text=True, env=env,
        )
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    if args.baseline is not None:
        for _ in range(args.rounds):
            for label, source in (("this checkout", None), ("baseline", args.baseline)):
                r = child("tiled", source)
                print(f"  tiled, {label:13s} {r['seconds']:7.2f} s  {r['megapixels_per_second']:6.2f} MP/s  "
                      f"(CPU {r['cpu_seconds']:.2f} s: {r['megapixels_per_cpu_second_x2']} MP/s on 2 idle "
                      f"cores)  {r['detections']} detections", flush=True)
        return
    results = [child(method) for method in ("tiled", "sliding")]
    peer = _peer(args.peer_python, args.size, args.repeat)
    if args.json:
        print(json.dumps({"results": results, "peer": peer}, indent=2))
        return
    print(f"object detection on a {args.size}x{args.size} chip at {GSD} m, {THREADS} threads "
          f"(best of {args.repeat}); {os.cpu_count()} cores visible, load average {os.getloadavg()[0]:.1f}")
    for r in results:
        print(f"  {r['method']:8s} {r['seconds']:7.2f} s  {r['megapixels_per_second']:6.2f} MP/s  "
              f"(CPU {r['cpu_seconds']:.2f} s: {r['megapixels_per_cpu_second_x2']} MP/s on 2 idle cores)  "
              f"peak RSS {r['peak_rss_mib']:7.1f} MiB (+{r['rss_growth_mib']} MiB during detection)  "
              f"{r['detections']} detections")
    speedup = float(results[1]["seconds"]) / float(results[0]["seconds"])
    print(f"  speed-up of the tiled path over the plain sliding window: {speedup:.2f}x")
    if isinstance(peer, str):
        print(f"  {peer}")
        return
    pixels = args.size * args.size / 1e6
    print(f"  peer: SAHI + YOLOv8n {peer['seconds']:7.2f} s  {pixels / float(peer['seconds']):6.2f} MP/s  "
          f"(CPU {peer['cpu_seconds']:.2f} s, {peer['threads']} torch threads)  {peer['detections']} boxes "
          "(random weights)")
    print(f"  sitewatch tiled / peer: {float(peer['seconds']) / float(results[0]['seconds']):.2f}x faster")


def _peer(python: Path, size: int, repeat: int) -> dict[str, object] | str:
    """SAHI + YOLOv8n on the same chip in the peer environment; what to do when there is none."""
    if not python.is_file():
        return PEER_HOW_TO
    ready = subprocess.run([str(python), "-c", "import sahi, ultralytics"], capture_output=True, text=True)
    if ready.returncode != 0:
        return f"{PEER_HOW_TO} ({python} cannot import sahi and ultralytics)"
    with tempfile.TemporaryDirectory() as temporary:
        image = Path(temporary) / "chip.png"
        Image.fromarray(make_chip(size).transpose(1, 2, 0)).save(image)
        done = subprocess.run(
            [str(python), str(Path(__file__).with_name("peer_sahi.py")), str(image), str(GSD), str(THREADS),
             str(repeat)],
            capture_output=True, text=True,
            env={**os.environ, "OMP_NUM_THREADS": str(THREADS), "YOLO_OFFLINE": "1"},
        )
    if done.returncode != 0:  # e.g. a torchvision built for another torch than the one installed
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"peer failed in {python} ({last}); {PEER_HOW_TO}, with a torchvision built for that torch"
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
