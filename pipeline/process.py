"""How the snnpipe process is set up before torch starts: the CPU allocator and the thread policy.

Torch's CPU work runs on an OpenMP pool as wide as the machine's cores. On a machine shared with
other work (most laptops and CI runners; this project's 2-core machines), that default is the
slow choice for the models snnpipe trains on a CPU (`benchmarks/threads.py`, reports/bench/threads.json):

- OpenMP threads that wait between parallel regions spin on their core (libgomp's active wait),
  taking it from the other thread and from the other processes; ``OMP_WAIT_POLICY=passive`` makes
  them sleep. It must be in the environment before torch loads libgomp: `start` sets it, unless
  the user has.
- A second thread pays only when a step's operations are large: torch splits an elementwise
  operation over threads only past 32768 elements (``at::internal::GRAIN_SIZE``), and below
  that each parallel region costs a wake-up and a barrier for nothing. It pays only on a core
  nothing else wants: beside one busy process, two threads on two cores were slower than one for
  every zoo model measured. `threads_for` takes one thread below `PARALLEL_FROM` values per step (2^21, measured)
  (the batch times the model's neurons), else one per core that other processes leave idle
  (`busy_cores`, read when training starts).

``--threads N`` (every command that computes; or ``SNNPIPE_THREADS=N``) overrides the policy, as
does an ``OMP_NUM_THREADS`` the user set: snnpipe then never changes the thread count.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time

#: The environment variable through which ``--threads N`` reaches the code that sets the threads.
THREADS_VARIABLE = "SNNPIPE_THREADS"
#: Values per training step (batch x neurons of one sample and step) from which a second thread
#: pays for itself on an idle core; below it one thread is faster, most of all beside other work.
#: benchmarks/threads.py on a quiet machine (load 0.35): two passive threads took 0.80x and 0.72x
#: one thread's step at 4.8M and 9.6M values (Fashion-MNIST convnet, vgg), 1.28x at 811k (resnet)
#: and 2.5x at 6k (digits MLP 128-64): the threshold lies between 811k and 4.8M.
PARALLEL_FROM = 1 << 21


def start(threads: int | None = None) -> None:
    """Set up this process before torch is imported: the allocator (`tune_cpu_allocator`),
    OpenMP's passive wait unless ``OMP_WAIT_POLICY`` is set, and ``threads`` (``--threads``) as
    the thread count of every later computation."""
    tune_cpu_allocator()
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    if threads is not None:
        os.environ[THREADS_VARIABLE] = str(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:  # a program that imported torch first: its pool exists already
            sys.modules["torch"].set_num_threads(threads)


def chosen_threads() -> int | None:
    """The thread count the user chose (``--threads``, ``SNNPIPE_THREADS`` or ``OMP_NUM_THREADS``),
    or None where the policy decides."""
    for name in (THREADS_VARIABLE, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def busy_cores(samples: int = 5, interval_s: float = 0.01) -> int:
    """The cores other processes keep busy now: the runnable tasks that ``/proc/loadavg`` counts
    (its fourth field), the median of ``samples`` readings, less this process (0 where there is no
    such file). The 1-minute load average would lag by a minute and count this process's own work."""
    readings = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as loadavg:
                readings.append(int(loadavg.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return 0
        if i + 1 < samples:
            time.sleep(interval_s)
    return max(0, sorted(readings)[len(readings) // 2])


def threads_for(values_per_step: int, cores: int | None = None, busy: int | None = None) -> int:
    """The policy: one thread below `PARALLEL_FROM` values per step, else one per idle core
    (``cores`` less the ``busy`` ones; by default this machine's, now), at least one."""
    if values_per_step < PARALLEL_FROM:
        return 1
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(1, cores - busy)


def apply_thread_policy(values_per_step: int) -> int:
    """Set torch's thread count for work of this size (`threads_for`), unless the user chose one
    (`chosen_threads`); returns the count in force."""
    import torch

    chosen = chosen_threads()
    threads = chosen if chosen is not None else threads_for(values_per_step)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3



def tune_cpu_allocator() -> bool:
    """Keep freed tensor memory in the process instead of returning it to the OS at once.

    glibc serves blocks over its mmap threshold with fresh pages and trims the heap top eagerly, so
    each multi-megabyte activation of a timestep loop page-faults anew: measured here, one
    out-of-place multiply of a 64x32x28x28 tensor inside the training loop took 1.2 ms against
    0.05 ms in place, and a BPTT step at T=8 ran 1.5-2x slower. Raising the mmap threshold to its
    maximum (32 MiB on 64-bit) and the trim threshold to 1 GiB keeps those pages (PyTorch's CPU
    tuning guide recommends a caching allocator for the same reason). Called by the CLI (`start`) and
    the benchmarks for their own process; a library import changes nothing. Returns whether it applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, 2**30) == 1 and ok)
