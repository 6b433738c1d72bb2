"""Benchmark: simulate a whole scenario (default ``reference``) and report time per phase.

The demo budget counts on the reference scenario (3 sites, June 2018 to March 2019, irregular
revisits) rendering in at most 90 s on one core. Wall time on a shared machine depends on the
load, so the CPU time of this process (one thread) is reported beside it; the CPU time is what
one idle core would take.

    nice -n 10 .venv/bin/python benchmarks/bench_simulate.py [SCENARIO] [--seed 1] [--out DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sitewatch.imagery.simulate.run as run_module
from sitewatch.imagery.simulate import load_scenario, simulate
from sitewatch.imagery.simulate.render import SiteRenderer

PHASES: dict[str, float] = {}


def _timed(owner: Any, name: str, phase: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            PHASES[phase] = PHASES.get(phase, 0.0) + time.process_time() - started

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", nargs="?", default="reference")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    _timed(SiteRenderer, "__init__", "site set-up (layout, background)")
    _timed(SiteRenderer, "render_date", "render (activity + pixels)")
    _timed(run_module, "write_scene", "write GeoTIFF + STAC")
    _timed(run_module, "truth_objects", "ground truth")
    _timed(run_module, "file_digest", "checksums")

    scenario = load_scenario(args.scenario)
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-") as scratch:
        folder = args.out or Path(scratch)
        wall, cpu = time.perf_counter(), time.process_time()
        result = simulate(scenario, folder, seed=args.seed)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    report = {
        "scenario": scenario.name,
        "seed": args.seed,
        "images": result.image_count,
        "images_per_site": {
            s.site_id: sum(1 for i in result.images if i.site_id == s.site_id) for s in scenario.sites
        },
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_image": round(1000 * cpu / max(result.image_count, 1), 1),
        "phases_cpu_s": {k: round(v, 2) for k, v in PHASES.items()},
        "output_mb": round(size / 1e6, 1),
        "checksum": result.checksum,
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{report['scenario']} (seed {args.seed}): {report['images']} images {report['images_per_site']}")
    print(f"  wall {report['wall_s']} s, CPU {report['cpu_s']} s ({report['cpu_ms_per_image']} ms per image)")
    for phase, seconds in report["phases_cpu_s"].items():
        print(f"    {phase:36s} {seconds:7.2f} s")
    print(f"  output {report['output_mb']} MB, checksum {report['checksum']}")
    print(f"  1-minute load average during the run: {report['load_average']:.1f}")


if __name__ == "__main__":
    main()
