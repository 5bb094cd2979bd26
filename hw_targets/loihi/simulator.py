"""A bit-accurate simulator of a `LoihiNetwork`, vectorized in torch over the batch and the neurons.

It computes what Lava's ``Loihi2SimCfg(select_tag="fixed_pt")`` computes for a netx file, bit for
bit, one whole batch per step instead of one sample per process message:

- synapses (``lava/proc/dense/models.py``, ``PyDenseModelBitAcc``; ``lava/proc/conv/models.py``,
  ``PyConvModelFixed``): ``a_in[t] = W s[t-1]`` with Lava's integer weights
  (`fixed_point.dense_synapse_format` for dense; conv output wrapped to 24 bits), sent one step
  late: Lava's one-timestep delay per layer;
- neurons (``lava/proc/lif/models.py``, ``PyLifModelBitAcc``): the update in `fixed_point`'s
  module docstring, with the 24-bit wrap of u, the saturation of v and the strict ``v > vth << 6``.

Integer products run in float32 where every partial sum stays below 2^24 (exact), else in float64;
states are int64. Each layer also counts its wraps and saturations, which the exporter reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.network import LoihiLayer, LoihiNetwork

#: Integers up to 2^24 are exact in float32 (24-bit significand), 2^53 in float64.
_FLOAT32_EXACT = 1 << 24


@dataclass
class LayerCounters:
    """What one layer did over a run: spikes and the events where fixed point lost information.

    Attributes:
        spikes: total spikes over all steps and samples.
        current_wraps: neuron updates where u wrapped around its 24-bit range (a sign flip).
        voltage_saturations: neuron updates where v was clipped to +-(2^23 - 1).
        accumulator_wraps: conv outputs wrapped to 24 bits before reaching the neurons.
        max_abs_input: the largest |a_in| seen, in weight units.
    """

    spikes: int = 0
    current_wraps: int = 0
    voltage_saturations: int = 0
    accumulator_wraps: int = 0
    max_abs_input: int = 0

    def add(self, other: "LayerCounters") -> None:
        self.spikes += other.spikes
        self.current_wraps += other.current_wraps
        self.voltage_saturations += other.voltage_saturations
        self.accumulator_wraps += other.accumulator_wraps
        self.max_abs_input = max(self.max_abs_input, other.max_abs_input)


@dataclass
class SimulationResult:
    """The outcome of `LoihiSimulator.run` on a batch.

    Attributes:
        output: (B, n): the readout's final voltage (state units), or the last layer's spike counts.
        spikes: per layer, (steps, B, *out_shape) uint8, when recorded.
        current, voltage: per layer, (steps, B, *out_shape) int64 after each step, when recorded.
        counters: per layer.
    """

    output: Tensor
    spikes: list[Tensor] | None = None
    current: list[Tensor] | None = None
    voltage: list[Tensor] | None = None
    counters: list[LayerCounters] = field(default_factory=list)

    def predictions(self) -> Tensor:
        """The class of each sample: argmax of the output (the first index on ties, as torch)."""
        return self.output.argmax(dim=1)


class _Synapse:
    """One layer's synaptic operation on the previous layer's spikes, in Lava's integers."""

    def __init__(self, layer: LoihiLayer, device: torch.device) -> None:
        self.layer = layer
        if layer.kind == "dense":
            fmt = fx.dense_synapse_format(layer.weight)
            weights = torch.as_tensor(fmt.weights)
            self.shift = -fmt.weight_exp if fmt.weight_exp < 0 else 0
            self.left = fmt.weight_exp if fmt.weight_exp > 0 else 0
        else:
            weights = torch.as_tensor(layer.weight)
            self.shift = self.left = 0
        bound = int(weights.abs().reshape(weights.shape[0], -1).sum(1).max().item()) if weights.numel() else 0
        self.dtype = torch.float32 if bound < _FLOAT32_EXACT else torch.float64
        self.weights = weights.to(device=device, dtype=self.dtype)
        if layer.kind == "dense":
            self.weights = self.weights.t().contiguous()
        input_bound = (bound >> self.shift) << self.left
        self.wrap_conv = layer.kind == "conv" and bound >= 1 << (fx.CONV_ACCUMULATOR_BITS - 1)
        # Where u can wrap, Lava's int32 arithmetic around it can overflow too: emulate it exactly.
        self.int32 = input_bound << fx.ACT_SHIFT >= fx.STATE_LIMIT

    def __call__(self, spikes: Tensor, counters: LayerCounters) -> Tensor:
        layer = self.layer
        x = spikes.to(self.dtype)
        if layer.flatten:
            x = x.reshape(x.shape[0], -1)
        if layer.kind == "dense":
            a_in = (x @ self.weights).round().to(torch.int64)
            if self.shift:
                a_in = a_in >> self.shift
            if self.left:
                a_in = a_in << self.left
        else:
            a_in = F.conv2d(x, self.weights, None, layer.stride, layer.padding, layer.dilation, layer.groups)
            a_in = a_in.round().to(torch.int64)
            if self.wrap_conv:
                wrapped = fx.wrap_signed(a_in, fx.CONV_ACCUMULATOR_BITS)
                counters.accumulator_wraps += int((wrapped != a_in).sum())
                a_in = wrapped
        return a_in


