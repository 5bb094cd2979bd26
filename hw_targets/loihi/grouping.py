"""The typed graph (`snnpipe.models.ir.Graph`) as Loihi layers: neurons fed by the sum of their branches.

Loihi computes in layers of CUBA neurons, each fed by synapses; the graph is grouped into them, in
its topological order, by a ``{node type: role}`` table (`ROLES`):

- A *source* is spikes: the graph's input, or a spiking neuron (`ir.CubaLIF`), with the average or
  sum poolings and the Flatten that follow it (they fold into the next synapse, `quantize`).
- A *branch* is a synapse (`ir.Affine`, `ir.Conv2d`) reading one source, or an *identity*: an edge
  from a source straight into a neuron (a residual block's identity shortcut: the spikes themselves,
  weight 1), which has no node and is named after the neuron's block (`shortcut_name`).
- A *layer* (`LoihiLayer`) is a neuron after the sum of its incoming edges, one branch each, named
  after its first branch's synapse; the synapses into the graph's output are the readout layer (a
  non-spiking integrator), summed as a neuron's branches are. A node with several incoming edges is
  several connections into one Loihi layer (`graph.GraphNode`), and the exporter aligns branches of
  different depths with relays.
- Loihi's timing (every synapse one step late) is not a node: the graph's metadata says it
  (``delay_shift``, `snnpipe.models.tracer`), and the quantizer reads it there.

What Loihi cannot run is refused in one line naming the node and the parameter
(`UnsupportedLayerError`): a neuron's ``v_leak`` or ``v_reset``, a per-neuron parameter (Loihi holds
one per layer), a synapse's bias into a neuron whose current decays, a recurrent edge, a pooling with
padding, a node kind with no Loihi layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from snnpipe.hw_targets import UnsupportedLayerError
from snnpipe.hw_targets.loihi.graph import INPUT
from snnpipe.models import ir
from snnpipe.models.graph import module_key
from snnpipe.models.tracer import TraceError, trace

TARGET = "loihi"
NIR_HINT = "export this model with --target nir"

#: What each node type is in a Loihi layer; a type with none is refused with its hint.
ROLES: dict[type, str] = {
    ir.Input: "input", ir.Output: "output", ir.Affine: "synapse", ir.Conv2d: "synapse",
    ir.AvgPool2d: "pool", ir.SumPool2d: "pool", ir.Flatten: "flatten", ir.CubaLIF: "neuron",
}
HINTS: dict[type, str] = {
    ir.Conv1d: "Loihi's convolutions take (C, H, W) maps; write it as a Conv2d of height 1",
    ir.CubaLI: "a non-spiking leaky readout has no Loihi layer here: end the graph at its Affine (the readout "
               "integrates it)",
    ir.Integrator: "an integrator readout has no Loihi layer here: end the graph at its Affine (the readout "
                   "integrates it)",
    ir.Threshold: "a threshold without a neuron has no Loihi layer",
    ir.Scale: "a scale without a synapse has no Loihi layer; fold it into the weights before it",
    ir.Delay: "a delay has no Loihi layer (Loihi's timing, one step per synapse, is the graph's delay_shift)",
}


@dataclass(frozen=True)
class Pool:
    """A pooling node that folds into the next synapse, with one sample's shape before and after it."""

    name: str
    node: ir.AvgPool2d | ir.SumPool2d
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


@dataclass(frozen=True)
class Source:
    """Spikes of ``node`` (``input`` or a layer's name) through ``pools`` and an optional Flatten;
    ``shape`` is one sample after them."""

    node: str
    shape: tuple[int, ...]
    pools: tuple[Pool, ...] = ()
    flatten: bool = False


@dataclass
class Branch:
    """One term of a layer's input: the synapse ``layer`` (the graph's node ``path``) on ``source``,
    or (``layer`` None) the identity of ``source``, named ``path`` by `shortcut_name`."""

    source: Source
    layer: ir.Affine | ir.Conv2d | None
    path: str
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()

    @property
    def identity(self) -> bool:
        return self.layer is None


@dataclass
class LoihiLayer:
    """A neuron (``neuron`` None: the non-spiking readout) after the sum of ``branches``."""

    name: str
    branches: list[Branch]
    neuron: ir.CubaLIF | None
    neuron_name: str
    out_shape: tuple[int, ...]


