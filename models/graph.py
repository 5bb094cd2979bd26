"""Models built from the typed graph (`snnpipe.models.ir`): what an imported network becomes.

``snnpipe import nir`` reads a file into an `ir.Graph`; a checkpoint keeps the graph's structure in
its ``model_args`` (``graph``: `ir.Graph.to_data` with the weights left out) and the weights in its
``state_dict``, so it rebuilds with `create_model` like any zoo model, ANN twin included (ReLU for
every neuron). Each node becomes a module by `BUILDERS`, a ``{node type: builder}`` table, and the
module carries the node's name as ``ir_name`` (`layer_modules` finds the modules by it).

- ``sequential(graph=...)``: a chain, in blocks that each end at a neuron (``layer1``, ``layer2`` ...)
  and a ``head`` of what follows the last neuron: the stages and the profiler see blocks as in the zoo.
- ``graph(graph=...)``: any graph; a node with several incoming edges gets their sum (NIR's
  convention: a residual add). When the output comes from a single-input node, that node is the
  ``head`` block; everything else is the ``graph`` block (a `GraphBlock`).

Graph data whose weights are left out (``{"shape": [...]}``) builds freshly initialized layers (the
defaults here, a checkpoint before its state dict loads); an `ir.Graph` builds with its weights.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from snnpipe.errors import SnnpipeError
from snnpipe.models import ir
from snnpipe.models.neurons import CubaLIF, LeakyIntegrator, Neuron, ThresholdLayer
from snnpipe.models.zoo import register_model

Shape = tuple[int, ...]
NeuronFactory = Callable[[], nn.Module]


class GraphError(SnnpipeError):
    """A graph snnpipe cannot build into a model: the message names the node."""


def _label(name: str, node: ir.Node) -> str:
    return f"node {name!r} ({type(node).__name__})"


def _affine(name: str, node: ir.Affine, neuron: NeuronFactory) -> nn.Module:
    out, features = node.weight.shape
    return nn.Linear(features, out, bias=node.bias is not None)


def _conv(name: str, node: ir.Conv2d, neuron: NeuronFactory) -> nn.Module:
    kind = nn.Conv1d if isinstance(node, ir.Conv1d) else nn.Conv2d
    return kind(node.in_channels, node.weight.shape[0], tuple(node.weight.shape[2:]), node.stride, node.padding,
                node.dilation, node.groups, bias=node.bias is not None)


def _pool(name: str, node: ir.AvgPool2d, neuron: NeuronFactory) -> nn.Module:
    divisor = 1 if isinstance(node, ir.SumPool2d) else None  # the sum over the window: NIR's SumPool2d
    return nn.AvgPool2d(node.kernel_size, node.stride, node.padding, divisor_override=divisor)


def _flatten(name: str, node: ir.Flatten, neuron: NeuronFactory) -> nn.Module:
    return nn.Flatten(node.start_dim + 1 if node.start_dim >= 0 else node.start_dim,
                      node.end_dim + 1 if node.end_dim >= 0 else node.end_dim)


def _one_per_layer(name: str, node: ir.Node, keys: tuple[str, ...]) -> None:
    for key in keys:
        if isinstance(getattr(node, key), np.ndarray):
            values = getattr(node, key)
            raise GraphError(f"{_label(name, node)} has per-neuron {key} ({values.min():g} .. {values.max():g}); "
                             "snnpipe's neuron layers take one value per layer")


def _cuba_lif(name: str, node: ir.CubaLIF, neuron: NeuronFactory) -> nn.Module:
    probe = neuron()
    if not isinstance(probe, CubaLIF):
        return probe  # the ANN twin: ReLU in place of every neuron
    _one_per_layer(name, node, node.PER_NEURON)
    for key in ("v_leak", "v_reset", "bias"):
        if getattr(node, key) not in (None, 0.0):
            raise GraphError(f"{_label(name, node)} has {key} = {getattr(node, key):g}; snnpipe's CUBA LIF has 0")
    try:
        params = replace(probe.params, current_decay=node.current_decay, voltage_decay=node.voltage_decay,
                         threshold=node.threshold, refractory_steps=node.refractory_steps, reset=node.reset)
    except SnnpipeError as err:
        raise GraphError(f"{_label(name, node)}: {err}") from None
    return CubaLIF(params)


def _cuba_li(name: str, node: ir.CubaLI | ir.Integrator, neuron: NeuronFactory) -> nn.Module:
    _one_per_layer(name, node, getattr(node, "PER_NEURON", ("gain",)))
    if not isinstance(neuron(), CubaLIF):
        return nn.Identity()  # the ANN twin passes a non-spiking integrator's input on
    return LeakyIntegrator(node)


def _threshold(name: str, node: ir.Threshold, neuron: NeuronFactory) -> nn.Module:
    _one_per_layer(name, node, ("threshold",))
    probe = neuron()
    return ThresholdLayer(node.threshold, probe.params) if isinstance(probe, CubaLIF) else probe


class Scale(nn.Module):
    """y = scale x, one factor or one per neuron (`ir.Scale`)."""

    def __init__(self, scale: ir.Param) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(np.asarray(scale), dtype=torch.float32), persistent=False)

    def ir_node(self) -> ir.Scale:
        return ir.Scale(self.scale.double().numpy() if self.scale.dim() else float(self.scale))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


Builder = Callable[[str, Any, NeuronFactory], nn.Module]
#: Node type -> its module (fresh weights; `_load` copies the node's). Input and Output are the
#: model's ends, not modules.
BUILDERS: dict[type, Builder] = {
    ir.Affine: _affine,
    ir.Conv1d: _conv,
    ir.Conv2d: _conv,
    ir.AvgPool2d: _pool,
    ir.SumPool2d: _pool,
    ir.Flatten: _flatten,
    ir.CubaLIF: _cuba_lif,
    ir.CubaLI: _cuba_li,
    ir.Integrator: _cuba_li,
    ir.Threshold: _threshold,
    ir.Scale: lambda name, node, neuron: Scale(node.scale),
}


def build_node(name: str, node: ir.Node, neuron: NeuronFactory) -> nn.Module:
    """The module of one node, named ``name`` (``ir_name``); GraphError for a type snnpipe does not build."""
    builder = BUILDERS.get(type(node))
    if builder is None:
        raise GraphError(f"{_label(name, node)} is not a node snnpipe builds into a model; it builds "
                         f"{', '.join(k.__name__ for k in BUILDERS)}")
    module = builder(name, node, neuron)
    module.ir_name = name
    return module


def _load(module: nn.Module, node: ir.Node, name: str) -> None:
    """Copy the node's weights (`ir.Node.WEIGHTS`) into its module."""
    with torch.no_grad():
        for key in node.WEIGHTS:
            value, target = getattr(node, key), getattr(module, key, None)
            if value is None or not isinstance(target, Tensor):
                continue
            if tuple(target.shape) != value.shape:
                raise GraphError(f"{_label(name, node)}: {key} of shape {value.shape} does not fit {tuple(target.shape)}")
            target.copy_(torch.tensor(value, dtype=target.dtype))


