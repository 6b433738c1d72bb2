"""Independent jobs side by side in worker processes, with their progress messages forwarded.

Sites are independent (each has its own seeded streams, its own chips and rows), so the
simulator and the monitor hand one site to each worker. Workers start with ``spawn``: no
database connection, ONNX session or thread pool of the parent is inherited half-alive. As with
any ``spawn`` pool, a script calling this needs the ``if __name__ == "__main__":`` guard; the
``sitewatch`` command has it.

Workers die with their parent. On Linux each worker (and the manager process that relays progress)
asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a ``kill -9`` of
the parent leaves no orphan writing on; while the pool runs, SIGTERM to the parent stops the
workers first and then exits with 143. The store's writes are one transaction each, so a worker
killed mid-write leaves nothing half-done, and the next run redoes its site.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing.managers import SyncManager
from queue import Queue
from typing import Any, TypeVar

Result = TypeVar("Result")
log = logging.getLogger(__name__)

MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """The CPU count, at most :data:`MAX_DEFAULT_WORKERS` (more rarely pays for its memory)."""
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


class Terminated(SystemExit):
    """SIGTERM arrived while workers ran: they were stopped, and the process exits with 143."""


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: on Linux, have the kernel SIGKILL this process when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("worker %d: prctl(PR_SET_PDEATHSIG) failed (errno %d); it may outlive its parent",
                        os.getpid(), ctypes.get_errno())
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _stop_children(keep: set[int]) -> None:
    """Terminate the worker and manager processes this pool started (children not in ``keep``, the
    pids of those there before), and wait briefly for them."""
    children = [child for child in multiprocessing.active_children() if child.pid not in keep]
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout=5)
        if child.is_alive():
            child.kill()


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(TERMINATED_EXIT_CODE)


def _call(function: Callable[..., Result], job: tuple[Any, ...], queue: Queue[Any]) -> Result:
    return function(*job, queue.put)


def map_in_processes(
    function: Callable[..., Result],
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    on_message: Callable[[Any], None] | None = None,
) -> list[Result]:
    """``[function(*job, report) for job in jobs]`` in ``workers`` processes, results in job order.

    ``function`` must be importable (module level); its last argument ``report(message)`` sends
    a picklable message to ``on_message``, called in this process as messages arrive. A worker's
    exception is raised here.
    """
    context = multiprocessing.get_context("spawn")
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    earlier = {child.pid for child in multiprocessing.active_children() if child.pid is not None}
    try:
        manager = SyncManager(ctx=context)
        manager.start(_die_with_parent, (os.getpid(),))
        with manager, ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent,
                                          initargs=(os.getpid(),)) as pool:
            try:
                queue: Queue[Any] = manager.Queue()
                futures = [pool.submit(_call, function, job, queue) for job in jobs]
                remaining = set(futures)
                while True:
                    while not queue.empty():
                        message = queue.get()
                        if on_message is not None:
                            on_message(message)
                    if not remaining:
                        break
                    _, remaining = wait(remaining, timeout=0.2, return_when=FIRST_COMPLETED)
                return [future.result() for future in futures]
            except BaseException:  # SIGTERM, Ctrl-C, a worker's error: no worker goes on alone
                pool.shutdown(wait=False, cancel_futures=True)
                _stop_children(earlier)
                raise
    finally:
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
