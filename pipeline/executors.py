"""Where a sweep's cells run: here one after another, in N worker processes here, or on a Ray cluster.

    snnpipe run RECIPE                          # `Sequential`: this process, one cell after another
    snnpipe run RECIPE --workers 4              # `LocalWorkers`: 4 processes, one thread each
    snnpipe run RECIPE --executor ray [--address HOST:PORT] [--workers N]   # `RayCells`

Every executor runs each cell as `sweep.attempt(job)` and yields its result as it ends, so a cell
trains, resumes and writes its files the same way whatever runs it, and at one thread per cell the
numbers are those of a sequential run at ``--threads 1``. A worker that dies (killed, out of
memory) is that cell's failure, one line; the other cells finish, and the next ``--resume`` of the
run continues the cell from its last checkpoint.

Ray (``pip install 'snnpipe[ray]'``): without ``--address`` a local Ray of ``--workers`` CPUs
(default: every core) starts for the run and stops with it; with one, the cells go to that cluster,
whose every node must have snnpipe installed and see the run folder at the same path (a shared file
system), as the cells write there. A cell asks Ray for as many CPUs as it has threads.
"""

from __future__ import annotations

import collections
import multiprocessing
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import replace
from multiprocessing import connection
from typing import Iterator

from snnpipe.errors import SnnpipeError, StopRequested
from snnpipe.pipeline.sweep import CellJob, CellResult, attempt

#: Seconds to wait for a Ray head's port to answer before refusing ``--address``.
REACH_TIMEOUT_S = 10.0
#: What the line of a cell whose worker died says to do.
RESUME_HINT = "resume the run (--resume) to continue it from its last checkpoint"


class ExecutorError(SnnpipeError):
    """An executor that cannot start: the message says what to install or fix."""


class Sequential:
    """Every cell in this process, one after another (the thread count as the process's)."""

    def map(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult, int]]:
        for i, job in enumerate(jobs):
            yield i, attempt(job), 0

    def close(self) -> None:
        pass


def _work(job: CellJob, send: connection.Connection) -> None:
    """A worker process: one cell, its result sent back (a bug's traceback on stderr, and its line)."""
    from tqdm import tqdm

    # tqdm's default lock is a multiprocessing semaphore: a killed worker would leave it to this
    # machine's resource tracker, which warns at the run's end; the worker's bars are off anyway
    tqdm.set_lock(threading.RLock())
    try:
        result = attempt(job)
    except StopRequested as err:  # the run stopped it (SIGTERM) or Ctrl-C: its checkpoint is saved, no traceback
        sys.exit(err.exit_code)
    except Exception as err:  # a bug: the parent shows its line among the cells, its traceback is here
        traceback.print_exc()
        result = CellResult.failure(job.cell, f"{type(err).__name__}: {err}")
    send.send(result)


def _died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


class LocalWorkers:
    """Up to ``workers`` cells at once, each in a fresh process of its own (spawned, so no state of
    this one leaks in) with ``threads`` threads. A stop of this process (SIGTERM, Ctrl-C) stops the
    workers with SIGTERM: each saves its checkpoint, as a stopped training does."""

    def __init__(self, workers: int, threads: int = 1) -> None:
        self.workers, self.threads = workers, threads

    def map(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult, int]]:
        context = multiprocessing.get_context("spawn")
        waiting = collections.deque(enumerate(jobs))
        live: dict[int, tuple[int, CellJob, multiprocessing.Process, connection.Connection, float]] = {}
        try:
            while waiting or live:
                while waiting and len(live) < self.workers:
                    i, job = waiting.popleft()
                    receive, send = context.Pipe(duplex=False)
                    worker = context.Process(target=_work, args=(replace(job, threads=self.threads, progress=False), send),
                                             name=f"snnpipe cell {job.cell.name}")
                    worker.start()
                    send.close()
                    live[worker.sentinel] = (i, job, worker, receive, time.perf_counter())
                for sentinel in connection.wait(list(live)):
                    i, job, worker, receive, started = live.pop(sentinel)
                    worker.join()
                    try:
                        result = receive.recv()
                    except EOFError:  # it died before sending
                        result = CellResult.failure(job.cell, f"its worker died ({_died(worker.exitcode)}); {RESUME_HINT}",
                                                    time.perf_counter() - started)
                    receive.close()
                    yield i, result, len(live)
        finally:
            for _, _, worker, _, _ in live.values():
                worker.terminate()
            for _, _, worker, receive, _ in live.values():
                worker.join()
                receive.close()

    def close(self) -> None:
        pass


class RayCells:
    """Cells as Ray tasks of ``threads`` CPUs each, at most ``workers`` in flight (None: as many as
    the cluster takes), on the cluster at ``address`` or on a local Ray started here."""

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError("--executor ray needs Ray, which is not installed: pip install 'snnpipe[ray]'") from None
        self.ray, self.address, self.workers, self.threads = ray, address, workers, threads
        self.started = False

    def _start(self) -> None:
        if self.started:
            return
        if self.address:
            _check_reachable(self.address)
        options = {"address": self.address} if self.address else {"num_cpus": self.workers}
        try:
            self.ray.init(**options, include_dashboard=False, log_to_driver=False,
                          runtime_env={"env_vars": {"OMP_WAIT_POLICY": "passive"}})
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise ExecutorError(f"cannot start {where} ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                                "check --address (HOST:PORT of the head, 'ray start --head' prints it)") from None
        self.started = True

    def map(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult, int]]:
        if not jobs:  # every cell kept from before: no Ray to start
            return
        self._start()
        ray = self.ray
        task = ray.remote(num_cpus=self.threads, max_retries=0)(attempt)
        waiting = collections.deque(enumerate(jobs))
        running: dict = {}
        try:
            while waiting or running:
                while waiting and (self.workers is None or len(running) < self.workers):
                    i, job = waiting.popleft()
                    running[task.remote(replace(job, threads=self.threads, progress=False))] = (i, job, time.perf_counter())
                (ref,), _ = ray.wait(list(running), num_returns=1)
                i, job, started = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:
                    why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    result = CellResult.failure(job.cell, f"its Ray task failed ({type(err).__name__}: {why}); "
                                                f"{RESUME_HINT}", time.perf_counter() - started)
                yield i, result, len(running)
        finally:
            for ref in running:
                ray.cancel(ref)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


def _check_reachable(address: str) -> None:
    """Refuse a ``HOST:PORT`` nothing listens on, in one line: Ray itself retries it for minutes."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or "://" in address:
        return  # another form Ray takes (ray://..., auto): left to Ray
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as err:
        raise ExecutorError(f"cannot reach the Ray cluster at {address} ({err.strerror or err}); start it with "
                            "'ray start --head' there, or give the HOST:PORT it printed as --address") from None


def make_executor(name: str, workers: int | None, address: str | None, threads: int | None) -> Sequential | LocalWorkers | RayCells:
    """The executor the CLI's ``--executor``, ``--workers``, ``--address`` and ``--threads`` name;
    ``threads`` is per cell (default 1 where cells run beside each other)."""
    if workers is not None and workers < 1:
        raise ExecutorError(f"--workers {workers} is out of range: at least 1")
    if name == "ray":
        return RayCells(address, workers, threads or 1)
    if address is not None:
        raise ExecutorError("--address names a Ray cluster: give it with --executor ray")
    if not workers or workers == 1:
        return Sequential()
    return LocalWorkers(workers, threads or 1)