def _as_graph(data: ir.Graph | dict) -> tuple[ir.Graph, set[str]]:
    """The graph and the names of its nodes whose weights it holds (data written without them
    holds none)."""
    if isinstance(data, ir.Graph):
        return data, set(data.nodes)
    try:
        built = ir.Graph.from_data(data)
    except ValueError as err:
        raise GraphError(f"the model's graph cannot be read: {err}") from None
    light = {name for name, node in data["nodes"].items() if isinstance(node.get("weight"), dict)}
    return built, set(built.nodes) - light


def _checked(graph: ir.Graph, input_shape: Shape, num_classes: int) -> dict[str, Shape]:
    try:
        shapes = graph.shapes()
    except ValueError as err:
        raise GraphError(str(err)) from None
    if shapes[graph.input] != tuple(input_shape):
        raise GraphError(f"the graph takes input {shapes[graph.input]}; the model is declared with {tuple(input_shape)}")
    if shapes[graph.output] != (num_classes,):
        raise GraphError(f"the graph outputs shape {shapes[graph.output]}; the model is declared with {num_classes} classes")
    for name in graph.nodes:
        if isinstance(graph.nodes[name], ir.Delay):
            raise GraphError(f"{_label(name, graph.nodes[name])}: snnpipe builds delays as Loihi's timing only "
                             "(a one-step Delay in front of every synapse, `delay_shift`)")
    return shapes


