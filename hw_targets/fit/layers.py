"""The graph as a chip's mapper sees it: one layer per synapse node, with the neuron after it.

A synapse (`Affine`, `Conv1d`, `Conv2d`) and the neuron that follows it are one layer on every chip
here (one Loihi layer, one Speck core layer, one Xylo population). Pools and `Flatten` between two
layers fold into the next synapse's input (Loihi) or, right after a neuron, into the layer's core
(Speck pools after its spiking layer: ``pool``). A node with several incoming edges sums them: its
layer has several ``sources``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from snnpipe.models import ir

#: The node types that only reshape or pool between layers (no state, no weights).
_BETWEEN = (ir.Flatten, ir.SumPool2d, ir.AvgPool2d, ir.Scale)


@dataclass(frozen=True)
class FitLayer:
    """One synapse node and the neuron after it.

    Attributes:
        name: the synapse node's name.
        kind: its IR type (``Affine``, ``Conv1d``, ``Conv2d``).
        in_shape: one sample's input, as the synapse takes it.
        map_shape: the input before any `Flatten` (C, H, W): Speck runs a dense layer as a conv
            whose kernel covers that map.
        out_shape: the synapse's output, one neuron per element.
        weight_shape: the synapse's weight array.
        neuron: the IR type of the neuron node after it (None: none before the next layer).
        pool: the window of a pool right after that neuron (None: none).
        sources: the layers (or ``input``) whose outputs reach it: through its synapse, and one to
            one (a residual shortcut without weights) into its neurons.
        bias: whether the synapse adds a bias (Speck stores it per output channel).
        summed: whether its neurons sum several incoming edges (a residual add).
        padding: a conv's padding (per dimension, or "same"/"valid"); None for a dense layer.
        joins: the layer whose neurons this synapse feeds too (a second connection into a node with
            several incoming edges, e.g. a shortcut's 1x1 conv): its neurons are that layer's.
    """

    name: str
    kind: str
    in_shape: tuple[int, ...]
    map_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    neuron: str | None
    pool: tuple[int, ...] | None
    sources: tuple[str, ...]
    bias: bool = False
    summed: bool = False
    padding: tuple[int, ...] | str | None = None
    joins: str | None = None

    @property
    def neurons(self) -> int:
        """Neurons this layer adds (none where it joins another layer's)."""
        return 0 if self.joins else math.prod(self.out_shape)

    @property
    def fan_in(self) -> int:
        """Synapses into one neuron (taps of one output element)."""
        return math.prod(self.weight_shape[1:])

    @property
    def synapses(self) -> int:
        """Synapses unrolled: every output's taps (a conv's shared weights counted at each position)."""
        return math.prod(self.out_shape) * self.fan_in

    @property
    def weights(self) -> int:
        """Weights stored once (a conv's kernel once)."""
        return math.prod(self.weight_shape)

    @property
    def inputs(self) -> int:
        return math.prod(self.in_shape)


def _upstream(graph: ir.Graph, name: str, layer_of: dict[str, str]) -> tuple[list[str], tuple[int, ...] | None]:
    """The layers feeding node ``name`` through non-synapse nodes, and the shape before a Flatten."""
    shapes = graph.shapes()
    found: list[str] = []
    map_shape = None
    todo = list(graph.inputs(name))
    while todo:
        node = todo.pop(0)
        if isinstance(graph.nodes[node], ir.Flatten):
            map_shape = shapes[graph.inputs(node)[0]] if graph.inputs(node) else map_shape
        if node in layer_of:
            if layer_of[node] not in found:
                found.append(layer_of[node])
        elif isinstance(graph.nodes[node], ir.Input):
            if "input" not in found:
                found.append("input")
        elif not isinstance(graph.nodes[node], ir.SYNAPSES):  # a synapse not yet placed joins later
            todo.extend(graph.inputs(node))
    return found, map_shape


def fit_layers(graph: ir.Graph) -> list[FitLayer]:
    """The graph's layers in order (module docstring)."""
    shapes = graph.shapes()
    layer_of: dict[str, str] = {}  # node -> the layer whose output it is (synapse and the neurons/pools after it)
    layers: list[FitLayer] = []
    for name in graph.order():
        node = graph.nodes[name]
        if not isinstance(node, ir.SYNAPSES):
            continue
        sources, map_shape = _upstream(graph, name, layer_of)
        in_shape = shapes[graph.inputs(name)[0]]
        neuron = pool = joins = None
        summed = False
        tail = name
        layer_of[name] = name
        while len(graph.outputs(tail)) == 1 and not isinstance(graph.nodes[graph.outputs(tail)[0]], ir.SYNAPSES):
            nxt = graph.outputs(tail)[0]
            kind = graph.nodes[nxt]
            if nxt in layer_of:
                joins = layer_of[nxt]
                break
            if isinstance(kind, ir.Output) or (len(graph.inputs(nxt)) > 1 and neuron is not None):
                break
            if isinstance(kind, ir.NEURONS) and neuron is None:
                neuron = type(kind).__name__
                summed = len(graph.inputs(nxt)) > 1
                sources += [s for s in _upstream(graph, nxt, layer_of)[0] if s not in sources and s != name]
            elif isinstance(kind, (ir.SumPool2d, ir.AvgPool2d)) and neuron is not None and pool is None:
                pool = kind.kernel_size
            elif not isinstance(kind, _BETWEEN):
                break
            layer_of[nxt] = name
            tail = nxt
        layers.append(FitLayer(name, type(node).__name__, tuple(in_shape), tuple(map_shape or in_shape),
                               tuple(shapes[name]), tuple(node.weight.shape), neuron, pool, tuple(sources), node.bias is not None, summed,
                               getattr(node, "padding", None), joins))
    return layers


def node_kinds(graph: ir.Graph) -> dict[str, str]:
    """Node name -> IR type, for every node but the graph's ends (what a chip must run)."""
    return {name: type(node).__name__ for name, node in graph.nodes.items()
            if not isinstance(node, (ir.Input, ir.Output))}
