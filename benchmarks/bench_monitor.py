"""Benchmark: scoring sites × observations × zones at the indicator level.

    .venv/bin/python benchmarks/bench_monitor.py                  # 1,000 × 200 × 5, then scaling
    .venv/bin/python benchmarks/bench_monitor.py --sites 200 --quick

Each zone carries ``--indicators`` series (default 3: changed area and two counts), so the
default run scores 1,000 sites × 200 observations × 15 series with the real engine
(baselines, conformal p-values, site combination, CUSUM). Seeded synthetic values with 5 %
not observed; the timing excludes generating them. Then each factor is halved and
doubled alone to show how the time grows with it.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sitewatch.core.indicators import CHANGED_AREA, count_indicator, indicator_spec
from sitewatch.monitor.engine import EngineConfig, score_sites


def synthetic(sites: int, observations: int, zones: int, indicators: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    names = [CHANGED_AREA.name, *(count_indicator(c) for c in ("vehicle", "rail car", "crane"))]
    specs = [indicator_spec(names[i % len(names)]) for _ in range(zones) for i in range(indicators)]
    values = np.empty((sites, len(specs), observations))
    for k, spec in enumerate(specs):
        if spec.kind == "count":
            values[:, k] = rng.poisson(5.0, (sites, observations))
        else:
            values[:, k] = rng.gamma(2.0, 200.0, (sites, observations))
    values[rng.uniform(size=values.shape) < 0.05] = np.nan
    quality = rng.uniform(0.5, 1.0, values.shape)
    days = np.cumsum(rng.integers(1, 11, (sites, observations)), axis=1).astype(float)
    return values, quality, days, specs


def timed(sites: int, observations: int, zones: int, indicators: int, repeat: int) -> float:
    values, quality, days, specs = synthetic(sites, observations, zones, indicators)
    config = EngineConfig(false_alarm_rate=0.01)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        score_sites(values, quality, days, specs, config=config)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=200)
    parser.add_argument("--zones", type=int, default=5)
    parser.add_argument("--indicators", type=int, default=3, help="series per zone")
    parser.add_argument("--repeat", type=int, default=1, help="runs per point; the best is reported")
    parser.add_argument("--quick", action="store_true", help="skip the scaling runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base = {"sites": args.sites, "observations": args.observations, "zones": args.zones}
    seconds = timed(args.sites, args.observations, args.zones, args.indicators, args.repeat)
    results: dict[str, object] = {
        "base": {**base, "indicators_per_zone": args.indicators, "seconds": seconds}
    }
    base_seconds = seconds
    if not args.json:
        print(f"{args.sites} sites x {args.observations} observations x {args.zones} zones x "
              f"{args.indicators} indicators: {base_seconds:.2f} s")
    if not args.quick:
        scaling = []
        for factor in ("sites", "observations", "zones"):
            for multiplier in (0.5, 2.0):
                point = dict(base)
                point[factor] = max(1, round(base[factor] * multiplier))
                seconds = timed(point["sites"], point["observations"], point["zones"], args.indicators,
                                args.repeat)
                ratio = seconds / base_seconds
                scaling.append({"factor": factor, "multiplier": multiplier, **point, "seconds": seconds,
                                "time_ratio": ratio})
                if not args.json:
                    print(f"  {factor} x{multiplier:g}: {seconds:.2f} s (time x{ratio:.2f})")
        results["scaling"] = scaling
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