class LoihiSimulator:
    """Runs a `LoihiNetwork` on batches of binary input spikes.

    Args:
        net: the quantized network.
        device: where to run (CPU by default).
    """

    def __init__(self, net: LoihiNetwork, device: torch.device | str = "cpu") -> None:
        self.net = net
        self.device = torch.device(device)
        self.synapses = [_Synapse(layer, self.device) for layer in net.layers]
        self.bias = []
        for layer in net.layers:
            if layer.bias is None:
                self.bias.append(None)
                continue
            bias = torch.as_tensor(layer.bias, dtype=torch.int64, device=self.device) << fx.NETX_BIAS_EXP
            self.bias.append(bias.view(-1, *([1] * (len(layer.out_shape) - 1))))

    @torch.no_grad()
    def run(self, x: Tensor, steps: int | None = None, record_spikes: bool = False,
            record_state: bool = False) -> SimulationResult:
        """Run from rest on input spikes.

        Args:
            x: (T, B, *input_shape) binary spikes; step t of the input is what Lava's source sends
                at step t + 1 (the first layer receives it one step later).
            steps: how many steps to run (default ``T + layers``: the input has reached the output).
            record_spikes: keep every layer's spikes at every step.
            record_state: keep every layer's u and v after every step.

        Raises:
            ValueError: input of the wrong shape or not binary (netx's input layer takes unary spikes).
        """
        net = self.net
        if x.dim() != len(net.input_shape) + 2 or tuple(x.shape[2:]) != net.input_shape:
            raise ValueError(f"input has shape {tuple(x.shape)}; expected (T, B, {', '.join(map(str, net.input_shape))})")
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError("input is not binary spikes: netx's input layer takes unary (0/1) events")
        timesteps, batch = x.shape[0], x.shape[1]
        steps = net.steps_for(timesteps) if steps is None else steps
        x = x.to(self.device)
        layers = net.layers
        zeros = [torch.zeros(batch, *layer.out_shape, dtype=torch.int64, device=self.device) for layer in layers]
        current = [z.clone() for z in zeros]
        voltage = [z.clone() for z in zeros]
        previous = [torch.zeros(batch, *net.input_shape, device=self.device)] + [
            torch.zeros(batch, *layer.out_shape, device=self.device) for layer in layers[:-1]
        ]
        counters = [LayerCounters() for _ in layers]
        record = {"s": [[] for _ in layers], "u": [[] for _ in layers], "v": [[] for _ in layers]}
        output_counts = torch.zeros(batch, *net.output_shape, dtype=torch.int64, device=self.device)
        for step in range(steps):
            emitted = []
            for i, layer in enumerate(layers):
                a_in = self.synapses[i](previous[i], counters[i])
                if a_in.numel():
                    counters[i].max_abs_input = max(counters[i].max_abs_input, int(a_in.abs().max()))
                spikes = self._neuron(i, a_in, current, voltage, counters[i])
                emitted.append(spikes)
                if record_spikes:
                    record["s"][i].append(spikes.to(torch.uint8))
                if record_state:
                    record["u"][i].append(current[i].clone())
                    record["v"][i].append(voltage[i].clone())
            output_counts += emitted[-1].to(torch.int64)
            previous = [x[step].to(torch.float32) if step < timesteps else torch.zeros_like(previous[0])]
            previous += [s.to(torch.float32) for s in emitted[:-1]]
        readout = layers[-1].neuron.readout
        output = voltage[-1] if readout else output_counts
        result = SimulationResult(output.reshape(batch, -1), counters=counters)
        if record_spikes:
            result.spikes = [torch.stack(s) for s in record["s"]]
        if record_state:
            result.current = [torch.stack(u) for u in record["u"]]
            result.voltage = [torch.stack(v) for v in record["v"]]
        return result

    def _neuron(self, i: int, a_in: Tensor, current: list[Tensor], voltage: list[Tensor],
                counters: LayerCounters) -> Tensor:
        neuron = self.net.layers[i].neuron
        drive = a_in << fx.ACT_SHIFT
        decayed = fx.rtz_decay(current[i], neuron.current_keep)
        if self.synapses[i].int32:  # np.int32(decayed) + np.left_shift(int32 a_in, 6), in int32
            drive, decayed = fx.wrap_signed(drive, fx.INT32_BITS), fx.wrap_signed(decayed, fx.INT32_BITS)
            u, wrapped = fx.wrap_current(fx.wrap_signed(decayed + drive, fx.INT32_BITS))
        else:
            u, wrapped = fx.wrap_current(decayed + drive)
        v = fx.rtz_decay(voltage[i], neuron.voltage_keep) + u
        if self.bias[i] is not None:
            v = v + self.bias[i]
        if self.synapses[i].int32:
            v = fx.wrap_signed(v, fx.INT32_BITS)
        v, saturated = fx.saturate_voltage(v)
        spikes = v > (neuron.vth_mant << fx.VTH_SHIFT)
        current[i] = u
        voltage[i] = v.masked_fill(spikes, 0)
        counters.current_wraps += int(wrapped.sum())
        counters.voltage_saturations += int(saturated.sum())
        counters.spikes += int(spikes.sum())
        return spikes
