"""The Loihi graph: neuron groups joined by synaptic connections, for what a netx chain cannot say.

A netx file (`netx`) is a chain: layer i reads layer i-1. A residual network sums two branches into
one neuron, and a direct-coded network feeds graded (multi-bit) input into its first layer; both are
a `LoihiGraph`, which `graph_file` writes and ``lava_runner.py`` builds as a Lava process graph.

- A `GraphNode` is a group of CUBA neurons (`CubaNeuron`: the netx device parameters) with a bias,
  fed by one or more `Connection`\\ s. A connection is a dense or conv synapse (8-bit mantissas << 1,
  as in netx) from a *source*: ``input`` or an earlier node. Lava adds the messages of every
  connection into a neuron's ``a_in`` (``lava/magma/core/model/py/ports.py``,
  ``PyInPortVectorDense.recv``: ``acc + port.recv()`` over the connected ports), so a node computes
  ``a_in[t] = sum_c W_c s_c[t-1]``; its bias is the sum of its branches' (BatchNorm-folded) biases.
- Timing: every connection (Lava's ``Dense`` and ``Conv``) delays by one step, so a node's *depth*
  is ``depth(source) + 1`` over any of its connections, with ``depth(input) = 0``. Every connection
  of a node must give the same depth, or the branches would meet on different steps: the graph
  refuses a node whose branches differ (`AlignmentError`), and the exporter pads the shorter branch
  with *relay* nodes (`relay_node`): neurons that fire exactly when they received a spike one step
  earlier. An input of T steps has passed the graph after ``T + depth(output)`` steps.
- Input: binary spikes (``input_bits = 0``) or graded spikes, the signed integers
  ``x_q = clip(round(x / 2^input_exp), -2^(b-1), 2^(b-1) - 1)`` of ``b = input_bits`` bits that
  Lava's ``Dense``/``Conv`` multiply by their weights when their ``num_message_bits`` is nonzero
  (``lava/proc/dense/models.py``: ``weights.dot(s_in)`` in place of summing the weights of active
  inputs).

The last node is the output (the readout, when it has ``CubaNeuron.readout``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.network import LAYER_KINDS, CubaNeuron, LoihiLayer, LoihiNetwork, integer_array

INPUT = "input"
#: Largest graded input: Loihi 2 graded spikes carry up to 24 bits (Intel's Loihi 2 brief, Table 1);
#: the exporter's default is 8 (`export`), the precision of the weights.
MAX_INPUT_BITS = 24
#: Largest |input_exp|: 2^64 is far past the range of any input normalized for training, and
#: 2^input_exp stays finite (a file's input_exp of 10^6 overflowed).
MAX_INPUT_EXP = 64
#: A relay neuron: u = a_in (iDecay 4096), v keeps 1/4096 of itself (vDecay 4095, rtz: nothing of a
#: v below 4096), threshold 1 << 6 = 64; one input spike (file weight 2, a_in = 2, u = 128) fires it.
RELAY_NEURON = CubaNeuron(fx.DECAY_UNITY, fx.DECAY_MAX, 1)
RELAY_WEIGHT = 1 << fx.WEIGHT_FILE_SHIFT


class AlignmentError(ValueError):
    """A node whose connections reach it after different numbers of steps."""


@dataclass
class Connection:
    """A synapse from ``source`` into a node; the geometry fields as `LoihiLayer`'s.

    Attributes:
        source: ``input`` or the name of an earlier node.
        name: the module path of the synapse in the source model (for messages).
        kind: ``dense`` or ``conv``.
        in_shape: one sample of the source, flattened when ``flatten``.
        weight: int64 file weights, (out, in) or (out, in/groups, kh, kw), 8-bit mantissa << 1.
    """

    source: str
    name: str
    kind: str
    in_shape: tuple[int, ...]
    weight: np.ndarray
    flatten: bool = False
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        self.weight = integer_array(self.weight, f"weight of {self.name}")

    def layer(self, node: "GraphNode") -> LoihiLayer:
        """This connection and ``node``'s neurons as a `LoihiLayer` (its checks, synapse count and
        the simulator's synapse; the node's bias is the node's, not the connection's)."""
        return LoihiLayer(self.name, self.kind, self.in_shape, node.out_shape, self.weight, None, node.neuron,
                          flatten=self.flatten, stride=self.stride, padding=self.padding, dilation=self.dilation,
                          groups=self.groups)


@dataclass
class GraphNode:
    """A group of neurons and the connections into it.

    Attributes:
        name: unique; the module path of its main synapse in the source model, or ``<source>.relay<k>``.
        out_shape: the neurons, (C, H, W) or (n,).
        neuron: the neurons' device parameters.
        bias: int64 bias mantissas per output channel (13-bit, netx's bias exponent 6), or None.
        connections: at least one.
        relay: a delay relay the exporter inserted (not a layer of the model).
    """

    name: str
    out_shape: tuple[int, ...]
    neuron: CubaNeuron
    bias: np.ndarray | None
    connections: list[Connection]
    relay: bool = False

    def __post_init__(self) -> None:
        self.out_shape = tuple(int(n) for n in self.out_shape)
        if self.bias is not None:
            self.bias = integer_array(self.bias, f"bias of {self.name}").reshape(-1)
            if len(self.bias) != self.out_shape[0]:
                raise ValueError(f"bias of {self.name} has {len(self.bias)} values for {self.out_shape[0]} channels")
            if self.bias.min() < fx.BIAS_MANT_MIN or self.bias.max() > fx.BIAS_MANT_MAX:
                raise ValueError(f"bias of {self.name} spans [{self.bias.min()}, {self.bias.max()}]; the mantissa is 13-bit")
        if not self.connections:
            raise ValueError(f"node {self.name} has no connections")

    @property
    def neurons(self) -> int:
        return math.prod(self.out_shape)

    def layers(self) -> list[LoihiLayer]:
        """Each connection as a `LoihiLayer` into this node's neurons."""
        return [connection.layer(self) for connection in self.connections]

    def synapses(self) -> int:
        """Connections that carry a weight, over every incoming connection (`LoihiLayer.synapses`)."""
        return sum(layer.synapses() for layer in self.layers())


@dataclass
class LoihiGraph:
    """Nodes in topological order on an input of ``input_shape``; the last node is the output.

    Attributes:
        input_bits: 0 for binary spikes, else the bits of the signed graded input.
        input_exp: the input's exponent: ``x = x_q 2^input_exp`` (graded input only).
    """

    input_shape: tuple[int, ...]
    nodes: list[GraphNode] = field(default_factory=list)
    input_bits: int = 0
    input_exp: int = 0

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(n) for n in self.input_shape)
        self.input_bits, self.input_exp = int(self.input_bits), int(self.input_exp)
        if not 0 <= self.input_bits <= MAX_INPUT_BITS or self.input_bits == 1:
            raise ValueError(f"input_bits={self.input_bits} is out of range: 0 (binary spikes) or 2..{MAX_INPUT_BITS}")
        if abs(self.input_exp) > MAX_INPUT_EXP:
            raise ValueError(f"input_exp={self.input_exp} is out of range [-{MAX_INPUT_EXP}, {MAX_INPUT_EXP}]")
        if not self.nodes:
            raise ValueError("nodes is empty: a graph needs at least one node")
        shapes: dict[str, tuple[int, ...]] = {INPUT: self.input_shape}
        self._depth: dict[str, int] = {INPUT: 0}
        for node in self.nodes:
            if node.name in shapes:
                raise ValueError(f"node name {node.name!r} is used twice (or is 'input')")
            depths = set()
            for connection in node.connections:
                if connection.source not in shapes:
                    raise ValueError(f"{connection.name} into {node.name} reads {connection.source!r}, which is not "
                                     "the input or an earlier node")
                if connection.kind not in LAYER_KINDS:
                    raise ValueError(f"kind={connection.kind!r} of {connection.name} is not one of {', '.join(LAYER_KINDS)}")
                source_shape = shapes[connection.source]
                expected = (math.prod(source_shape),) if connection.flatten else source_shape
                if tuple(connection.in_shape) != expected:
                    raise ValueError(f"{connection.name} into {node.name} takes {tuple(connection.in_shape)}; "
                                     f"{connection.source} gives {expected}")
                connection.layer(node)  # LoihiLayer's checks of weights and shapes
                depths.add(self._depth[connection.source] + 1)
            if node.relay and not _is_relay(node, shapes):
                raise ValueError(f"relay node {node.name} is not one connection into relay neurons of its source's shape, "
                                 "the identity weight and no bias (relay_node): a relay passes each spike on one step "
                                 "later, unchanged")
            if len(depths) != 1:
                raise AlignmentError(f"the branches into {node.name} arrive after {sorted(depths)} steps; Lava would "
                                     "sum spikes of different steps (pad the shorter branch with relay nodes)")
            shapes[node.name] = node.out_shape
            self._depth[node.name] = depths.pop()

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.nodes[-1].out_shape

    def depth(self, name: str) -> int:
        """Steps from the input to node ``name`` (one per connection on any path)."""
        return self._depth[name]

    def steps_for(self, timesteps: int) -> int:
        """Steps after which an input of ``timesteps`` steps has reached the output."""
        return timesteps + self._depth[self.nodes[-1].name]

    @property
    def graded(self) -> bool:
        return self.input_bits > 0

    def quantize_input(self, x: Tensor) -> Tensor:
        """The input Lava receives: binary spikes unchanged; analog input as graded integers
        ``clip(round(x / 2^input_exp), -2^(b-1), 2^(b-1) - 1)`` (float tensor of integers)."""
        if not self.graded:
            return x
        top = (1 << (self.input_bits - 1)) - 1
        return torch.clamp(torch.round(x.double() / 2.0**self.input_exp), -top - 1, top).float()

    def input_limit(self) -> int:
        """The largest |input| a connection from the input multiplies: 1 for spikes, 2^(b-1) graded."""
        return 1 << (self.input_bits - 1) if self.graded else 1

    def is_chain(self) -> bool:
        """A netx chain: binary input, one connection per node, each reading the node before, no relays."""
        previous = INPUT
        for node in self.nodes:
            if node.relay or len(node.connections) != 1 or node.connections[0].source != previous:
                return False
            previous = node.name
        return not self.graded

    def as_network(self) -> LoihiNetwork:
        """This chain as the `LoihiNetwork` a netx file holds (`is_chain` must be true)."""
        if not self.is_chain():
            raise ValueError("this graph is not a chain with binary input: it has no netx form")
        layers = []
        for node in self.nodes:
            layer = node.connections[0].layer(node)
            layer.bias = node.bias
            layers.append(layer)
        return LoihiNetwork(self.input_shape, layers)

    def to_ir(self) -> "ir.Graph":
        """This graph as the typed graph (`snnpipe.models.ir`), for what reads a network's shape
        (``snnpipe fit``): each connection a synapse node named as the connection (``Affine`` or
        ``Conv2d``, its file weights; the node's bias on its first connection; a ``Flatten`` before it
        where it flattens its source), each node's neurons a ``CubaLIF`` named ``<node>.neurons`` (its
        decays, and its threshold ``vth_mant``) into which its connections sum. Weights, biases and
        thresholds are all in weight units (a_in's, 2^6 state units: Lava compares ``v > vth_mant << 6``
        in state units), so the graph's own dynamics are the fixed-point ones up to Lava's rounding and
        24-bit limits (`sanafe_job` runs it so). A readout
        node's neurons are the network's output, as a checkpoint's head: its synapses feed the
        ``Output`` directly."""
        from snnpipe.models import ir

        nodes: dict[str, ir.Node] = {INPUT: ir.Input(self.input_shape)}
        edges: list[tuple[str, str]] = []
        out_of = {INPUT: INPUT}  # graph node -> the IR node its spikes leave from
        for node in self.nodes:
            neuron = node.neuron
            into = f"{node.name}.neurons"
            if not neuron.readout:
                nodes[into] = ir.CubaLIF(neuron.i_decay / fx.DECAY_UNITY, neuron.v_decay / fx.DECAY_UNITY,
                                         float(neuron.vth_mant))
            for index, connection in enumerate(node.connections):
                source = out_of[connection.source]
                if connection.flatten and len(self.input_shape if connection.source == INPUT else
                                              next(n.out_shape for n in self.nodes if n.name == connection.source)) > 1:
                    nodes[f"{connection.name}.flatten"] = ir.Flatten()
                    edges.append((source, f"{connection.name}.flatten"))
                    source = f"{connection.name}.flatten"
                bias = node.bias if index == 0 and node.bias is not None else None
                nodes[connection.name] = (ir.Affine(connection.weight, bias) if connection.kind == "dense" else
                                          ir.Conv2d(connection.weight, bias, connection.stride, connection.padding,
                                                    connection.dilation, connection.groups))
                edges += [(source, connection.name)] + ([(connection.name, into)] if not neuron.readout else [])
            out_of[node.name] = into if not neuron.readout else node.connections[0].name
        last = self.nodes[-1]
        nodes["output"] = ir.Output(last.out_shape)
        edges += [(c.name, "output") for c in last.connections] if last.neuron.readout else [(out_of[last.name], "output")]
        return ir.Graph(nodes, edges)

    @classmethod
    def from_network(cls, net: LoihiNetwork) -> "LoihiGraph":
        """The chain of a `LoihiNetwork`, each layer a node reading the one before."""
        nodes, previous = [], INPUT
        for layer in net.layers:
            connection = Connection(previous, layer.name, layer.kind, layer.in_shape, layer.weight, layer.flatten,
                                    layer.stride, layer.padding, layer.dilation, layer.groups)
            nodes.append(GraphNode(layer.name, layer.out_shape, layer.neuron, layer.bias, [connection]))
            previous = layer.name
        return cls(net.input_shape, nodes)


