"""Independent jobs in-process or as dask.distributed tasks, with their progress messages forwarded.

Sites are independent (each has its own seeded streams, its own chips and rows), and so are the
scenes of an ingest, so the monitor, ingest and the simulator hand one of them to each job. Where
the jobs run is a :class:`Scheduler`:

- nothing given: in this process, one after the other (``make demo`` needs no cluster);
- ``local[:N]``: a ``distributed.LocalCluster`` of N worker processes (one thread each) started for
  the run and closed after it (``--workers/-j N`` is the shorthand for ``local:N``);
- ``tcp://HOST:PORT``: a running cluster (``dask scheduler`` and ``dask worker`` processes), which
  the run connects to as a ``distributed.Client`` and leaves running.

A job is ``function(*job, report)``: ``function`` is importable (module level) and opens what it
needs by itself (the store by URL, chips from the shared workspace folder), since on a cluster it
runs on another machine. ``report(message)`` sends a small message (str, numbers, lists of them) to
``on_message`` in this process as it arrives, through the scheduler's event log
(``log_event``/``subscribe_topic``). Each task is named after what it works on (``monitor-<site>-…``),
so the Dask dashboard shows which site or scene a worker is busy with.

A worker lost mid-task (killed, its machine gone) has its task run again on another: the callers'
writes are short transactions (per scene, per observation) that replace what an earlier run wrote, so
that leaves no half-written rows nor duplicates.

Local workers die with their parent: on Linux each worker process asks the kernel for SIGKILL when the
process that started it dies (``prctl(PR_SET_PDEATHSIG)``), and distributed's own watch on the parent
does the same elsewhere, so a ``kill -9`` of the CLI leaves no worker writing on. While jobs run,
SIGTERM closes the cluster first and then exits with 143; on a running cluster it cancels this run's
tasks (a worker finishes the one in hand: Python threads cannot be interrupted, and its writes are
whole transactions either way).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import queue
import re
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sitewatch.core.errors import ValidationError

if TYPE_CHECKING:
    from distributed import Client

Result = TypeVar("Result")
log = logging.getLogger(__name__)

SCHEDULER_ENV = "SITEWATCH_SCHEDULER"
"""Environment variable naming the scheduler when no ``--scheduler``/``-j`` is given."""
MAX_DEFAULT_WORKERS = 4
TERMINATED_EXIT_CODE = 128 + signal.SIGTERM
_LOCAL = re.compile(r"local(?::(\d+))?")


def default_workers() -> int:
    """The CPU count, at most :data:`MAX_DEFAULT_WORKERS` (more rarely pays for its memory)."""
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class Scheduler:
    """Where independent jobs run (see the module docstring)."""

    address: str | None = None
    """``tcp://HOST:PORT`` (or ``tls://``) of a running dask scheduler; None: not a running cluster."""
    local_workers: int = 0
    """Worker processes of a LocalCluster started for the run; 0: none (in-process or ``address``)."""

    def __post_init__(self) -> None:
        if self.address is not None and self.local_workers:
            raise ValidationError("Scheduler", "address", "give a running cluster's address or a number of "
                                  "local workers, not both")
        if self.local_workers < 0:
            raise ValidationError("Scheduler", "local_workers", f"{self.local_workers} must be >= 0")

    @property
    def in_process(self) -> bool:
        return self.address is None and self.local_workers == 0

    @classmethod
    def parse(cls, text: str) -> Scheduler:
        """``local``, ``local:N``, ``tcp://HOST:PORT``/``tls://…``, or ``in-process``."""
        value = text.strip()
        if value in ("", "in-process", "none"):
            return cls()
        if match := _LOCAL.fullmatch(value):
            count = int(match.group(1)) if match.group(1) else default_workers()
            if not 1 <= count <= 256:
                raise ValidationError("--scheduler", value, "local:N needs 1 <= N <= 256 worker processes")
            return cls() if count == 1 else cls(local_workers=count)
        if re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s/]+", value):
            return cls(address=value)
        raise ValidationError("--scheduler", value, "give local, local:N (a LocalCluster of N processes) "
                              "or tcp://HOST:PORT of a running `dask scheduler` (also read from "
                              f"{SCHEDULER_ENV})")

    def __str__(self) -> str:
        if self.address is not None:
            return self.address
        return f"local:{self.local_workers}" if self.local_workers else "in-process"


def resolve_scheduler(option: str | None = None, workers: int | None = None,
                      environ: Mapping[str, str] = os.environ) -> Scheduler:
    """The scheduler of a CLI run: ``--scheduler``, else ``-j N`` (``local:N``), else
    ``SITEWATCH_SCHEDULER``, else in-process."""
    if option is not None and workers is not None:
        raise ValidationError("--workers", str(workers),
                              "-j N is short for --scheduler local:N; give one of them")
    if option is not None:
        return Scheduler.parse(option)
    if workers is not None:
        return Scheduler.parse(f"local:{workers}")
    return Scheduler.parse(environ.get(SCHEDULER_ENV, ""))


