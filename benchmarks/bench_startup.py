"""Benchmark: how long the ``sitewatch`` command takes to start, against the interpreter and ``rio``.

Runs, interleaved so that every command sees the same machine load, ``--repeat`` rounds of:
the bare interpreter (``python -c pass``), ``rio --version`` (a peer CLI of the same stack),
``sitewatch --version``, ``sitewatch --help`` and ``sitewatch alerts list`` on a workspace (the
demo's when given, else a fresh one made here). Prints the median wall time of each and its
ratio to the interpreter; targets: ``--help``/``--version`` <= 0.3 s, ``alerts list`` <= 0.6 s.
``--baseline SRC`` adds the same three sitewatch commands run from another checkout's ``src``
folder (e.g. the commit before a change: ``git worktree add /tmp/before HEAD~3``), in the same rounds.

    .venv/bin/python benchmarks/bench_startup.py [--workspace demo/workspace] [--repeat 9] [--json]
    .venv/bin/python benchmarks/bench_startup.py --baseline /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TARGETS = {"sitewatch --version": 0.3, "sitewatch --help": 0.3, "sitewatch alerts list": 0.6}


def _seconds(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=None,
                        help="workspace for `alerts list` (default: a fresh empty one)")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout's src folder to time the same commands from")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sitewatch = str(BIN / "sitewatch")
    with tempfile.TemporaryDirectory() as tmp:
        workspace = args.workspace
        if workspace is None:
            workspace = Path(tmp) / "workspace"
            subprocess.run([sitewatch, "init", str(workspace)], check=True, stdout=subprocess.DEVNULL)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "sitewatch --version": [sitewatch, "--version"],
            "sitewatch --help": [sitewatch, "--help"],
            "sitewatch alerts list": [sitewatch, "alerts", "list", "-w", str(workspace)],
        }
        environments: dict[str, dict[str, str] | None] = dict.fromkeys(commands)
        if args.baseline is not None:
            entry = [sys.executable, "-c", "from sitewatch.app.cli import main; main()"]
            baseline_env = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
            for name in ("sitewatch --version", "sitewatch --help", "sitewatch alerts list"):
                commands[f"baseline {name}"] = entry + commands[name][1:]
                environments[f"baseline {name}"] = baseline_env
        rio = shutil.which("rio", path=str(BIN)) or shutil.which("rio")
        if rio:
            commands["rio --version"] = [rio, "--version"]
        for name, command in commands.items():  # warm the file cache and the bytecode once
            _seconds(command, environments.get(name))
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, command in commands.items():
                times[name].append(_seconds(command, environments.get(name)))
    floor = statistics.median(times["python -c pass"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        target = TARGETS.get(name)
        rows.append({"command": name, "median_s": round(median, 3), "min_s": round(min(values), 3),
                     "ratio_to_python": round(median / floor, 1), "target_s": target,
                     "meets_target": None if target is None else median <= target})
    if args.json:
        print(json.dumps({"workspace": str(args.workspace or "fresh"), "repeat": args.repeat, "rows": rows},
                         indent=1))
        return
    print(f"# {args.repeat} interleaved rounds; workspace {args.workspace or 'fresh (empty)'}")
    for row in rows:
        target = "" if row["target_s"] is None else (
            f"  target <= {row['target_s']} s: {'met' if row['meets_target'] else 'NOT met'}")
        print(f"{row['command']:33} median {row['median_s']:6.3f} s  min {row['min_s']:6.3f} s  "
              f"{row['ratio_to_python']:5.1f}x python{target}")


if __name__ == "__main__":
    main()