def _is_relay(node: GraphNode, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether ``node`` is what `relay_node` makes of its source: one identity connection of weight
    mantissa 1 into relay neurons of the source's shape, no bias."""
    if len(node.connections) != 1 or node.neuron != RELAY_NEURON or node.bias is not None:
        return False
    given = node.connections[0]
    if node.out_shape != shapes[given.source]:
        return False
    wanted = identity_connection(given.source, given.name, node.out_shape, 1)
    return (given.weight.shape == wanted.weight.shape and bool(np.array_equal(given.weight, wanted.weight))
            and all(getattr(given, key) == getattr(wanted, key)
                    for key in ("kind", "in_shape", "flatten", "stride", "padding", "dilation", "groups")))


def identity_connection(source: str, name: str, shape: tuple[int, ...], mantissa: int) -> Connection:
    """A connection that passes each neuron of ``source`` to the same neuron of its target with the
    weight mantissa ``mantissa``: a depthwise 1x1 conv for (C, H, W), a diagonal dense for (n,)."""
    if not 1 <= mantissa <= fx.WEIGHT_MANT_MAX:
        raise ValueError(f"identity mantissa {mantissa} of {name} is out of [1, {fx.WEIGHT_MANT_MAX}]")
    file_weight = mantissa << fx.WEIGHT_FILE_SHIFT
    if len(shape) == 3:
        weight = np.full((shape[0], 1, 1, 1), file_weight, dtype=np.int64)
        return Connection(source, name, "conv", shape, weight, groups=shape[0])
    return Connection(source, name, "dense", shape, np.eye(shape[0], dtype=np.int64) * file_weight)


def relay_node(source: str, shape: tuple[int, ...], index: int = 1) -> GraphNode:
    """A relay of ``source``: it fires at step t + 1 exactly where ``source`` fired at step t (module
    docstring), named ``<source>.relay<index>``."""
    name = f"{source}.relay{index}"
    return GraphNode(name, shape, RELAY_NEURON, None, [identity_connection(source, name, shape, 1)], relay=True)
