"""Will it fit? The memory a training run or a profile needs, estimated before anything is allocated.

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
    profile     4 P + 4 T B (prod(C, H, W) + 2 N)   weights, the input, each step's spikes held

A run whose estimate exceeds what the machine has available (``MemAvailable`` of /proc/meminfo, or
the free memory of the CUDA device) is refused with one line that says what to lower, instead of
growing until the allocator fails with a traceback or the machine swaps.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from snnpipe.errors import SnnpipeError
from snnpipe.models import create_model
from snnpipe.models.neurons import Neuron, NeuronParams

#: Tensors autograd keeps per neuron and step under BPTT (input current, u, v, spikes and the
#: surrogate's terms), rounded up.
SAVED_PER_NEURON_STEP = 8
#: The share of the available memory an estimate may take.
HEADROOM = 0.9


class TooLargeError(SnnpipeError):
    """A run that cannot fit in this machine's memory: the message says what to lower."""


@dataclass(frozen=True)
class ModelSize:
    """P, the parameters, and N, the neurons (one sample, one step) of a model."""

    parameters: int
    neurons: int
    delay_steps: int


def model_size(name: str, model_args: dict, input_shape: tuple[int, ...], num_classes: int,
               neuron: NeuronParams | None = None, spiking: bool = True) -> ModelSize:
    """Count a zoo model's parameters (on the meta device) and neurons (one step of one sample on
    the CPU, where the weights fit; else 0, and the weights alone will not fit either)."""
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
    return ModelSize(parameters, sum(counts), model.delay_steps)


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Memory this process may still take: the CUDA device's free memory, else ``MemAvailable``."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def training_bytes(size: ModelSize, input_shape: tuple[int, ...], timesteps: int, batch_size: int,
                   graph_over_time: bool) -> int:
    """The module docstring's training estimate."""
    steps = timesteps + size.delay_steps if graph_over_time else 2
    return (16 * size.parameters + 4 * timesteps * batch_size * math.prod(input_shape)
            + 4 * SAVED_PER_NEURON_STEP * steps * batch_size * size.neurons)


def profile_bytes(size: ModelSize, input_shape: tuple[int, ...], timesteps: int, batch_size: int) -> int:
    """The module docstring's profile estimate."""
    steps = timesteps + size.delay_steps
    return 4 * size.parameters + 4 * steps * batch_size * (math.prod(input_shape) + 2 * size.neurons)


def check_fits(needed: int, what: str, hint: str, device: torch.device | str = "cpu") -> None:
    """Refuse ``what`` when ``needed`` bytes exceed `HEADROOM` of what is available.

    Raises:
        TooLargeError: one line with both sizes and ``hint``.
    """
    have = available_bytes(device)
    if needed > HEADROOM * have:
        raise TooLargeError(f"{what} needs about {needed / 2**30:.1f} GB and {torch.device(device).type} memory has "
                           f"{have / 2**30:.1f} GB available: {hint}")
