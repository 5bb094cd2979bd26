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

GPUs: a cell whose ``device`` is ``cuda``, or ``auto`` where there is a GPU, takes one GPU of its own
(`takes_gpu`). On local workers, worker slot k of ``--workers N`` (the k-th of the N cells running at
once; a cell that ends frees its slot for the next) is pinned to GPU k mod G of the G this process
sees (`visible_gpus`), by ``CUDA_VISIBLE_DEVICES`` in its process, so ``--workers 8`` on 4 GPUs runs
two cells on each; inside the worker that GPU is ``cuda:0``. On Ray, such a cell asks for
``num_gpus=1`` where the cluster has GPUs, and Ray pins it to the GPU it gives it the same way. A cell
on ``cpu``, or on ``cuda:N`` (a GPU it names itself), is left as it is: it takes no GPU (its slot's
stays idle meanwhile) and its worker sees what this process sees. `Sequential` pins nothing (one cell at a time, on ``cuda:0``).
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import replace
from multiprocessing import connection
from typing import Callable, Iterator, NamedTuple

from snnpipe.errors import SnnpipeError, StopRequested
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.sweep import CellJob, CellResult, attempt

#: Seconds to wait for a Ray head's port to answer before refusing ``--address``.
REACH_TIMEOUT_S = 10.0
#: What the line of a cell whose worker died says to do.
RESUME_HINT = "resume the run (--resume) to continue it from its last checkpoint"


class ExecutorError(SnnpipeError):
    """An executor that cannot start: the message says what to install or fix."""


def visible_gpus() -> list[str]:
    """The CUDA devices this process sees, as a worker's ``CUDA_VISIBLE_DEVICES`` names them: the
    entries of this process's own ``CUDA_VISIBLE_DEVICES`` where it has one (a worker gets one of
    the GPUs this process was given), else ``0`` to ``count - 1``; none without CUDA."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    given = [name.strip() for name in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if name.strip()]
    return given[:count] if given else [str(i) for i in range(count)]


def takes_gpu(config: TrainConfig, gpus: int) -> bool:
    """Whether a cell takes a GPU of its own where there are ``gpus``: on ``cuda`` or ``auto``
    (module docstring). Without GPUs none does: a cell on ``cuda`` then fails in one line, as
    training does (`runtime.resolve_device`), instead of waiting for a GPU that never comes."""
    return gpus > 0 and config.device in ("cuda", "auto")


class Sequential:
    """Every cell in this process, one after another (the thread count as the process's)."""

    def map(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult, int]]:
        for i, job in enumerate(jobs):
            yield i, attempt(job), 0

    def close(self) -> None:
        pass


def _work(job: CellJob, send: connection.Connection, env: dict[str, str],
          run: Callable[[CellJob], CellResult]) -> None:
    """A worker process: one cell, its result sent back (a bug's traceback on stderr, and its line);
    ``env`` (its GPU) set before anything touches CUDA, which reads it once (nothing does on import)."""
    os.environ.update(env)
    from tqdm import tqdm

    # tqdm's default lock is a multiprocessing semaphore: a killed worker would leave it to this
    # machine's resource tracker, which warns at the run's end; the worker's bars are off anyway
    tqdm.set_lock(threading.RLock())
    try:
        result = run(job)
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


class _Worker(NamedTuple):
    """A running cell of `LocalWorkers`: its index in the jobs, its process and pipe, and its slot."""

    index: int
    job: CellJob
    process: multiprocessing.Process
    receive: connection.Connection
    started: float
    slot: int


class LocalWorkers:
    """Up to ``workers`` cells at once, each in a fresh process of its own (spawned, so no state of
    this one leaks in) with ``threads`` threads, and a cell that takes a GPU pinned to its worker
    slot's (module docstring). A stop of this process (SIGTERM, Ctrl-C) stops the workers with
    SIGTERM: each saves its checkpoint, as a stopped training does. ``run`` is what a worker runs per
    cell (`attempt`; tests give a probe)."""

    def __init__(self, workers: int, threads: int = 1, run: Callable[[CellJob], CellResult] = attempt) -> None:
        self.workers, self.threads, self.run = workers, threads, run

    def map(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult, int]]:
        context = multiprocessing.get_context("spawn")
        gpus = visible_gpus() if jobs else []
        waiting = collections.deque(enumerate(jobs))
        live: dict[int, _Worker] = {}
        try:
            while waiting or live:
                while waiting and len(live) < self.workers:
                    i, job = waiting.popleft()
                    slot = min(set(range(self.workers)) - {w.slot for w in live.values()})
                    env = {"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]} if takes_gpu(job.config, len(gpus)) else {}
                    receive, send = context.Pipe(duplex=False)
                    worker = context.Process(target=_work, name=f"snnpipe cell {job.cell.name}",
                                             args=(replace(job, threads=self.threads, progress=False), send, env, self.run))
                    worker.start()
                    send.close()
                    live[worker.sentinel] = _Worker(i, job, worker, receive, time.perf_counter(), slot)
                for sentinel in connection.wait(list(live)):
                    i, job, worker, receive, started, _ = live.pop(sentinel)
                    worker.join()
                    try:
                        result = receive.recv()
                    except EOFError:  # it died before sending
                        result = CellResult.failure(job.cell, f"its worker died ({_died(worker.exitcode)}); {RESUME_HINT}",
                                                    time.perf_counter() - started)
                    receive.close()
                    yield i, result, len(live)
        finally:
            for running in live.values():
                running.process.terminate()
            for running in live.values():
                running.process.join()
                running.receive.close()

    def close(self) -> None:
        pass


class RayCells:
    """Cells as Ray tasks of ``threads`` CPUs each (and a GPU each for a cell that takes one, where
    the cluster has GPUs: `takes_gpu`), at most ``workers`` in flight (None: as many as the cluster
    takes), on the cluster at ``address`` or on a local Ray started here."""

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
        gpus = int(ray.cluster_resources().get("GPU", 0))
        waiting = collections.deque(enumerate(jobs))
        running: dict = {}
        try:
            while waiting or running:
                while waiting and (self.workers is None or len(running) < self.workers):
                    i, job = waiting.popleft()
                    cell = task.options(num_gpus=1) if takes_gpu(job.config, gpus) else task
                    running[cell.remote(replace(job, threads=self.threads, progress=False))] = (i, job, time.perf_counter())
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

