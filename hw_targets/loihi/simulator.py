"""A bit-accurate simulator of a `LoihiNetwork` or a `LoihiGraph`, vectorized in torch over the batch
and the neurons.

It computes what Lava's ``Loihi2SimCfg(select_tag="fixed_pt")`` computes for a netx file (or for the
process graph ``lava_runner.py`` builds from a graph file), bit for bit, one whole batch per step
instead of one sample per process message:

- synapses (``lava/proc/dense/models.py``, ``PyDenseModelBitAcc``; ``lava/proc/conv/models.py``,
  ``PyConvModelFixed``): ``a_in[t] = W s[t-1]`` with Lava's integer weights
  (`fixed_point.dense_synapse_format` for dense; conv output wrapped to 24 bits), sent one step
  late: Lava's one-timestep delay per layer;
- neurons (``lava/proc/lif/models.py``, ``PyLifModelBitAcc``): the update in `fixed_point`'s
  module docstring, with the 24-bit wrap of u, the saturation of v and the strict ``v > vth << 6``;
- several connections into one node: their ``a_in`` added before the neuron (Lava sums the messages
  at the neuron's port); graded input multiplies the weights by its integers (``num_message_bits``).

Integer products run in float32 where every partial sum stays below 2^24 (exact), else in float64;
states are int64. Each layer also counts its wraps and saturations, which the exporter reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.graph import INPUT, LoihiGraph
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
    """One connection's synaptic operation on its source's spikes (or graded input), in Lava's integers.

    Args:
        layer: the connection as a `LoihiLayer`.
        input_limit: the largest |value| it multiplies: 1 for spikes, 2^(b-1) for b-bit graded input.
    """

    def __init__(self, layer: LoihiLayer, device: torch.device, input_limit: int = 1) -> None:
        self.layer = layer
        if layer.kind == "dense":
            fmt = fx.dense_synapse_format(layer.weight)
            weights = torch.as_tensor(fmt.weights)
            self.shift = -fmt.weight_exp if fmt.weight_exp < 0 else 0
            self.left = fmt.weight_exp if fmt.weight_exp > 0 else 0
        else:
            weights = torch.as_tensor(layer.weight)
            self.shift = self.left = 0
        rows = int(weights.abs().reshape(weights.shape[0], -1).sum(1).max().item()) if weights.numel() else 0
        bound = rows * input_limit
        self.dtype = torch.float32 if bound < _FLOAT32_EXACT else torch.float64
        self.weights = weights.to(device=device, dtype=self.dtype)
        if layer.kind == "dense":
            self.weights = self.weights.t().contiguous()
        #: the largest |a_in| this connection can send, in weight units
        self.input_bound = (bound >> self.shift) << self.left
        self.wrap_conv = layer.kind == "conv" and bound >= 1 << (fx.CONV_ACCUMULATOR_BITS - 1)

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
    """Runs a `LoihiNetwork` (a netx chain) or a `LoihiGraph` on batches of input.

    A node's input at step t is the sum of its connections' synaptic outputs on their sources'
    spikes of step t - 1 (Lava's one-step delay per ``Dense``/``Conv``; Lava adds the messages of
    several connections at the neuron's port), the input being a source like any node.

    Args:
        net: the quantized network or graph.
        device: where to run (CPU by default).
    """

    def __init__(self, net: LoihiNetwork | LoihiGraph, device: torch.device | str = "cpu") -> None:
        self.net = net
        self.graph = net if isinstance(net, LoihiGraph) else LoihiGraph.from_network(net)
        self.device = torch.device(device)
        graph = self.graph
        index = {node.name: i for i, node in enumerate(graph.nodes)}
        self.connections: list[list[tuple[_Synapse, int]]] = []
        self.int32: list[bool] = []
        self.bias = []
        for node in graph.nodes:
            synapses = [(_Synapse(layer, self.device, graph.input_limit() if c.source == INPUT else 1),
                         index.get(c.source, -1)) for c, layer in zip(node.connections, node.layers())]
            self.connections.append(synapses)
            # Where u can wrap, Lava's int32 arithmetic around it can overflow too: emulate it exactly.
            self.int32.append(sum(s.input_bound for s, _ in synapses) << fx.ACT_SHIFT >= fx.STATE_LIMIT)
            if node.bias is None:
                self.bias.append(None)
                continue
            bias = torch.as_tensor(node.bias, dtype=torch.int64, device=self.device) << fx.NETX_BIAS_EXP
            self.bias.append(bias.view(-1, *([1] * (len(node.out_shape) - 1))))

    @torch.no_grad()
    def run(self, x: Tensor, steps: int | None = None, record_spikes: bool = False,
            record_state: bool = False) -> SimulationResult:
        """Run from rest.

        Args:
            x: (T, B, *input_shape): binary spikes, or for a graph with graded input the analog
                input, which is quantized as Lava receives it (`LoihiGraph.quantize_input`); step t
                of the input is what Lava's source sends at step t + 1 (the first node receives it
                one step later).
            steps: how many steps to run (default ``T + depth``: the input has reached the output).
            record_spikes: keep every node's spikes at every step.
            record_state: keep every node's u and v after every step.

        Raises:
            ValueError: input of the wrong shape, or not binary where the input is spikes.
        """
        graph = self.graph
        if x.dim() != len(graph.input_shape) + 2 or tuple(x.shape[2:]) != graph.input_shape:
            raise ValueError(f"input has shape {tuple(x.shape)}; expected (T, B, {', '.join(map(str, graph.input_shape))})")
        if graph.graded:
            x = graph.quantize_input(x)
        elif not bool(((x == 0) | (x == 1)).all()):
            raise ValueError("input is not binary spikes: netx's input layer takes unary (0/1) events")
        timesteps, batch = x.shape[0], x.shape[1]
        steps = graph.steps_for(timesteps) if steps is None else steps
        x = x.to(self.device)
        nodes = graph.nodes
        zeros = [torch.zeros(batch, *node.out_shape, dtype=torch.int64, device=self.device) for node in nodes]
        current = [z.clone() for z in zeros]
        voltage = [z.clone() for z in zeros]
        last_input = torch.zeros(batch, *graph.input_shape, device=self.device)
        last = [torch.zeros(batch, *node.out_shape, device=self.device) for node in nodes]
        counters = [LayerCounters() for _ in nodes]
        record = {"s": [[] for _ in nodes], "u": [[] for _ in nodes], "v": [[] for _ in nodes]}
        output_counts = torch.zeros(batch, *graph.output_shape, dtype=torch.int64, device=self.device)
        for step in range(steps):
            emitted = []
            for i in range(len(nodes)):
                a_in = None
                for synapse, source in self.connections[i]:
                    part = synapse(last_input if source < 0 else last[source], counters[i])
                    a_in = part if a_in is None else a_in + part
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
            last_input = x[step].to(torch.float32) if step < timesteps else torch.zeros_like(last_input)
            last = [s.to(torch.float32) for s in emitted]
        readout = nodes[-1].neuron.readout
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
        neuron = self.graph.nodes[i].neuron
        drive = a_in << fx.ACT_SHIFT
        decayed = fx.rtz_decay(current[i], neuron.current_keep)
        if self.int32[i]:  # np.int32(decayed) + np.left_shift(int32 a_in, 6), in int32
            drive, decayed = fx.wrap_signed(drive, fx.INT32_BITS), fx.wrap_signed(decayed, fx.INT32_BITS)
            u, wrapped = fx.wrap_current(fx.wrap_signed(decayed + drive, fx.INT32_BITS))
        else:
            u, wrapped = fx.wrap_current(decayed + drive)
        v = fx.rtz_decay(voltage[i], neuron.voltage_keep) + u
        if self.bias[i] is not None:
            v = v + self.bias[i]
        if self.int32[i]:
            v = fx.wrap_signed(v, fx.INT32_BITS)
        v, saturated = fx.saturate_voltage(v)
        spikes = v > (neuron.vth_mant << fx.VTH_SHIFT)
        current[i] = u
        voltage[i] = v.masked_fill(spikes, 0)
        counters.current_wraps += int(wrapped.sum())
        counters.voltage_saturations += int(saturated.sum())
        counters.spikes += int(spikes.sum())
        return spikes
