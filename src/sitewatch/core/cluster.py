"""The parts of :mod:`sitewatch.core.parallel` that run inside dask workers (importing distributed, so
kept out of the light module the CLI imports at start)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from typing import Any

from distributed import Worker, WorkerPlugin, get_worker

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; elsewhere distributed's own
    watch on the parent's pipe does it)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("worker %d: prctl(PR_SET_PDEATHSIG) failed (errno %d); it may outlive its parent",
                    os.getpid(), ctypes.get_errno())


class DieWithParent(WorkerPlugin):
    """Registered on the workers of a LocalCluster: each dies with the process that started it."""

    name = "sitewatch-die-with-parent"

    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid

    def setup(self, worker: Worker) -> None:
        die_with_parent()
        if os.getppid() != self.parent_pid:  # the parent died before the request took effect
            os._exit(1)


class Report:
    """``report(message)`` inside a task: an event on the run's topic of the scheduler's event log,
    which the client forwards to ``on_message``."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def __call__(self, message: Any) -> None:
        get_worker().log_event(self.topic, message)