def shortcut_name(neuron: str) -> str:
    """The name of an identity branch into ``neuron``: the graph has no node for it, so it is named
    after the block the neuron closes, ``<parent>.shortcut`` (a zoo `BasicBlock`'s ``shortcut``
    module: ``blocks.layer1.0.lif2`` gives ``blocks.layer1.0.shortcut``, as the export named it
    before the IR)."""
    return f"{neuron.rsplit('.', 1)[0] if '.' in neuron else neuron}.shortcut"


def _refuse(name: str, node: ir.Node, hint: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(name, node, TARGET, hint)


def layer_parameter(name: str, node: ir.Node, key: str) -> float:
    """The neuron's ``key`` as one number: Loihi holds one per layer (a per-neuron array of equal
    values is that value).

    Raises:
        UnsupportedLayerError: the values differ between neurons.
    """
    value = getattr(node, key)
    if isinstance(value, np.ndarray):
        first = float(value.reshape(-1)[0])
        if not np.all(value == first):
            raise _refuse(name, node, f"per-neuron {key} (from {value.min():g} to {value.max():g}): Loihi holds one "
                          f"{key} per layer")
        return first
    return float(value)


def _check_neuron(name: str, node: ir.CubaLIF) -> None:
    """Refuse what Lava's CUBA neuron cannot run, naming the parameter."""
    for key in ("v_leak", "v_reset"):
        if layer_parameter(name, node, key) != 0.0:
            raise _refuse(name, node, f"{key}={layer_parameter(name, node, key):g}: Lava's CUBA neuron has no "
                          f"{key.replace('_', ' ')} (it {'leaks to' if key == 'v_leak' else 'resets to'} 0)")
    for key in ("current_decay", "voltage_decay", "threshold"):
        layer_parameter(name, node, key)
    if node.bias is not None:
        layer_parameter(name, node, "bias")


def _check_synapse_biases(name: str, node: ir.CubaLIF, branches: list[Branch]) -> None:
    """Refuse a synapse's bias into a neuron whose current decays: the bias enters the current u,
    where it accumulates (to b / current_decay), while Loihi adds a bias to the voltage v, which is
    the same only when the current is the step's input (current_decay 1)."""
    current_decay = layer_parameter(name, node, "current_decay")
    if current_decay == 1.0:
        return
    for branch in branches:
        if branch.layer is not None and branch.layer.bias is not None and np.any(branch.layer.bias != 0):
            raise _refuse(branch.path, branch.layer, f"bias into {name}, whose current_decay={current_decay:g}: the "
                          "bias enters the decaying current, Loihi adds a bias to the voltage only; set the bias to "
                          "0 or current_decay to 1")


@dataclass
class _Grouper:
    graph: ir.Graph
    shapes: dict[str, tuple[int, ...]]

    def __post_init__(self) -> None:
        self.values: dict[str, Source | Branch | None] = {}
        self.layers: list[LoihiLayer] = []

    def _one_input(self, name: str, node: ir.Node, what: str) -> Source | Branch:
        sources = self.graph.inputs(name)
        if len(sources) != 1:
            raise _refuse(name, node, f"{what} sums {len(sources)} inputs; Loihi adds branches only at a neuron")
        return self.values[sources[0]]

    def _spikes(self, name: str, node: ir.Node, what: str) -> Source:
        value = self._one_input(name, node, what)
        if not isinstance(value, Source):
            raise _refuse(name, node, f"{what} between a synapse and its neuron cannot be folded; put it after the neuron")
        return value

    def input(self, name: str, node: ir.Input) -> None:
        self.values[name] = Source(INPUT, self.shapes[name])

    def pool(self, name: str, node: ir.AvgPool2d | ir.SumPool2d) -> None:
        spikes = self._spikes(name, node, "pooling")
        if spikes.flatten:
            raise _refuse(name, node, "pooling after a Flatten has no image to pool")
        if any(node.padding):
            raise _refuse(name, node, f"padding={node.padding}: only pooling without padding folds into the next layer")
        pool = Pool(name, node, spikes.shape, self.shapes[name])
        self.values[name] = replace(spikes, shape=pool.out_shape, pools=spikes.pools + (pool,))

    def flatten(self, name: str, node: ir.Flatten) -> None:
        spikes = self._spikes(name, node, "a Flatten")
        shape = self.shapes[name]
        if len(shape) != 1:
            raise _refuse(name, node, f"it gives {shape}; Loihi flattens a whole sample or nothing")
        self.values[name] = replace(spikes, shape=shape, flatten=spikes.flatten or len(spikes.shape) > 1)

    def synapse(self, name: str, node: ir.Affine | ir.Conv2d) -> None:
        value = self._one_input(name, node, "a synapse")
        if isinstance(value, Branch):
            raise _refuse(name, node, "two synaptic layers with no neuron between them; Loihi gives every layer neurons")
        if isinstance(node, ir.Conv2d) and len(value.shape) != 3:
            raise _refuse(name, node, "a Conv2d needs a (C, H, W) input")
        consumers = self.graph.outputs(name)
        if len(consumers) != 1:
            raise _refuse(name, node, f"its output feeds {len(consumers)} nodes; Loihi gives a synapse one neuron layer")
        self.values[name] = Branch(value, node, name, value.shape, self.shapes[name])

    def neuron(self, name: str, node: ir.CubaLIF) -> None:
        _check_neuron(name, node)
        branches = []
        for source in self.graph.inputs(name):
            value = self.values[source]
            if isinstance(value, Source):
                if value.pools or value.flatten:
                    raise _refuse(name, node, f"the pooled or flattened spikes of {source} reach it without a synapse; "
                                  "pooling folds only into a synapse")
                value = Branch(value, None, shortcut_name(name), value.shape, value.shape)
            branches.append(value)
        if all(b.identity for b in branches):
            raise _refuse(name, node, "a neuron with no conv or linear before it has no Loihi layer")
        _check_synapse_biases(name, node, branches)
        layer_name = next(b.path for b in branches if not b.identity)
        self.layers.append(LoihiLayer(layer_name, branches, node, name, self.shapes[name]))
        self.values[name] = Source(layer_name, self.shapes[name])

    def output(self, name: str, node: ir.Output) -> None:
        values = [self.values[source] for source in self.graph.inputs(name)]
        if len(values) > 1 or isinstance(values[0], Branch):  # the readout, summing its synapses
            if not all(isinstance(value, Branch) for value in values):
                raise _refuse(name, node, "the output sums spikes and synapses; Loihi's readout integrates synapses only")
            self.layers.append(LoihiLayer(values[0].path, values, None, "", values[0].out_shape))
            return
        value = values[0]
        if value.pools or value.flatten:
            last = value.pools[-1] if value.pools else None
            raise _refuse(last.name if last else name, last.node if last else node, "nothing after it to fold it into")

    def run(self) -> list[LoihiLayer]:
        for name in self.graph.order():
            node = self.graph.nodes[name]
            role = ROLES.get(type(node))
            if role is None:
                raise _refuse(name, node, HINTS.get(type(node), f"it has no Loihi layer; {NIR_HINT}"))
            getattr(self, role)(name, node)
        if not any(layer.branches and not layer.branches[0].identity for layer in self.layers):
            raise _refuse("", self.graph.nodes[self.graph.output], "the graph has no conv or linear layer")
        return self.layers


@contextmanager
def naming_nodes(model: nn.Module) -> Iterator[None]:
    """Refusals inside also name the graph node a module was built from (``ir_name``) where its path
    does not: an imported chain is built into ``blocks.layer<i>``, so ``blocks.head.1`` is the NIR
    file's ``li``."""
    try:
        yield
    except UnsupportedLayerError as err:
        try:
            node = getattr(model.get_submodule(err.path), "ir_name", None) if err.path else None
        except AttributeError:
            node = None
        if node is None or err.path.endswith(module_key(node)):
            raise
        raise UnsupportedLayerError(err.path, err.module, err.target, err.hint, node) from None


def traced(model: nn.Module, input_shape: tuple[int, ...]) -> ir.Graph:
    """The graph of ``model`` (BatchNorm folded) by the one tracer, its refusal as the Loihi target's."""
    try:
        return trace(model, tuple(input_shape))
    except TraceError as err:
        raise UnsupportedLayerError(err.path, err.module, TARGET, err.reason) from None


def loihi_layers(graph: ir.Graph) -> list[LoihiLayer]:
    """The graph's Loihi layers in topological order, the output's last (module docstring).

    Raises:
        UnsupportedLayerError: a node or parameter Loihi cannot run, named.
    """
    for a, b in graph.recurrent_edges():
        raise _refuse(b, graph.nodes[b], f"a recurrent edge from {a}: the Loihi export takes feed-forward graphs")
    try:
        shapes = graph.shapes()
    except ValueError as err:
        raise UnsupportedLayerError("", graph, TARGET, str(err)) from None
    return _Grouper(graph, shapes).run()