def chain(graph: ir.Graph) -> list[str] | None:
    """The inner nodes from input to output if the graph is one chain through all of them."""
    order, node = [], graph.input
    while True:
        nexts = graph.outputs(node)
        if len(nexts) != 1 or len(graph.inputs(nexts[0])) != 1:
            return None
        node = nexts[0]
        if node == graph.output:
            return order if len(order) == len(graph.nodes) - 2 else None
        order.append(node)


def _modules(graph: ir.Graph, names: list[str], weighted: set[str], neuron: NeuronFactory) -> dict[str, nn.Module]:
    modules = {}
    for name in names:
        modules[name] = build_node(name, graph.nodes[name], neuron)
        if name in weighted:
            _load(modules[name], graph.nodes[name], name)
    return modules


def _default(input_shape: Shape, num_classes: int, skip: bool) -> dict:
    """Flatten, fc1 + LIF (16), [fc2 + LIF (16) with a skip from lif1 into lif2,] a readout: the
    smallest networks that exercise every part; weights left out."""
    lif = {"type": "CubaLIF", "current_decay": 1.0, "voltage_decay": 0.5, "threshold": 1.0}

    def affine(out: int, features: int) -> dict:
        return {"type": "Affine", "weight": {"shape": [out, features]}, "bias": {"shape": [out]}}

    inner = {"flatten": {"type": "Flatten"}, "fc1": affine(16, math.prod(input_shape)), "lif1": lif}
    if skip:
        inner.update(fc2=affine(16, 16), lif2=lif)
    inner["readout"] = affine(num_classes, 16)
    path = ["input", *inner, "output"]
    return {"nodes": {"input": {"type": "Input", "shape": list(input_shape)}, **inner,
                      "output": {"type": "Output", "shape": [num_classes]}},
            "edges": [list(e) for e in zip(path, path[1:])] + ([["lif1", "lif2"]] if skip else [])}


def _refuse_legacy(**legacy: Any) -> None:
    if any(value is not None for value in legacy.values()):
        raise GraphError("this checkpoint was imported by an older snnpipe (layer dicts, not a graph): "
                         "import its NIR file again (snnpipe import nir)")


@register_model("sequential", (1, 8, 8), "imported chain (e.g. `snnpipe import nir`): model_args hold the graph",
                imported=True)
def sequential(input_shape, num_classes, neuron, graph: Any = None, layers: Any = None):
    """Blocks ``layer<i>`` (each ending at a neuron) and ``head`` of a chain graph (module docstring)."""
    _refuse_legacy(layers=layers)
    built, weighted = _as_graph(graph if graph is not None else _default(input_shape, num_classes, skip=False))
    _checked(built, input_shape, num_classes)
    names = chain(built)
    if names is None:
        raise GraphError("the graph is not a chain: build it as model 'graph'")
    modules = _modules(built, names, weighted, neuron)
    groups: list[list[nn.Module]] = [[]]
    for name in names:
        groups[-1].append(modules[name])
        if isinstance(modules[name], Neuron):
            groups.append([])
    if not groups[-1] and len(groups) > 1:
        groups.pop()  # the network ends at a neuron: that last group is the head
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    for i, group in enumerate(groups[:-1]):
        blocks[f"layer{i + 1}"] = nn.Sequential(*group)
    blocks["head"] = nn.Sequential(*groups[-1])
    return blocks


