"""Benchmark: `sitewatch monitor --full` per observation on a demo-size workspace, object detection on.

    make demo                                                    # once: demo/workspace, 178 observations
    nice -n 10 .venv/bin/python benchmarks/bench_monitor_pass.py [--workspace demo/workspace]
    mkdir -p /tmp/before && git archive BASE src | tar -x -C /tmp/before   # the code before, then:
    nice -n 10 .venv/bin/python benchmarks/bench_monitor_pass.py --baseline /tmp/before/src --rounds 2

Each pass is the real command (``sitewatch monitor --full --json``, its default workers) in a child
process, on a copy of the workspace's database with its chips linked (the pass only reads them), so the
workspace itself is left as it was. It reports wall seconds and CPU-seconds (the command and its worker
processes) per observation. ``--baseline SRC`` runs another checkout's ``src`` folder the same way,
alternating with this one ``--rounds`` times in the same run (the machine's load moves between runs,
so only figures side by side compare), prints the medians, their ratios, and whether both stored the
same indicators. Targets (issue 18): at most 0.4 s per observation, CPU-seconds per observation halved.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sitewatch.store import Workspace

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.4
TARGET_CPU_RATIO = 0.5


def _copy(workspace: Path, into: Path) -> Path:
    """The workspace's settings and database copied, its chips linked (the pass does not write them)."""
    into.mkdir(parents=True)
    for name in ("sitewatch.toml", "sitewatch.db", "sitewatch.db-wal"):
        if (workspace / name).is_file():
            shutil.copy2(workspace / name, into / name)
    (into / "chips").symlink_to((workspace / "chips").resolve())
    return into


def _stored(workspace: Path) -> tuple[int, list[tuple[object, ...]]]:
    """The workspace's number of observations, and its indicators (rounded to float noise)."""
    with Workspace.open(workspace) as opened:
        observations = len(opened.observations())
        values = [(v.observation_id, v.zone_id, v.name, None if v.value is None else round(v.value, 6),
                   round(v.quality, 6)) for site in opened.sites() for v in opened.indicators(site.id)]
    return observations, sorted(values, key=str)


def one_pass(workspace: Path, source: Path | None, folder: Path) -> dict[str, object]:
    copy = _copy(workspace, folder / f"ws-{time.monotonic_ns()}")
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve())
    command = [sys.executable, "-c", "from sitewatch.app.cli import main; main()",
               "monitor", "--full", "--json", "-w", str(copy)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    observations, indicators = _stored(copy)
    shutil.rmtree(copy)
    return {"wall": wall, "cpu": cpu, "observations": observations, "indicators": indicators}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=REPO / "demo" / "workspace")
    parser.add_argument("--baseline", type=Path, help="another checkout's src folder, run alongside")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if not (args.workspace / "sitewatch.db").is_file():
        raise SystemExit(f"{args.workspace} is not a workspace with a SQLite database; run `make demo` "
                         "first, or pass --workspace")
    runs: dict[str, list[dict[str, object]]] = {"this checkout": [], "baseline": []}
    print(f"sitewatch monitor --full on {args.workspace}; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        for _ in range(args.rounds):
            sources = [("this checkout", None)] + ([("baseline", args.baseline)] if args.baseline else [])
            for label, source in sources:
                result = one_pass(args.workspace, source, Path(temporary))
                runs[label].append(result)
                count = int(str(result["observations"]))
                print(f"  {label:13s} {result['wall']:7.1f} s, {result['cpu']:7.1f} CPU-s for {count} "
                      f"observations: {float(str(result['wall'])) / count:.3f} s/obs, "
                      f"{float(str(result['cpu'])) / count:.3f} CPU-s/obs", flush=True)
    medians = {}
    for label, results in runs.items():
        if results:
            count = int(str(results[0]["observations"]))
            medians[label] = (statistics.median(float(str(r["wall"])) for r in results) / count,
                              statistics.median(float(str(r["cpu"])) for r in results) / count)
    wall, cpu = medians["this checkout"]
    print(f"median: {wall:.3f} s/obs (target <= {TARGET_SECONDS}), {cpu:.3f} CPU-s/obs")
    if "baseline" in medians:
        base_wall, base_cpu = medians["baseline"]
        same = all(r["indicators"] == runs["this checkout"][0]["indicators"]
                   for r in runs["this checkout"] + runs["baseline"])
        print(f"baseline: {base_wall:.3f} s/obs, {base_cpu:.3f} CPU-s/obs; this checkout / baseline: wall "
              f"{wall / base_wall:.2f}, CPU {cpu / base_cpu:.2f} (target <= {TARGET_CPU_RATIO}); "
              f"same indicators: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
