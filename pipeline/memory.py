"""Will it fit? The memory (and time) a command needs, estimated before anything is allocated.

The model is built on torch's ``meta`` device (shapes, no storage), which gives its parameter count
P without allocating anything. Its neuron count N (the outputs of its neuron layers, one sample, one
step) comes from one step of one sample through the same model built on the CPU (4 P bytes, only
when they fit; the random state is left as it was): a forward pass on the meta device would give N
without them, but it (and ``to_empty``) loads torch's decomposition machinery (sympy, mpmath and
about 500 modules), which took 2 to 8 s of every ``snnpipe train`` here. Then, in bytes (float32,
4 bytes a value)::

    training   16 P                          weights, gradients and Adam's two moments
             + 4 T B prod(C, H, W)           the encoded input (T, B, C, H, W)
             + 4 K S B N                     what autograd keeps: K = 8 tensors a neuron a step
                                             (input current, u, v, spikes, surrogate terms), over
                                             S = T + L steps for BPTT (L: Loihi's delay steps), and
                                             S = 2 for the one-step stages (RateBP's record and
                                             rate passes keep one step each: memory does not grow
                                             with T)
    inference   4 P + 4 S B (prod(C, H, W) + 3 N)   weights, the input, each step's spikes held
                                                    with their counts (profile, export's
                                                    verification, a deployed file's simulator)

Measured here (ru_maxrss, the digits MLP: 64 inputs, 128 neurons; ``tests/test_memory.py`` checks
the bounds on small sizes): training's peak grew by 100 KiB a step between T = 6400 and 12800 at
B = 32, where the estimate says 136 KiB (the direct encoding's input is a view, not a copy); a
profile's by 75 to 370 KB a step at B = 256 (T = 800 to 8000, as the allocator reuses freed blocks
or not), where ``3 N`` gives 458 KB (``2 N``, before, gave 327 KB: under the peak of T = 8000).
The estimates are upper bounds.

A run whose estimate exceeds `HEADROOM` of what it may take (``MemAvailable`` of /proc/meminfo, no
more than the address space ``RLIMIT_AS`` leaves, or the free memory of the CUDA device) is refused
with one line that gives both numbers and says what to lower, instead of growing until the
allocator fails with a traceback or the machine swaps. A run estimated to take more than
`STATED_SECONDS` says so before it starts (`state_duration`): the time of one step of one batch
(with the threads the run will have), measured on the model `model_size` builds anyway, times the
steps the run will take. Every command checks here: train, export, profile (of a checkpoint or a
deployed file), the steps of ``run`` (which call them), and the reading of an IDX data file.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from dataclasses import dataclass

import torch

from snnpipe.errors import SnnpipeError
from snnpipe.models import create_model
from snnpipe.models.neurons import Neuron, NeuronParams
from snnpipe.pipeline.process import chosen_threads, threads_for

#: Tensors autograd keeps per neuron and step under BPTT (input current, u, v, spikes and the
#: surrogate's terms), rounded up.
SAVED_PER_NEURON_STEP = 8
#: The share of the available memory an estimate may take: the rest is left for what it does not
#: count (the interpreter, torch's libraries, the data set) and for other programs.
HEADROOM = 0.9
#: A run estimated to take longer than this (an hour) says so before it starts.
STATED_SECONDS = 3600
#: The time of a training step in forward steps: the backward pass costs about two.
TRAINING_STEP_COST = 3
#: The time of a profiled step in forward steps: measured here (one thread), the digits MLP at
#: T = 1000 in batches of 256 profiled in 3.6 ms a step and batch; its forward step took 0.21 ms.
PROFILED_STEP_COST = 17


class TooLargeError(SnnpipeError):
    """A run that cannot fit in this machine's memory: the message says what to lower."""


@dataclass(frozen=True)
class ModelSize:
    """P, the parameters, and N, the neurons (one sample, one step) of a model; the seconds one
    step of a batch of ``batch_size`` took on the CPU (no gradient), 0 where it did not run."""

    parameters: int
    neurons: int
    delay_steps: int
    step_seconds: float = 0.0