class GraphBlock(nn.Module):
    """Named modules run in topological order; a node's input is the sum of its incoming edges.

    In Loihi's timing (`SpikingModel.timing`) every conv and linear delays by one step, so a term
    of a sum arrives after as many steps as there are synapses on its path: each term is delayed to
    the sum's latest (zeros before the first step), as the Loihi export's relay neurons align the
    branches on the chip (`align_shortcut`, the protocol `BasicBlock` follows).

    Attributes:
        layers: the modules, keyed by node name with dots made underscores.
        sources: for each node (and ``output``), the nodes whose outputs it sums, ``input`` being
            the block's input.
        result: the node whose output is the block's output (``output``: the sum into it).
    """

    def __init__(self, layers: "OrderedDict[str, nn.Module]", sources: dict[str, list[str]], result: str) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.sources = sources
        self.result = result
        self._delays: dict[str, dict[str, int]] = {}
        self._past: dict[tuple[str, str], list[Tensor]] = {}

    def _depths(self) -> tuple[dict[str, dict[str, int]], int]:
        """For each sum, the steps each term must wait for its latest (class docstring), and the
        synapses on the block's longest path."""
        depth, delays = {"input": 0}, {}
        for key in [*self.layers, *(["output"] if self.result == "output" else [])]:
            arriving = {source: depth[source] for source in self.sources[key]}
            latest = max(arriving.values())
            delays[key] = {source: latest - steps for source, steps in arriving.items() if latest - steps}
            depth[key] = latest + isinstance(self.layers[key] if key in self.layers else None, (nn.Conv2d, nn.Linear))
        return delays, depth[self.result]

    def synapse_depth(self) -> int:
        """The convs and linears on the longest path through the block: its steps in Loihi's timing."""
        return self._depths()[1]

    def align_shortcut(self, on: bool) -> None:
        """Delay each term of a sum to the sum's latest (class docstring), or stop doing so; either
        way the delays start empty."""
        self._delays = self._depths()[0] if on else {}
        self._past = {}

    def _sum(self, values: dict[str, Tensor], key: str) -> Tensor:
        total = None
        for source in self.sources[key]:
            term, delay = values[source], self._delays.get(key, {}).get(source, 0)
            if delay:  # only inside SpikingModel.timing, one call per step
                past = self._past.setdefault((key, source), [])
                past.append(term)
                term = past.pop(0) if len(past) > delay else torch.zeros_like(term)
            total = term if total is None else total + term
        return total

    def forward(self, x: Tensor) -> Tensor:
        values: dict[str, Tensor] = {"input": x}
        for key, module in self.layers.items():
            values[key] = module(self._sum(values, key))
        return self._sum(values, "output") if self.result == "output" else values[self.result]


def module_key(name: str) -> str:
    """A node name as a module name (torch refuses dots in one)."""
    return name.replace(".", "_")


@register_model("graph", (1, 8, 8), "imported graph, residual allowed (e.g. `snnpipe import nir`): model_args hold the graph",
                imported=True)
def graph(input_shape, num_classes, neuron, graph: Any = None, nodes: Any = None, edges: Any = None):
    """Blocks ``graph`` (a `GraphBlock`) and ``head`` of any graph (module docstring)."""
    _refuse_legacy(nodes=nodes, edges=edges)
    built, weighted = _as_graph(graph if graph is not None else _default(input_shape, num_classes, skip=True))
    _checked(built, input_shape, num_classes)
    if built.recurrent_edges():
        a, b = built.recurrent_edges()[0]
        raise GraphError(f"the graph has a recurrent edge {a!r} -> {b!r}: recurrent graphs are not supported")
    order = [n for n in built.order() if n not in (built.input, built.output)]
    keys = {name: module_key(name) for name in order}
    if len(set(keys.values())) != len(keys) or {"input", "output"} & set(keys.values()):
        raise GraphError("graph node names must differ in more than '.' and '_', and not be 'input' or 'output'")
    keys[built.input], keys[built.output] = "input", "output"
    sources = {keys[n]: [keys[s] for s in built.inputs(n)] for n in [*order, built.output]}
    into_output = built.inputs(built.output)
    head = into_output[0] if len(into_output) == 1 and into_output[0] in order \
        and len(built.inputs(into_output[0])) == 1 else None
    body = [n for n in order if n != head]
    modules = _modules(built, order, weighted, neuron)
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    result = keys[built.inputs(head)[0]] if head else "output"
    blocks["graph"] = GraphBlock(OrderedDict((keys[n], modules[n]) for n in body), sources, result)
    blocks["head"] = nn.Sequential(modules[head]) if head else nn.Sequential()
    return blocks


def layer_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Node name -> module of a model built from a graph, in module order: where a verifier reads
    the spikes layer by layer."""
    return {module.ir_name: module for module in model.modules() if hasattr(module, "ir_name")}


def graph_model_args(graph: ir.Graph) -> tuple[str, dict[str, Any]]:
    """The model name (``sequential`` for a chain, else ``graph``) and the ``model_args`` a
    checkpoint keeps for ``graph``: its structure without weights or metadata, and ``delay_shift``
    where its metadata says Loihi's timing."""
    data = graph.to_data(weights=False)
    data.pop("metadata")
    args: dict[str, Any] = {"graph": data}
    if graph.metadata.get("delay_shift"):
        args["delay_shift"] = True
    return ("sequential" if chain(graph) is not None else "graph"), args


__all__ = ["BUILDERS", "GraphBlock", "GraphError", "build_node", "chain", "graph", "graph_model_args",
           "layer_modules", "module_key", "sequential"]