class Terminated(SystemExit):
    """SIGTERM arrived while jobs ran: the workers were stopped, and the process exits with 143."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(TERMINATED_EXIT_CODE)


def _task_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


@contextlib.contextmanager
def _client(scheduler: Scheduler) -> Iterator[Client]:
    from distributed import Client, LocalCluster

    from sitewatch.core.cluster import DieWithParent

    if logging.getLogger().getEffectiveLevel() > logging.INFO:  # distributed logs its start-up at INFO
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler.address is not None:
        with Client(scheduler.address, timeout="20s") as client:
            yield client
        return
    import dask

    # distributed starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap
    # threshold at 128 KiB: every array of a chip is then mapped afresh and its pages zeroed by the
    # kernel (a monitoring pass on two workers spent 0.3 CPU-s per observation in the kernel, against
    # 0.05 in one process). The workers keep distributed's thread limits and glibc's own thresholds.
    environ = {key: value for key, value in dask.config.get("distributed.nanny.pre-spawn-environ").items()
               if key != "MALLOC_TRIM_THRESHOLD_"}
    with (dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
          LocalCluster(n_workers=scheduler.local_workers, threads_per_worker=1, processes=True,
                       host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster,
          Client(cluster) as client):
        client.register_plugin(DieWithParent(os.getpid()))
        if importlib.util.find_spec("bokeh") is not None:  # the dashboard needs it (the `cluster` extra)
            log.info("dask dashboard of this run: %s", client.dashboard_link)
        yield client


def run_jobs(
    function: Callable[..., Result],
    jobs: Sequence[tuple[Any, ...]],
    scheduler: Scheduler,
    *,
    names: Sequence[str] | None = None,
    on_message: Callable[[Any], None] | None = None,
    on_done: Callable[[int, Result], None] | None = None,
) -> list[Result]:
    """``[function(*job, report) for job in jobs]`` where ``scheduler`` says, results in job order.

    ``names`` (one per job, e.g. ``monitor-sohae``) name the tasks on the dashboard. A job's
    exception is raised here (after the other jobs were cancelled). Messages passed to ``report``
    arrive at ``on_message`` in this process; on a cluster they travel as msgpack, so tuples arrive
    as tuples again but only plain values (str, numbers, lists) keep their type. ``on_done(index,
    result)`` is called in this process as each job finishes, in the order they finish.
    """
    def forward(message: Any) -> None:
        if on_message is not None:
            on_message(tuple(message) if isinstance(message, list) else message)

    if scheduler.local_workers and len(jobs) < 2:  # starting a cluster for one job only costs time
        scheduler = Scheduler()
    elif scheduler.local_workers > len(jobs):
        scheduler = Scheduler(local_workers=len(jobs))
    if scheduler.in_process or not jobs:
        results = []
        for index, job in enumerate(jobs):
            results.append(function(*job, forward))
            if on_done is not None:
                on_done(index, results[-1])
        return results
    if names is not None and len(names) != len(jobs):
        raise ValueError(f"{len(names)} names for {len(jobs)} jobs")
    from distributed import wait

    from sitewatch.core.cluster import Report

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    topic = f"sitewatch-{uuid.uuid4().hex[:12]}"
    arrived: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def drain() -> None:
        while not arrived.empty():
            forward(arrived.get())

    try:
        with _client(scheduler) as client:
            client.subscribe_topic(topic, lambda event: arrived.put(event[1]))
            run = uuid.uuid4().hex[:8]
            keys = [f"{_task_name(name)}-{run}" for name in names] if names is not None else \
                [f"job-{index}-{run}" for index in range(len(jobs))]
            futures = [client.submit(function, *job, Report(topic), key=key, pure=False)
                       for job, key in zip(jobs, keys, strict=True)]
            try:
                remaining = list(futures)
                while remaining:
                    with contextlib.suppress(TimeoutError):  # a pause to forward messages, then on
                        wait(remaining, timeout=0.2, return_when="FIRST_COMPLETED")
                    drain()
                    finished = [future for future in remaining if future.done()]
                    for future in finished:
                        result = future.result()  # raises the job's exception here
                        if on_done is not None:
                            on_done(futures.index(future), result)
                    remaining = [future for future in remaining if future not in finished]
                results = client.gather(futures)
                drain()
                return list(results)
            except BaseException:  # SIGTERM, Ctrl-C, a job's error: no task goes on alone
                client.cancel(futures, force=True)
                raise
            finally:
                client.unsubscribe_topic(topic)
    finally:
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