def model_size(name: str, model_args: dict, input_shape: tuple[int, ...], num_classes: int,
               neuron: NeuronParams | None = None, spiking: bool = True, batch_size: int = 1) -> ModelSize:
    """Count a zoo model's parameters (on the meta device) and neurons (one step of one sample on
    the CPU, where the weights fit; else 0, and the weights alone will not fit either), and time one
    step of a batch of ``batch_size`` (B N values, small beside the T-fold the checks bound)."""
    counts: list[int] = []
    with torch.device("meta"):
        model = create_model(name, input_shape=input_shape, num_classes=num_classes, neuron=neuron,
                             spiking=spiking, **model_args)
    parameters = sum(p.numel() for p in model.parameters())
    if 4 * parameters > HEADROOM * available_bytes("cpu"):
        return ModelSize(parameters, 0, model.delay_steps)
    with torch.random.fork_rng(devices=[]):
        model = create_model(name, input_shape=input_shape, num_classes=num_classes, neuron=neuron,
                             spiking=spiking, **model_args).eval()
    hooks = [m.register_forward_hook(lambda _m, _i, out: counts.append(out.numel()))
             for m in model.modules() if isinstance(m, Neuron)]
    try:
        with torch.no_grad():
            model.step(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    neurons = sum(counts)
    seconds = 0.0
    if batch_size > 1 and 4 * batch_size * (neurons + math.prod(input_shape)) < HEADROOM * available_bytes("cpu"):
        # timed with the threads the run will have: on a busy machine a second thread can make a
        # small step 300x slower (measured here: 70 ms against 0.2 ms at B = 256)
        threads, batch, times = torch.get_num_threads(), torch.zeros(batch_size, *input_shape), []
        torch.set_num_threads(chosen_threads() or threads_for(neurons * batch_size))
        try:
            with torch.no_grad():
                for _ in range(3):  # the first step of a new batch size allocates: the fastest one
                    model.reset_state()
                    started = time.perf_counter()
                    model.step(batch)
                    times.append(time.perf_counter() - started)
        finally:
            torch.set_num_threads(threads)
        seconds = min(times)
    return ModelSize(parameters, neurons, model.delay_steps, seconds)


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Memory this process may still take: the CUDA device's free memory, else ``MemAvailable``, no
    more than the address space that ``RLIMIT_AS`` (``ulimit -v``) leaves this process."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    available = _proc_field("/proc/meminfo", "MemAvailable:")
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        available = min(available, max(0, limit - (_proc_field("/proc/self/status", "VmSize:") or 0)))
    return available


def _proc_field(path: str, key: str) -> int | None:
    """A ``key: N kB`` line of a /proc file, in bytes (None where there is none)."""
    try:
        with open(path) as info:
            for line in info:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def training_bytes(size: ModelSize, input_shape: tuple[int, ...], timesteps: int, batch_size: int,
                   graph_over_time: bool) -> int:
    """The module docstring's training estimate."""
    steps = timesteps + size.delay_steps if graph_over_time else 2
    return (16 * size.parameters + 4 * timesteps * batch_size * math.prod(input_shape)
            + 4 * SAVED_PER_NEURON_STEP * steps * batch_size * size.neurons)


def inference_bytes(size: ModelSize, input_shape: tuple[int, ...], timesteps: int, batch_size: int) -> int:
    """The module docstring's inference estimate (profile, export, a deployed file's simulator)."""
    steps = timesteps + size.delay_steps
    return 4 * size.parameters + 4 * steps * batch_size * (math.prod(input_shape) + 3 * size.neurons)


def check_inference(ckpt, what: str, samples: int | None, batch_size: int, hint: str) -> ModelSize:
    """Refuse to run ``ckpt`` (a `Checkpoint`, at its T) on the first ``samples`` of its test set
    (None: all) when the inference estimate does not fit, and state a run of more than
    `STATED_SECONDS` (all samples count as one batch: the data is not loaded yet); before anything
    is allocated. Returns the model's size."""
    shape = tuple(ckpt.data.input_shape)
    batch_size = min(batch_size, samples or batch_size)
    size = model_size(ckpt.model_name, ckpt.model_args, shape, ckpt.data.num_classes, ckpt.neuron, ckpt.spiking,
                      batch_size)
    steps = ckpt.timesteps + size.delay_steps
    check_fits(inference_bytes(size, shape, ckpt.timesteps, batch_size),
               f"{what} {ckpt.model_name} at T={ckpt.timesteps} in batches of {batch_size}", hint)
    batches = math.ceil(samples / batch_size) if samples else 1
    state_duration(batches * steps * size.step_seconds * PROFILED_STEP_COST,
                   f"{what} {ckpt.model_name} at T={ckpt.timesteps} ({steps} steps a batch)", hint)
    return size


def check_fits(needed: int, what: str, hint: str, device: torch.device | str = "cpu") -> None:
    """Refuse ``what`` when ``needed`` bytes exceed `HEADROOM` of what is available.

    Raises:
        TooLargeError: one line with both sizes and ``hint``.
    """
    have = available_bytes(device)
    if needed > HEADROOM * have:
        raise TooLargeError(f"{what} needs about {_gb(needed)} and {torch.device(device).type} memory has {_gb(have)} "
                            f"available, of which snnpipe takes at most {HEADROOM:.0%} ({_gb(HEADROOM * have)}): {hint}")


def _gb(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def state_duration(seconds: float, what: str, hint: str) -> None:
    """Say on stderr, before it starts, that ``what`` will take about ``seconds`` when that is more
    than `STATED_SECONDS`: a run of hours is a choice to make knowingly, not a surprise."""
    if seconds > STATED_SECONDS:
        print(f"{what} will take about {seconds / 3600:.1f} hours here (from the time of one step); {hint}",
              file=sys.stderr, flush=True)
