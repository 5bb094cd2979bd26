"""Models described by data: a layer list (``sequential``) or a graph of layers (``graph``).

These are the models an imported network becomes (``snnpipe import nir``): their structure lives in
the checkpoint's ``model_args`` as plain types, their weights in its ``state_dict``, so a checkpoint
rebuilds them with `create_model` like any zoo model, ANN twin included (ReLU for every neuron).

A layer is a dict with a ``type`` and a ``name`` (the node's name in the source file, kept for
messages and for matching spikes layer by layer)::

    {"type": "flatten"}                                    # (C, H, W) -> (C*H*W,)
    {"type": "linear", "in_features": 64, "out_features": 10, "bias": True}
    {"type": "conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": [3, 3],
     "stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1, "bias": False}
    {"type": "avgpool2d" | "sumpool2d", "kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0]}
    {"type": "cuba_lif", "current_decay": 1.0, "voltage_decay": 0.5, "threshold": 1.0}

``cuba_lif`` is the CUBA LIF of `snnpipe.models.neurons` with its own decays and threshold (an
imported network may use different ones per layer); the surrogate gradient comes from the
checkpoint's neuron parameters. ``sumpool2d`` is ``nn.AvgPool2d(divisor_override=1)``: the sum over
the window (NIR's SumPool2d).

- ``sequential(layers=[...])``: the layers in order, grouped into blocks that each end at a neuron
  (``layer1``, ``layer2`` ...) and a ``head`` of what follows the last neuron.
- ``graph(nodes=[...], edges=[[src, dst], ...])``: a directed acyclic graph whose endpoints
  ``input`` and ``output`` are the model's input and output. A node with several incoming edges
  gets their sum (NIR's convention), which is how a residual add is written. When the output comes
  from a single-input node, that node is the ``head`` block; everything else is the ``graph`` block.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from snnpipe.errors import SnnpipeError
from snnpipe.models.neurons import CubaLIF
from snnpipe.models.zoo import register_model

Shape = tuple[int, ...]


class GraphError(SnnpipeError):
    """A layer list or graph that does not describe a network: the message names the layer."""


def _pair(value: Any, layer: dict, key: str) -> tuple[int, int]:
    if isinstance(value, (int, float)):
        return int(value), int(value)
    if isinstance(value, str):
        return value  # type: ignore[return-value]  # conv padding "same" / "valid"
    values = [int(v) for v in value]
    if len(values) == 1:
        return values[0], values[0]
    if len(values) != 2:
        raise GraphError(f"layer {_label(layer)}: {key}={value!r} is not one or two integers")
    return values[0], values[1]


def _label(layer: dict) -> str:
    return repr(layer.get("name", layer.get("type", "?")))


def _field(layer: dict, key: str) -> Any:
    if key not in layer:
        raise GraphError(f"layer {_label(layer)} ({layer.get('type')}) has no {key!r}")
    return layer[key]


def _window(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution or pooling window: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


# Each layer type: (build the module, output shape of one sample from its input shape).
def _build_flatten(layer: dict, neuron: Callable[[], nn.Module]) -> nn.Module:
    return nn.Flatten()


def _shape_flatten(layer: dict, shape: Shape) -> Shape:
    return (math.prod(shape),)


def _build_linear(layer: dict, neuron: Callable[[], nn.Module]) -> nn.Module:
    return nn.Linear(int(_field(layer, "in_features")), int(_field(layer, "out_features")),
                     bias=bool(layer.get("bias", True)))


def _shape_linear(layer: dict, shape: Shape) -> Shape:
    if shape != (int(layer["in_features"]),):
        raise GraphError(f"layer {_label(layer)} (linear) takes {layer['in_features']} features; it gets shape {shape}")
    return (int(layer["out_features"]),)


def _build_conv2d(layer: dict, neuron: Callable[[], nn.Module]) -> nn.Module:
    padding = _pair(layer.get("padding", 0), layer, "padding")
    return nn.Conv2d(
        int(_field(layer, "in_channels")), int(_field(layer, "out_channels")),
        _pair(_field(layer, "kernel_size"), layer, "kernel_size"),
        stride=_pair(layer.get("stride", 1), layer, "stride"), padding=padding,
        dilation=_pair(layer.get("dilation", 1), layer, "dilation"), groups=int(layer.get("groups", 1)),
        bias=bool(layer.get("bias", True)),
    )


def _shape_conv2d(layer: dict, shape: Shape) -> Shape:
    if len(shape) != 3 or shape[0] != int(layer["in_channels"]):
        raise GraphError(f"layer {_label(layer)} (conv2d) takes {layer['in_channels']} channels (C, H, W); it gets shape {shape}")
    kernel = _pair(layer["kernel_size"], layer, "kernel_size")
    stride = _pair(layer.get("stride", 1), layer, "stride")
    dilation = _pair(layer.get("dilation", 1), layer, "dilation")
    padding = _pair(layer.get("padding", 0), layer, "padding")
    if padding == "same":
        spatial = shape[1:]
    elif padding == "valid":
        spatial = tuple(_window(n, k, s, 0, d) for n, k, s, d in zip(shape[1:], kernel, stride, dilation))
    else:
        spatial = tuple(_window(n, k, s, p, d) for n, k, s, p, d in zip(shape[1:], kernel, stride, padding, dilation))
    if min(spatial) < 1:
        raise GraphError(f"layer {_label(layer)} (conv2d): input {shape} is smaller than its kernel {kernel}")
    return (int(layer["out_channels"]), *spatial)


def _build_pool(divisor: int | None) -> Callable[[dict, Callable[[], nn.Module]], nn.Module]:
    def build(layer: dict, neuron: Callable[[], nn.Module]) -> nn.Module:
        kernel = _pair(_field(layer, "kernel_size"), layer, "kernel_size")
        stride = _pair(layer.get("stride", kernel), layer, "stride")
        return nn.AvgPool2d(kernel, stride, _pair(layer.get("padding", 0), layer, "padding"), divisor_override=divisor)

    return build


def _shape_pool(layer: dict, shape: Shape) -> Shape:
    if len(shape) != 3:
        raise GraphError(f"layer {_label(layer)} ({layer['type']}) takes (C, H, W); it gets shape {shape}")
    kernel = _pair(layer["kernel_size"], layer, "kernel_size")
    stride = _pair(layer.get("stride", kernel), layer, "stride")
    padding = _pair(layer.get("padding", 0), layer, "padding")
    spatial = tuple(_window(n, k, s, p) for n, k, s, p in zip(shape[1:], kernel, stride, padding))
    if min(spatial) < 1:
        raise GraphError(f"layer {_label(layer)} ({layer['type']}): input {shape} is smaller than its window {kernel}")
    return (shape[0], *spatial)


def _build_cuba_lif(layer: dict, neuron: Callable[[], nn.Module]) -> nn.Module:
    probe = neuron()
    if not isinstance(probe, CubaLIF):
        return probe  # the ANN twin: ReLU in place of every neuron
    params = dataclasses.replace(
        probe.params,
        current_decay=float(_field(layer, "current_decay")),
        voltage_decay=float(_field(layer, "voltage_decay")),
        threshold=float(_field(layer, "threshold")),
        refractory_steps=int(layer.get("refractory_steps", 0)),
    )
    return CubaLIF(params)


def _same_shape(layer: dict, shape: Shape) -> Shape:
    return shape


LAYERS: dict[str, tuple[Callable[[dict, Callable[[], nn.Module]], nn.Module], Callable[[dict, Shape], Shape]]] = {
    "flatten": (_build_flatten, _shape_flatten),
    "linear": (_build_linear, _shape_linear),
    "conv2d": (_build_conv2d, _shape_conv2d),
    "avgpool2d": (_build_pool(None), _shape_pool),
    "sumpool2d": (_build_pool(1), _shape_pool),
    "cuba_lif": (_build_cuba_lif, _same_shape),
}


def _layer_kind(layer: Any):
    if not isinstance(layer, dict) or layer.get("type") not in LAYERS:
        kind = layer.get("type") if isinstance(layer, dict) else type(layer).__name__
        raise GraphError(f"layer {kind!r} is not a layer type snnpipe builds; known: {', '.join(LAYERS)}")
    return LAYERS[layer["type"]]


def build_layer(layer: dict, neuron: Callable[[], nn.Module]) -> nn.Module:
    """The module of one layer dict (weights freshly initialized)."""
    return _layer_kind(layer)[0](layer, neuron)


def layer_output_shape(layer: dict, shape: Shape) -> Shape:
    """The shape of one sample after ``layer``, or GraphError naming the layer where it does not fit."""
    return tuple(int(n) for n in _layer_kind(layer)[1](layer, tuple(shape)))


def _check_output(shape: Shape, num_classes: int, what: str) -> None:
    if shape != (num_classes,):
        raise GraphError(f"the {what} outputs shape {shape}; the model is declared with {num_classes} classes")


def _default_layers(input_shape: Shape, num_classes: int) -> list[dict]:
    """Flatten, Linear + LIF (16), Linear: the smallest network that exercises every part."""
    features = math.prod(input_shape)
    return [
        {"type": "flatten", "name": "flatten"},
        {"type": "linear", "name": "fc1", "in_features": features, "out_features": 16, "bias": True},
        {"type": "cuba_lif", "name": "lif1", "current_decay": 1.0, "voltage_decay": 0.5, "threshold": 1.0},
        {"type": "linear", "name": "fc2", "in_features": 16, "out_features": num_classes, "bias": True},
    ]


@register_model("sequential", (1, 8, 8), "imported layer list (e.g. `snnpipe import nir`): model_args hold the layers",
                imported=True)
def sequential(input_shape, num_classes, neuron, layers: Sequence[dict] | None = None):
    """Blocks ``layer<i>`` (each ending at a neuron) and ``head`` built from a list of layer dicts."""
    layers = [dict(layer) for layer in (layers if layers is not None else _default_layers(input_shape, num_classes))]
    if not layers:
        raise GraphError("a sequential model needs at least one layer")
    shape: Shape = tuple(input_shape)
    for layer in layers:
        shape = layer_output_shape(layer, shape)
    _check_output(shape, num_classes, "last layer")
    groups: list[list[nn.Module]] = [[]]
    for layer in layers:
        groups[-1].append(build_layer(layer, neuron))
        if layer["type"] == "cuba_lif":
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

    def forward(self, x: Tensor) -> Tensor:
        values: dict[str, Tensor] = {"input": x}
        for key, module in self.layers.items():
            values[key] = module(_sum(values, self.sources[key]))
        return _sum(values, self.sources["output"]) if self.result == "output" else values[self.result]


def _sum(values: dict[str, Tensor], names: list[str]) -> Tensor:
    total = values[names[0]]
    for name in names[1:]:
        total = total + values[name]
    return total


def module_key(name: str) -> str:
    """A node name as a module name (torch refuses dots in one)."""
    return name.replace(".", "_")


def _default_graph(input_shape: Shape, num_classes: int) -> tuple[list[dict], list[list[str]]]:
    """Flatten, fc1 + LIF, fc2 + LIF with a skip from the first LIF into the second, fc3."""
    features = math.prod(input_shape)
    lif = {"type": "cuba_lif", "current_decay": 1.0, "voltage_decay": 0.5, "threshold": 1.0}
    nodes = [
        {"type": "flatten", "name": "flatten"},
        {"type": "linear", "name": "fc1", "in_features": features, "out_features": 16, "bias": True},
        {**lif, "name": "lif1"},
        {"type": "linear", "name": "fc2", "in_features": 16, "out_features": 16, "bias": True},
        {**lif, "name": "lif2"},
        {"type": "linear", "name": "fc3", "in_features": 16, "out_features": num_classes, "bias": True},
    ]
    edges = [["input", "flatten"], ["flatten", "fc1"], ["fc1", "lif1"], ["lif1", "fc2"], ["fc2", "lif2"],
             ["lif1", "lif2"], ["lif2", "fc3"], ["fc3", "output"]]
    return nodes, edges


def topological_order(names: Sequence[str], edges: Sequence[Sequence[str]]) -> list[str]:
    """``names`` ordered so that every edge goes forward (Kahn's algorithm, stable in ``names``);
    GraphError for a cycle, an unknown endpoint, or a node cut off from the input or the output."""
    known = set(names) | {"input", "output"}
    preds: dict[str, list[str]] = {n: [] for n in [*names, "output"]}
    succs: dict[str, list[str]] = {n: [] for n in ["input", *names]}
    for edge in edges:
        if len(edge) != 2:
            raise GraphError(f"edge {edge!r} is not a pair [source, target]")
        src, dst = str(edge[0]), str(edge[1])
        if src not in known or dst not in known or src == "output" or dst == "input":
            raise GraphError(f"edge {src!r} -> {dst!r} names no node of the graph")
        if src in preds[dst]:
            raise GraphError(f"edge {src!r} -> {dst!r} appears twice")
        preds[dst].append(src)
        succs[src].append(dst)
    pending = {n: sum(p != "input" for p in preds[n]) for n in names}
    ready = [n for n in names if pending[n] == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for nxt in succs[node]:
            if nxt != "output":
                pending[nxt] -= 1
                if pending[nxt] == 0:
                    ready.append(nxt)
    if len(order) != len(names):
        stuck = sorted(set(names) - set(order))
        raise GraphError(f"the graph has a cycle through {', '.join(map(repr, stuck[:3]))}: recurrent graphs are not supported")
    reached = {"input"}
    for node in order:
        if any(p in reached for p in preds[node]):
            reached.add(node)
    live = {"output"}
    for node in reversed(order):
        if any(s in live for s in succs[node]):
            live.add(node)
    for node in order:
        if not preds[node] or node not in reached:
            raise GraphError(f"node {node!r} is not reached from the input")
        if node not in live:
            raise GraphError(f"node {node!r} does not reach the output")
    if not preds["output"]:
        raise GraphError("nothing reaches the output")
    return order


@register_model("graph", (1, 8, 8), "imported graph, residual allowed (e.g. `snnpipe import nir`): model_args hold nodes and edges",
                imported=True)
def graph(input_shape, num_classes, neuron, nodes: Sequence[dict] | None = None, edges: Sequence[Sequence[str]] | None = None):
    """Blocks ``graph`` (a `GraphBlock`) and ``head`` built from node dicts and [source, target] edges."""
    if nodes is None and edges is None:
        nodes, edges = _default_graph(input_shape, num_classes)
    if nodes is None or edges is None:
        raise GraphError("a graph model needs both nodes and edges")
    layers = {str(_field(node, "name")): dict(node) for node in nodes}
    if len(layers) != len(nodes) or {"input", "output"} & set(layers):
        raise GraphError("graph node names must be unique and not 'input' or 'output'")
    keys = {name: module_key(name) for name in layers}
    if len(set(keys.values())) != len(keys):
        raise GraphError("two graph node names differ only in '.' and '_'")
    order = topological_order(list(layers), edges)
    sources: dict[str, list[str]] = {n: [] for n in [*order, "output"]}
    for src, dst in edges:
        sources[str(dst)].append(str(src))
    shapes: dict[str, Shape] = {"input": tuple(input_shape)}
    for name in order:
        incoming = {shapes[s] for s in sources[name]}
        if len(incoming) != 1:
            raise GraphError(f"node {name!r} sums inputs of different shapes {sorted(incoming)}")
        shapes[name] = layer_output_shape(layers[name], incoming.pop())
    outgoing = {shapes[s] for s in sources["output"]}
    if len(outgoing) != 1:
        raise GraphError(f"the output sums inputs of different shapes {sorted(outgoing)}")
    _check_output(outgoing.pop(), num_classes, "graph")
    head_node = sources["output"][0] if len(sources["output"]) == 1 else None
    if head_node is not None and len(sources[head_node]) != 1:
        head_node = None
    body = [n for n in order if n != head_node]
    result = sources[head_node][0] if head_node is not None else "output"
    block_sources = {keys[n]: [keys.get(s, s) for s in sources[n]] for n in body}
    block_sources["output"] = [keys.get(s, s) for s in sources["output"]]
    built = OrderedDict((keys[n], build_layer(layers[n], neuron)) for n in body)
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    blocks["graph"] = GraphBlock(built, block_sources, keys.get(result, result))
    blocks["head"] = nn.Sequential(build_layer(layers[head_node], neuron)) if head_node else nn.Sequential()
    return blocks


def layer_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Node name -> module of a ``sequential`` or ``graph`` model built by `create_model`, in layer
    order: where an importer puts the weights and a verifier reads the spikes."""
    name = getattr(model, "zoo_name", None)
    args = getattr(model, "zoo_args", {})
    if name == "sequential":
        layers = args.get("layers") or _default_layers(model.input_shape, model.num_classes)
        modules = [m for block in model.blocks.values() for m in block]
        return {str(layer.get("name", i)): m for i, (layer, m) in enumerate(zip(layers, modules))}
    if name == "graph":
        nodes = args.get("nodes") or _default_graph(model.input_shape, model.num_classes)[0]
        found = dict(model.blocks["graph"].layers.items())
        missing = [module_key(n["name"]) for n in nodes if module_key(n["name"]) not in found]
        found.update(zip(missing, model.blocks["head"]))  # the head holds at most the one node peeled off
        return {n["name"]: found[module_key(n["name"])] for n in nodes}
    raise GraphError(f"model {name!r} is not a sequential or graph model")


def load_layer_weights(model: nn.Module, weights: dict[str, dict[str, Tensor]]) -> None:
    """Copy ``{node name: {"weight": ..., "bias": ...}}`` into the model's layers (shapes checked)."""
    modules = layer_modules(model)
    for name, tensors in weights.items():
        module = modules[name]
        for key, value in tensors.items():
            target = getattr(module, key, None)
            if not isinstance(target, Tensor) or tuple(target.shape) != tuple(value.shape):
                have = None if not isinstance(target, Tensor) else tuple(target.shape)
                raise GraphError(f"layer {name!r}: {key} of shape {tuple(value.shape)} does not fit {have}")
            with torch.no_grad():
                target.copy_(torch.as_tensor(value, dtype=target.dtype))


__all__ = ["GraphBlock", "GraphError", "LAYERS", "build_layer", "graph", "layer_modules", "layer_output_shape",
           "load_layer_weights", "module_key", "sequential", "topological_order"]
