"""Load benchmark of the web API: the site timeline and the alert list under concurrent clients,
with 1,000,000 detections in the store.

    nice -n 10 .venv/bin/python benchmarks/bench_web.py                 # build (once) and measure
    .venv/bin/python benchmarks/bench_web.py --clients 50 --seconds 20 --workers 2
    .venv/bin/python benchmarks/bench_web.py --workspace /tmp/bench-web-pg \
        --store 'postgresql+psycopg://postgres@/bench?host=/tmp/pg&port=5433'   # the same over PostGIS

The workspace is built through the public Workspace API (3 reference sites, 300
observations each with real chips, 1,000,000 detections, indicators, alerts) under
``--workspace`` and reused on later runs. The server runs under uvicorn in its own
process(es) (``--workers``). The load comes from ApacheBench (``ab``, Debian package
apache2-utils) when installed: a C client, so the figures measure the server rather than
the load generator; otherwise from asyncio httpx clients in this process, which on a small
machine saturate before the server does. Either way ``--clients`` requests are kept in
flight (a closed loop, no think time). Prints p50/p95/p99 latency and requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from sitewatch.core.types import (
    Alert,
    AlertState,
    Detection,
    IndicatorValue,
    Observation,
    Scene,
)
from sitewatch.store.users import ensure_user, user_store
from sitewatch.store.workspace import Workspace

PASSWORD = "benchmark-password"
START = datetime(2017, 1, 1, 2, 0, tzinfo=UTC)
CLASSES = ("vehicle", "large_vehicle", "rail_car", "crane")
INDICATORS = ("vehicle_count", "large_vehicle_count", "rail_car_count", "changed_area")


def _chip(path: Path, epsg: int, x0: float, y0: float) -> None:
    profile = {
        "driver": "GTiff",
        "width": 64,
        "height": 64,
        "count": 3,
        "dtype": "uint8",
        "crs": f"EPSG:{epsg}",
        "transform": Affine(8.0, 0.0, x0, 0.0, -8.0, y0),
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as sink:
        sink.write(np.full((3, 64, 64), 100, dtype=np.uint8))


def build(root: Path, *, detections: int, observations_per_site: int, store: str | None = None) -> None:
    """Fill a workspace with ``detections`` detections spread over every observation; its database is
    the SQLite file, or the PostgreSQL/PostGIS database at ``store`` (a URL)."""
    rng = random.Random(7)
    with Workspace.init(root, database_url=store) as ws:
        sites = ws.sites()[:3]
        per_observation = detections // (len(sites) * observations_per_site)
        remainder = detections - per_observation * len(sites) * observations_per_site
        stored = 0
        for site_index, site in enumerate(sites):
            centre = site.geometry.centroid
            x, y = Transformer.from_crs(4326, site.utm_epsg, always_xy=True).transform(centre.x, centre.y)
            template = ws.staging_dir() / f"template-{site.id}.tif"
            _chip(template, site.utm_epsg, x - 256, y + 256)
            zones = [z.id for z in site.zones] or [None]
            alerts = []
            for index in range(observations_per_site):
                acquired = START + timedelta(days=3 * index, hours=site_index)
                staged = ws.staging_dir() / f"chip-{site.id}-{index}.tif"
                shutil.copyfile(template, staged)
                checksum = hashlib.sha256(f"{site.id}-{index}".encode()).hexdigest()
                scene = Scene(
                    id=checksum[:16],
                    uri=f"bench://{site.id}/{index}",
                    sensor="bench",
                    acquired=acquired,
                    gsd=8.0,
                    crs=f"EPSG:{site.utm_epsg}",
                    footprint=site.geometry,
                    bands=("red", "green", "blue"),
                    width=64,
                    height=64,
                    checksum=checksum,
                )
                observation = Observation(
                    id=f"{site.id}-{scene.id}",
                    site_id=site.id,
                    scene_id=scene.id,
                    acquired=acquired,
                    chip_path=f"chips/{site.id}/{site.id}-{scene.id}.tif",
                    valid_fraction=1.0,
                )
                ws.add_scene(scene, [(observation, staged)])
                count = per_observation + (remainder if site_index == 0 and index == 0 else 0)
                batch = []
                for position in range(count):
                    bx, by = x - 250 + rng.random() * 480, y - 250 + rng.random() * 480
                    batch.append(
                        Detection(
                            observation.id,
                            CLASSES[position % 4],
                            round(rng.random(), 3),
                            box(bx, by, bx + 6, by + 3),
                            zone_id=zones[position % len(zones)] if zones[0] else None,
                            detector="bench",
                        )
                    )
                ws.replace_detections(observation.id, batch)
                stored += count
                ws.replace_indicators(
                    observation.id,
                    [
                        IndicatorValue(
                            observation.id, site.id, zone, name, float(rng.randint(0, 20)), 1.0, acquired
                        )
                        for zone in zones
                        if zone
                        for name in INDICATORS
                    ],
                )
                if index % 10 == 9:
                    alerts.append(
                        Alert(
                            id=f"{site.id}-alert-{index}",
                            site_id=site.id,
                            observation_id=observation.id,
                            acquired=acquired,
                            created=acquired,
                            indicator="vehicle_count",
                            value=30.0,
                            baseline=10.0,
                            score=4.0,
                            explanation="more vehicles than usual",
                            zone_id=zones[0],
                            p_value=0.01,
                        )
                    )
            template.unlink()
            ws.upsert_alerts(alerts)
            for number, alert in enumerate(alerts):
                if number % 3 == 0:
                    ws.set_alert_state(alert.id, AlertState.FALSE_ALARM, who="bench",
                                       comment="benchmark verdict: shadows read as vehicles")
            print(
                f"  {site.id}: {observations_per_site} observations, {stored} detections so far", flush=True
            )
        ensure_user(ws, "bench", PASSWORD, "viewer")
    print(f"built {root} with {stored} detections", flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _client(
    client: httpx.AsyncClient, urls: list[str], stop: float, latencies: list[float], errors: list[int]
) -> None:
    rng = random.Random(id(latencies) ^ len(urls))
    while time.perf_counter() < stop:
        url = rng.choice(urls)
        started = time.perf_counter()
        response = await client.get(url)
        await response.aread()
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            errors.append(response.status_code)


async def measure(base: str, token: str, urls: list[str], clients: int, seconds: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        warm: list[float] = []
        await asyncio.gather(*(_client(client, urls, time.perf_counter() + 1.0, warm, []) for _ in range(4)))
        latencies: list[float] = []
        errors: list[int] = []
        started = time.perf_counter()
        stop = started + seconds
        await asyncio.gather(*(_client(client, urls, stop, latencies, errors) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "requests": len(ordered),
        "errors": len(errors),
        "rps": len(ordered) / elapsed,
        "p50_ms": percentile(0.50),
        "p95_ms": percentile(0.95),
        "p99_ms": percentile(0.99),
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


def measure_ab(base: str, token: str, url: str, clients: int, seconds: int) -> dict[str, float]:
    """ApacheBench with keep-alive and gzip, as a browser would ask; percentiles are whole ms."""
    output = subprocess.run(
        [
            "ab",
            "-q",
            "-k",
            "-c",
            str(clients),
            "-t",
            str(seconds),
            "-n",
            "10000000",
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "Accept-Encoding: gzip",
            base + url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, float] = {"errors": 0.0}
    for line in output.splitlines():
        label, _, value = line.partition(":")
        if label == "Complete requests":
            found["requests"] = float(value)
        elif label in ("Failed requests", "Non-2xx responses"):
            found["errors"] += float(value)
        elif label == "Requests per second":
            found["rps"] = float(value.split()[0])
        elif line.strip().startswith(("50%", "95%", "99%")):
            percent, milliseconds = line.split()[:2]
            found[f"p{percent.rstrip('%')}_ms"] = float(milliseconds)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/sitewatch-bench-web"))
    parser.add_argument("--detections", type=int, default=1_000_000)
    parser.add_argument("--observations-per-site", type=int, default=300)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="build the workspace on this PostgreSQL/PostGIS database (postgresql+psycopg://...; an empty "
        "database) instead of the SQLite file; use a --workspace folder of its own",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "ab", "httpx"),
        default="auto",
        help="load generator: ab when installed (auto), or asyncio httpx",
    )
    args = parser.parse_args()

    if args.rebuild and args.workspace.exists():
        shutil.rmtree(args.workspace)
    if not (args.workspace / "sitewatch.toml").exists():
        started = time.perf_counter()
        build(args.workspace, detections=args.detections, observations_per_site=args.observations_per_site,
              store=args.store)
        print(f"build took {time.perf_counter() - started:.0f} s", flush=True)
    with Workspace.open(args.workspace) as ws:
        token = user_store(ws).issue_token("bench", "benchmark")
        site_ids = [s.id for s in ws.sites()][:3]
        stored = len(ws.detections(site_id=site_ids[0]))
        print(f"workspace {args.workspace}: sites {site_ids}; {stored} detections at {site_ids[0]}")

    port = _free_port()
    env = {**os.environ, "SITEWATCH_WORKSPACE": str(args.workspace)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "sitewatch.app.web.server:app_from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        first = site_ids[0]
        observation = f"{first}-{hashlib.sha256(f'{first}-150'.encode()).hexdigest()[:16]}"
        routes = {
            "site timeline": [f"/api/sites/{s}/timeline" for s in site_ids],
            "alert list": ["/api/alerts?limit=50", *[f"/api/alerts?site={s}&limit=50" for s in site_ids]],
            "detections page": [f"/api/detections?observation={observation}&limit=100"],
        }
        use_ab = args.client == "ab" or (args.client == "auto" and shutil.which("ab") is not None)
        results = {}
        for name, urls in routes.items():
            if use_ab:  # one URL per run: the first site's (333,400 detections), or all alerts
                result = measure_ab(base, token, urls[0], args.clients, args.seconds)
            else:
                result = asyncio.run(measure(base, token, urls, args.clients, args.seconds))
            results[name] = result
            print(
                f"{name:16s} {args.clients} clients: p50 {result['p50_ms']:.1f} ms, "
                f"p95 {result['p95_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, {result['rps']:.0f} req/s, "
                f"{result['requests']:.0f} requests, {result['errors']:.0f} errors",
                flush=True,
            )
        print(
            f"client: {'ab' if use_ab else 'httpx'}; load average after the run: {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs"
        )
        print(
            json.dumps(
                {
                    "clients": args.clients,
                    "workers": args.workers,
                    "cpus": os.cpu_count(),
                    "client": "ab" if use_ab else "httpx",
                    "results": results,
                },
                indent=1,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
