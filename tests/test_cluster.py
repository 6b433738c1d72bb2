"""The monitor and ingest as dask tasks on real clusters on loopback (issue 15, item 3): a `dask scheduler`
and two `dask worker` processes started here, and a LocalCluster; the alerts equal the in-process run's,
and a worker killed with -9 mid-run leaves the run to finish on the other with no duplicate rows."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitewatch.core.errors import ValidationError
from sitewatch.core.parallel import SCHEDULER_ENV, Scheduler, resolve_scheduler
from sitewatch.store import Workspace
from test_monitor_pipeline import small_site, write_images

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; loopback cluster")
DASK = Path(sys.executable).with_name("dask")
SITEWATCH = Path(sys.executable).with_name("sitewatch")
SITES = ("smallsite", "twin")
IMAGES = 24
MONITOR = ("--json", "-a", "0.1", "--no-objects")  # detection off: the slow-build alerts come from change


def _sitewatch(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([str(SITEWATCH), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish(process: subprocess.Popen[str], timeout: float = 120) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace of two small sites, 24 images each (a surge in the last but one), ingested with two
    LocalCluster workers."""
    folder = tmp_path_factory.mktemp("cluster")
    images = write_images(folder / "images", IMAGES, seed=3, surges=(IMAGES - 2,))
    root = folder / "ingested"
    sites = [dataclasses.replace(small_site(), id=name, name=name) for name in SITES]
    Workspace.init(root, sites=sites).close()
    report = _finish(_sitewatch("ingest", "-w", str(root), "--scheduler", "local:2", "--json",
                                str(folder / "images")))
    assert report["ingested"] == IMAGES and not report["failed"], report
    with Workspace.open(root) as ws:
        assert len(ws.observations()) == IMAGES * len(SITES)
        assert {o.site_id for o in ws.observations()} == set(SITES)
    assert images
    return root


def _copy(ingested: Path, to: Path) -> Path:
    shutil.copytree(ingested, to, ignore=shutil.ignore_patterns(".sitewatch.lock"))
    return to


def _alerts(report: dict) -> list[tuple[str, str, float]]:
    return sorted((a["id"], a["indicator"], round(a["p_value"], 12))
                  for site in report["sites"] for a in site["new_alerts"])


def _rows(root: Path) -> tuple[int, int, dict[tuple[str, str | None, str], float | None]]:
    """Indicator and alert rows, and every indicator's value (equal runs compute equal values)."""
    with Workspace.open(root) as ws:
        indicators = [v for site in SITES for v in ws.indicators(site)]
        values = {(v.observation_id, v.zone_id, v.name): v.value for v in indicators}
        return len(indicators), len(ws.alerts()), values


@pytest.fixture(scope="module")
def in_process(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = _copy(ingested, tmp_path_factory.mktemp("serial") / "ws")
    return _finish(_sitewatch("monitor", "-w", str(root), *MONITOR)), root


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class LoopbackCluster:
    address: str
    workers: list[subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    """`dask scheduler` and two `dask worker` processes (one thread each, no nanny: a kill -9 is final),
    on 127.0.0.1 only, without dashboards."""
    logs = tmp_path_factory.mktemp("dask-logs")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with open(logs / "scheduler.log", "wb") as log:
            processes.append(subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port",
                                               str(port), "--no-dashboard"], stdout=log, stderr=log))
        for index in range(2):
            with open(logs / f"worker-{index}.log", "wb") as log:
                processes.append(subprocess.Popen(
                    [str(DASK), "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                     "--no-dashboard", "--name", f"w{index}"], stdout=log, stderr=log))
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
        yield LoopbackCluster(address, processes[1:])
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_scheduler_choices_parse_and_refuse() -> None:
    assert Scheduler.parse("local:3") == Scheduler(local_workers=3)
    assert Scheduler.parse("local:1").in_process
    assert Scheduler.parse("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    assert resolve_scheduler(None, 2) == Scheduler(local_workers=2)
    assert resolve_scheduler(None, None, {SCHEDULER_ENV: "tcp://h:1"}) == Scheduler(address="tcp://h:1")
    assert resolve_scheduler("local:2", None, {SCHEDULER_ENV: "tcp://h:1"}) == Scheduler(local_workers=2)
    assert resolve_scheduler(None, None, {}).in_process
    with pytest.raises(ValidationError, match="local:N"):
        Scheduler.parse("http://example.org")
    with pytest.raises(ValidationError, match="one of them"):
        resolve_scheduler("local:2", 2)


def test_a_task_opens_the_shared_folder_and_refuses_another_store_or_an_object_store(tmp_path: Path) -> None:
    from sitewatch.core.errors import StoreError, UnsupportedInputError
    from sitewatch.pipeline.tasks import WorkspaceTarget

    with Workspace.init(tmp_path / "ws", sites=[small_site()]) as ws:
        target = WorkspaceTarget.of(ws)
    with dataclasses.replace(target, folder=(tmp_path / "ws").as_uri()).open() as opened:  # file:// URL
        assert [site.id for site in opened.sites()] == ["smallsite"]
    with pytest.raises(StoreError, match="same database_url"):
        dataclasses.replace(target, store_url="postgresql+psycopg://sitewatch@db/other").open()
    with pytest.raises(UnsupportedInputError, match="/vsis3/"):
        dataclasses.replace(target, folder="s3://bucket/ws").local_folder()


def test_local_cluster_gives_the_same_alerts_as_in_process(ingested: Path, in_process: tuple[dict, Path],
                                                           tmp_path: Path) -> None:
    root = _copy(ingested, tmp_path / "ws")
    report = _finish(_sitewatch("monitor", "-w", str(root), *MONITOR, "--scheduler", "local:2"))
    serial, serial_root = in_process
    assert _alerts(report) == _alerts(serial) and _alerts(serial)
    assert _rows(root) == _rows(serial_root)


def test_running_cluster_gives_the_same_alerts_and_survives_a_killed_worker(
        ingested: Path, in_process: tuple[dict, Path], cluster: LoopbackCluster, tmp_path: Path) -> None:
    root = _copy(ingested, tmp_path / "ws")
    env = {**os.environ, SCHEDULER_ENV: cluster.address}  # the variable, not the option, names the cluster
    monitor = _sitewatch("monitor", "-w", str(root), *MONITOR, env=env)
    try:
        report = _kill_a_busy_worker_then_finish(monitor, cluster)
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.communicate()
    serial, serial_root = in_process
    assert _alerts(report) == _alerts(serial)
    assert _rows(root) == _rows(serial_root)  # the task run again wrote no duplicate indicators or alerts
    assert all(site["problem"] is None and not site["flagged"] for site in report["sites"])


def _kill_a_busy_worker_then_finish(monitor: subprocess.Popen[str], cluster: LoopbackCluster) -> dict:
    from distributed import Client

    with Client(cluster.address, timeout="30s") as client:
        deadline = time.monotonic() + 60
        busy: list[str] = []
        while not busy:  # a worker with a monitor task in hand
            assert monitor.poll() is None, monitor.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no monitor task reached a worker within 60 s"
            busy = [worker for worker, keys in client.processing().items()
                    if any(str(key).startswith("monitor-") for key in keys)]
            time.sleep(0.05)
        time.sleep(0.5)  # into the task: it has opened the store and is computing
        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
    victim = next(worker for worker in cluster.workers if worker.pid == pid)
    assert monitor.poll() is None  # the run is still going
    os.kill(pid, signal.SIGKILL)
    victim.wait(timeout=10)
    return _finish(monitor)
