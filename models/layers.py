"""The network container of the zoo, and the layers that need to know the execution mode.

A `SpikingModel` is an ordered set of named blocks (``stem``, ``layer1`` ..., ``head``) applied in
turn, one timestep at a time: ``model(x)`` with x of shape (T, B, ...) resets every neuron and
returns the per-step outputs (T, B, classes). The prediction is their mean over T (a rate-coded,
non-spiking readout). Stateless layers (conv, linear, average pooling, flatten, the residual add)
are linear in their input, so in ``ExecutionMode.RATE`` they act on time-averaged tensors exactly;
BatchNorm is affine given its statistics, so `BatchNorm1d`/`BatchNorm2d` record the batch
statistics of a ``RECORD`` pass and normalize the time-averaged tensor with their mean (with the
gradient of the time-averaged tensor's own batch statistics).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Iterator

import torch
from torch import Tensor, nn

from snnpipe.models.neurons import CubaLIF, ExecutionMode, Neuron


class _ModeBatchNorm:
    """Mixin: in RECORD mode (training) keep the mean of the per-step batch statistics; in RATE
    mode normalize with them (see `forward`)."""

    mode: ExecutionMode = ExecutionMode.SPIKE

    def _reset_record(self) -> None:
        self._stat_sum: tuple[Tensor, Tensor] | None = None
        self._stat_steps = 0

    def forward(self, x: Tensor) -> Tensor:
        if self.mode is ExecutionMode.RECORD_RATE and self.training:  # T = 1: the batch's own statistics
            self._reset_record()
            return super().forward(x)
        if self.mode is ExecutionMode.RATE and self.training:
            if not self._stat_steps:
                raise RuntimeError("RATE mode needs a RECORD pass first")
            # Values: the mean of the per-step batch statistics of the RECORD pass. Gradients: those
            # of the batch statistics of the time-averaged input, as in RateBP's reference code, so
            # that the centering BatchNorm does in the forward pass is also in the backward pass.
            dims = [0] + list(range(2, x.dim()))
            var_now, mean_now = torch.var_mean(x, dims, unbiased=False)
            mean, var = (s / self._stat_steps for s in self._stat_sum)
            mean = mean + (mean_now - mean_now.detach())
            var = var + (var_now - var_now.detach())
            shape = [1, -1] + [1] * (x.dim() - 2)
            scale = (self.weight * torch.rsqrt(var + self.eps)).view(shape)
            return (x - mean.view(shape)) * scale + self.bias.view(shape)
        if self.mode is ExecutionMode.RECORD and self.training:
            # native_batch_norm returns the batch mean and 1/sqrt(var + eps) it normalized with,
            # so recording them costs nothing; running stats update as nn.BatchNorm's would.
            self.num_batches_tracked.add_(1)
            momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            out, mean, invstd = torch.native_batch_norm(
                x, self.weight, self.bias, self.running_mean, self.running_var, True, momentum, self.eps
            )
            stats = (mean, invstd.pow(-2) - self.eps)
            if self._stat_sum is None:
                self._stat_sum = stats
            else:
                self._stat_sum = tuple(a + b for a, b in zip(self._stat_sum, stats))
            self._stat_steps += 1
            return out
        return super().forward(x)


class BatchNorm1d(_ModeBatchNorm, nn.BatchNorm1d):
    """`nn.BatchNorm1d` that follows the execution mode (module docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._reset_record()


class BatchNorm2d(_ModeBatchNorm, nn.BatchNorm2d):
    """`nn.BatchNorm2d` that follows the execution mode (module docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._reset_record()


class SpikingModel(nn.Module):
    """Named blocks applied in order, one timestep at a time.

    Attributes:
        blocks: the stages of the network, in order; the distillation stages hook in between them.
        spiking: True for the SNN, False for its ANN twin (ReLU in place of every LIF).
        delay_shift: Loihi's timing (lava-dl slayer's ``delay_shift``): every conv and linear
            delivers at step t what it computed from its input at step t - 1 (at the first step: its
            bias alone), and a sequence of T steps runs T + L steps, L the number of conv and linear
            layers, so that the last input reaches the output. Lava's ``Dense`` and ``Conv`` delay
            each layer by one step, and its neurons add their bias at every step: trained this way,
            the float model is the deployed one. BatchNorm statistics stay frozen in training (its
            scale and shift still learn), as in quantization-aware training (Jacob et al. 2018): the
            steps before the input arrives and after it ends would otherwise pull them to zero
            variance. Start from a model trained without ``delay_shift`` (``--init``).
    """

    def __init__(self, blocks: "OrderedDict[str, nn.Module]", spiking: bool, delay_shift: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict(blocks)
        self.spiking = spiking
        self.delay_shift = delay_shift

    def train(self, mode: bool = True) -> "SpikingModel":
        super().train(mode)
        if self.delay_shift and self.spiking:  # frozen BatchNorm statistics (class docstring)
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def neurons(self) -> Iterator[Neuron]:
        return (m for m in self.modules() if isinstance(m, Neuron))

    def reset_state(self) -> None:
        for module in self.modules():
            if isinstance(module, Neuron):
                module.reset_state()
            elif isinstance(module, _ModeBatchNorm) and module.mode is ExecutionMode.RECORD:
                module._reset_record()

    def step(self, x: Tensor, start: int = 0, stop: int | None = None) -> Tensor:
        """Apply blocks ``start:stop`` (all by default) to one timestep (or one averaged tensor)."""
        for block in list(self.blocks.values())[start:stop]:
            x = block(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Run a sequence x of shape (T, B, ...) from a fresh state; returns (T, B, classes).

        When every timestep is the same tensor (stride 0 along T, as the direct encoding makes
        it), the stateless layers before the first neuron run once, not T times: the same result,
        with BatchNorm's running statistics updated once per batch.
        """
        self.reset_state()
        if self.delay_steps:
            return self._delayed_forward(x)
        if x.dim() > 1 and x.stride(0) == 0 and len(x) > 1:
            head, tail = self._static_prefix()
            if len(head):
                current = head(x[0])
                return torch.stack([self._run(tail, current) for _ in range(len(x))])
        return torch.stack([self.step(x_t) for x_t in x])

    def _synapses(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    @property
    def delay_steps(self) -> int:
        """L, the steps a sequence runs after its T input steps under ``delay_shift`` (else 0): one
        per conv and linear on the path from input to output; a block that aligns its branches
        (``align_shortcut``: a residual block, an imported graph) adds those on its longest path."""
        if not (self.delay_shift and self.spiking):
            return 0
        aligning = self._aligning()
        inside = {id(m) for block in aligning for m in block.modules()}
        return sum(id(m) not in inside for m in self._synapses()) + sum(block.synapse_depth() for block in aligning)

    def _aligning(self) -> list[nn.Module]:
        """The blocks that align their branches in Loihi's timing (`BasicBlock`, an imported `GraphBlock`)."""
        return [m for m in self.modules() if callable(getattr(m, "align_shortcut", None))]

    def _delayed_forward(self, x: Tensor) -> Tensor:
        """The forward under ``delay_shift`` (class docstring): (T + L, B, classes)."""
        with self.timing(x) as steps:
            return torch.stack([self.step(x_t) for x_t in steps])

    @contextlib.contextmanager
    def timing(self, x: Tensor) -> Iterator[Tensor]:
        """Within the block the model runs in its own timing; yields the steps to run. Under
        ``delay_shift`` that is x and L zero steps, every conv and linear delayed by one step;
        otherwise x itself, unchanged."""
        if not self.delay_steps:
            yield x
            return
        synapses = self._synapses()
        handles = [m.register_forward_hook(_delay_by_one_step) for m in synapses]
        residual = self._aligning()
        for block in residual:
            block.align_shortcut(True)
        try:
            yield torch.cat([x, x.new_zeros(self.delay_steps, *x.shape[1:])])
        finally:
            for handle in handles:
                handle.remove()
            for module in synapses:
                module._delayed = None
            for block in residual:
                block.align_shortcut(False)

    def _static_prefix(self) -> tuple[nn.Sequential, list[nn.Module]]:
        """Split the network at its first neuron: (the stateless layers before it, the rest)."""
        blocks = list(self.blocks.values())
        first = blocks[0]
        if not isinstance(first, nn.Sequential):
            return nn.Sequential(), blocks
        children = list(first)
        cut = next(
            (i for i, m in enumerate(children) if any(isinstance(n, Neuron) for n in m.modules())),
            len(children),
        )
        return nn.Sequential(*children[:cut]), children[cut:] + blocks[1:]

    @staticmethod
    def _run(modules: list[nn.Module], x: Tensor) -> Tensor:
        for module in modules:
            x = module(x)
        return x


def _delay_by_one_step(module: nn.Module, inputs, output: Tensor) -> Tensor:
    """Forward hook: return the output of the previous call (at the first call, the bias alone)."""
    previous = getattr(module, "_delayed", None)
    module._delayed = output
    if previous is None:
        previous = torch.zeros_like(output)
        if module.bias is not None:
            previous = previous + module.bias.view(1, -1, *([1] * (output.dim() - 2)))
    return previous


def to_device(x: Tensor, device: torch.device | str) -> Tensor:
    """Move a (T, B, ...) input to ``device``, keeping a stride-0 time axis (static input) static."""
    if x.dim() > 1 and x.stride(0) == 0:
        return x[0].to(device).unsqueeze(0).expand(x.shape)
    return x.to(device)


def set_mode(model: nn.Module, mode: ExecutionMode) -> None:
    for module in model.modules():
        if isinstance(module, (Neuron, _ModeBatchNorm)):
            module.mode = mode


@contextlib.contextmanager
def execution_mode(model: nn.Module, mode: ExecutionMode) -> Iterator[None]:
    """Run the block with every neuron and BatchNorm of ``model`` in ``mode``."""
    set_mode(model, mode)
    try:
        yield
    finally:
        set_mode(model, ExecutionMode.SPIKE)


@contextlib.contextmanager
def rate_based(model: "SpikingModel", x: Tensor) -> Iterator[Tensor]:
    """RateBP's two passes over a sequence x (T, B, ...): a graph-free RECORD pass over its T steps,
    then the block runs the model (or its blocks) in RATE mode on the time-averaged input it is
    given. At T = 1 (outside Loihi's timing, which runs 1 + L steps) the time average is the one
    step itself, so both passes are one differentiable call in ``RECORD_RATE`` mode: the same
    values and gradients but for float rounding (tests/test_models.py), one forward pass instead of
    two (at T = 1 RateBP cost 1.7x BPTT's step, now 1.0x: benchmarks/train_cost.py)."""
    if len(x) == 1 and not model.delay_steps:
        model.reset_state()
        with execution_mode(model, ExecutionMode.RECORD_RATE):
            yield x[0]
        return
    with torch.no_grad(), execution_mode(model, ExecutionMode.RECORD):
        model(x)
        finish_record(model)
    with execution_mode(model, ExecutionMode.RATE):
        yield x.mean(0)


def finish_record(model: nn.Module) -> None:
    """Close a RECORD pass: rates and eligibilities become means over the timesteps."""
    for module in model.modules():
        if isinstance(module, CubaLIF):
            module.finish_record()


def firing_rate(model: nn.Module, reset: bool = True) -> float:
    """Mean activity of all neurons since the last reset: spikes / (neurons x timesteps x samples).

    For the ANN twin it is the fraction of nonzero ReLU outputs.
    """
    total, count = 0.0, 0
    for neuron in (m for m in model.modules() if isinstance(m, Neuron)):
        total += float(neuron.activity_sum)
        count += neuron.activity_count
        if reset:
            neuron.reset_activity()
    return total / count if count else 0.0


def activity(model: nn.Module) -> list[list[float]]:
    """Every neuron layer's activity counts since the last reset, [[sum, count], ...] in module
    order: what `firing_rate` reads, kept in a checkpoint so that a resumed epoch counts them all."""
    return [[float(n.activity_sum), int(n.activity_count)] for n in model.modules() if isinstance(n, Neuron)]


def set_activity(model: nn.Module, counts: list[list[float]]) -> None:
    """Restore `activity`'s counts."""
    neurons = [n for n in model.modules() if isinstance(n, Neuron)]
    if len(neurons) != len(counts):
        raise ValueError(f"{len(counts)} activity counts for {len(neurons)} neuron layers")
    for neuron, (total, count) in zip(neurons, counts):
        neuron.activity_sum, neuron.activity_count = float(total), int(count)


class BasicBlock(nn.Module):
    """Spiking residual block: LIF(BN(conv(LIF(BN(conv(x))))) + shortcut(x)).

    The add comes before the second neuron (Zheng et al. 2021, tdBN ResNet-19), so the block emits
    spikes; the shortcut is identity, or a 1x1 conv + BN where the shape changes.

    In Loihi's timing (`SpikingModel.timing`) every conv delays by one step: the main branch by two,
    the shortcut by its own convs (none or one). The shortcut then reads x as it was
    ``2 - (its convs)`` steps earlier (zeros before the first step), so that both branches add what
    x gave on the same step, as the Loihi export's relay neurons align them on the chip.
    """

    def __init__(self, in_channels: int, channels: int, stride: int, neuron) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = BatchNorm2d(channels)
        self.lif1 = neuron()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), BatchNorm2d(channels)
            )
        self.lif2 = neuron()

        self._shortcut_delay = 0
        self._past: list[Tensor] = []

    def synapse_depth(self) -> int:
        """conv1 and conv2: the block's steps in Loihi's timing (the shortcut runs beside them)."""
        return 2

    def align_shortcut(self, on: bool) -> None:
        """Delay the shortcut's input to its main branch's depth (class docstring), or stop doing so;
        either way the delay starts empty."""
        convs = sum(isinstance(m, nn.Conv2d) for m in self.shortcut.modules())
        self._shortcut_delay = 2 - convs if on else 0
        self._past = []

    def forward(self, x: Tensor) -> Tensor:
        out = self.lif1(self.bn1(self.conv1(x)))
        skip = x
        if self._shortcut_delay:  # only inside SpikingModel.timing, one call per step
            self._past.append(x)
            skip = self._past.pop(0) if len(self._past) > self._shortcut_delay else torch.zeros_like(x)
        return self.lif2(self.bn2(self.conv2(out)) + self.shortcut(skip))
