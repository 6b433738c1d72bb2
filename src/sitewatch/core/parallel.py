"""Independent jobs side by side in worker processes, with their progress messages forwarded.

Sites are independent (each has its own seeded streams, its own chips and rows), so the
simulator and the monitor hand one site to each worker. Workers start with ``spawn``: no
database connection, ONNX session or thread pool of the parent is inherited half-alive. As with
any ``spawn`` pool, a script calling this needs the ``if __name__ == "__main__":`` guard; the
``sitewatch`` command has it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from queue import Queue
from typing import Any, TypeVar

Result = TypeVar("Result")

MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """The CPU count, at most :data:`MAX_DEFAULT_WORKERS` (more rarely pays for its memory)."""
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)


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
    with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context) as pool:
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
