"""Local worker processes die with their parent, on kill -9 and on SIGTERM (issue 17, item 3; issue 15,
item 3): a real parent process running jobs on a LocalCluster (``run_jobs`` with ``local:2``) is killed,
and none of its workers may live on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sitewatch.core.parallel import TERMINATED_EXIT_CODE, Scheduler, run_jobs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; prctl is Linux's")

PARENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sitewatch.core.parallel import Scheduler, run_jobs

    def work(folder, index, report):
        import os
        Path(folder, f"worker-{os.getpid()}").write_text("started")
        while True:  # a worker that would keep writing for ever
            Path(folder, f"worker-{os.getpid()}").write_text(str(time.time()))
            time.sleep(0.1)

    if __name__ == "__main__":
        sys.path.insert(0, sys.argv[2])
        from parent import work
        run_jobs(work, [(sys.argv[1], i) for i in range(4)], Scheduler(local_workers=2))
""")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped by a container's init counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    script = tmp_path / "parent.py"
    script.write_text(PARENT, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen([sys.executable, str(script), str(out), str(tmp_path)], stderr=stderr)
    deadline = time.monotonic() + 60
    while len(list(out.glob("worker-*"))) < 2:
        assert process.poll() is None, (tmp_path / "stderr.txt").read_text()
        assert time.monotonic() < deadline, "the workers did not start within 60 s"
        time.sleep(0.1)
    return process, out


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill -9", "SIGTERM"])
def test_workers_die_with_their_parent(how: signal.Signals, tmp_path: Path) -> None:
    process, out = _start(tmp_path)
    workers = {int(p.name.split("-")[1]) for p in out.glob("worker-*")}
    family = _descendants(process.pid)  # the workers, multiprocessing's resource tracker
    assert workers <= family
    process.send_signal(how)
    process.wait(timeout=30)
    assert process.returncode == (-signal.SIGKILL if how == signal.SIGKILL else TERMINATED_EXIT_CODE)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in family if _alive(pid)], "processes outlived their parent"
    written = {p: p.stat().st_mtime for p in out.glob("worker-*")}
    time.sleep(0.5)
    assert {p: p.stat().st_mtime for p in out.glob("worker-*")} == written  # nobody writes on
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def _echo(value: int, report) -> int:  # type: ignore[no-untyped-def]
    report(value)
    return value * 2


@pytest.mark.parametrize("scheduler", [Scheduler(), Scheduler(local_workers=2)],
                         ids=["in-process", "local:2"])
def test_results_arrive_in_job_order_and_messages_all_arrive(scheduler: Scheduler) -> None:
    seen: list[int] = []
    finished: list[tuple[int, int]] = []
    results = run_jobs(_echo, [(i,) for i in range(5)], scheduler, names=[f"echo-{i}" for i in range(5)],
                       on_message=seen.append, on_done=lambda index, result: finished.append((index, result)))
    assert results == [0, 2, 4, 6, 8]
    assert sorted(seen) == list(range(5))
    assert sorted(finished) == [(i, 2 * i) for i in range(5)]


def _fail(value: int, report) -> int:  # type: ignore[no-untyped-def]
    if value == 3:
        raise ValueError(f"job {value} failed")
    return value


def test_a_jobs_error_is_raised_in_the_caller() -> None:
    with pytest.raises(ValueError, match="job 3 failed"):
        run_jobs(_fail, [(i,) for i in range(4)], Scheduler(local_workers=2))


def _environment(name: str, report) -> str | None:  # type: ignore[no-untyped-def]
    return os.environ.get(name)


def test_local_workers_keep_glibcs_own_malloc_thresholds() -> None:
    """distributed's MALLOC_TRIM_THRESHOLD_ fixes glibc's mmap threshold at 128 KiB, and every chip's
    arrays were then mapped and zeroed afresh by the kernel; its thread limits stay."""
    found = run_jobs(_environment, [("MALLOC_TRIM_THRESHOLD_",), ("OMP_NUM_THREADS",)],
                     Scheduler(local_workers=2))
    assert found == [None, "1"]
