"""The one tracer: a model's one timestep, as the typed graph (`snnpipe.models.ir`).

``trace(model, input_shape) -> Graph`` runs ``torch.fx`` over the model's blocks (a `SpikingModel`:
the zoo's chains and residual blocks, an imported graph) or over any ``nn.Module`` (one call = one
timestep). What is a node:

- a **neuron** is a leaf by protocol, not by class: a module with ``ir_node() -> ir.Node`` (snnpipe's
  `CubaLIF`; the ANN twin's ReLU says there why it has none), or one the caller's ``adapter`` maps
  (a framework's neuron, `snnpipe.pipeline.profile.frameworks`);
- a **stateless layer** is looked up in `MODULES`, a ``{module type: mapper}`` table (``nn.Identity``
  and ``nn.Dropout`` map to no node: their input flows on);
- an **add** of two values is no node: its two sources become two edges into the next node (a node
  sums its incoming edges), which is how a residual add reads; ``out[0]`` of a module that returns
  a tuple (a framework neuron's (spikes, state)) is that module's node.

Anything else is a `TraceError` naming the module path; the exporters turn it into their
`UnsupportedLayerError`. Nodes are named by module path (``blocks.layer1.0.conv1``). BatchNorm is folded before (`hw_targets.folding`); one left over is
refused. A model in Loihi's timing (``delay_shift``) says so in the graph's metadata
(``delay_shift: True``): every synapse delivers one step late and a shortcut is aligned to its
branch's depth (`SpikingModel`), a property of the whole graph, not of a node.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, fx, nn

from snnpipe.errors import SnnpipeError
from snnpipe.models import ir

Shape = tuple[int, ...]


class TraceError(SnnpipeError):
    """A module or operation the graph has no node for: ``path`` and ``module`` name it, ``reason``
    says why (`hw_targets.UnsupportedLayerError` takes the three)."""

    def __init__(self, path: str, module: object, reason: str) -> None:
        super().__init__(f"{path or '<model>'} ({type(module).__name__}): {reason}")
        self.path, self.module, self.reason = path, module, reason


def _array(tensor: Tensor | None) -> np.ndarray | None:
    return None if tensor is None else tensor.detach().cpu().double().numpy()


def _linear(module: nn.Linear, in_shape: Shape, out_shape: Shape) -> ir.Node:
    return ir.Affine(_array(module.weight), _array(module.bias))


def _conv(module: nn.Conv2d, in_shape: Shape, out_shape: Shape) -> ir.Node:
    if module.padding_mode != "zeros":
        raise ValueError(f"the graph's convolutions pad with zeros, not {module.padding_mode!r}")
    kind = ir.Conv1d if isinstance(module, nn.Conv1d) else ir.Conv2d
    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    return kind(_array(module.weight), _array(module.bias), module.stride, padding, module.dilation, module.groups)


def _flatten(module: nn.Flatten, in_shape: Shape, out_shape: Shape) -> ir.Node:
    if module.start_dim == 0:
        raise ValueError("it flattens the batch axis")
    return ir.Flatten(module.start_dim - 1, module.end_dim - 1 if module.end_dim > 0 else module.end_dim)


def _avgpool2d(module: nn.AvgPool2d, in_shape: Shape, out_shape: Shape) -> ir.Node:
    kernel, padding = module.kernel_size, module.padding
    stride = module.stride if module.stride is not None else kernel
    if module.ceil_mode or (np.any(padding) and not module.count_include_pad):
        raise ValueError("the graph's pooling takes floor mode and counts padding")
    if module.divisor_override == 1:
        return ir.SumPool2d(kernel, stride, padding)
    if module.divisor_override is not None:
        raise ValueError(f"divisor_override={module.divisor_override} is neither mean nor sum")
    return ir.AvgPool2d(kernel, stride, padding)


def _adaptive_avgpool2d(module: nn.AdaptiveAvgPool2d, in_shape: Shape, out_shape: Shape) -> ir.Node:
    sizes, outs = in_shape[1:], out_shape[1:]
    if any(n % o for n, o in zip(sizes, outs)):
        raise ValueError(f"input {tuple(sizes)} is not a multiple of output {tuple(outs)}")
    kernel = [n // o for n, o in zip(sizes, outs)]  # equal windows: a plain average pool
    return ir.AvgPool2d(kernel, kernel, 0)


def _pass(module: nn.Module, in_shape: Shape, out_shape: Shape) -> None:
    return None


Mapper = Callable[[nn.Module, Shape, Shape], "ir.Node | None"]
#: Stateless module type -> its node (None: no node, the input flows on). Looked up along the MRO.
MODULES: dict[type, Mapper] = {
    nn.Linear: _linear,
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.Flatten: _flatten,
    nn.AvgPool2d: _avgpool2d,
    nn.AdaptiveAvgPool2d: _adaptive_avgpool2d,
    nn.Identity: _pass,
    nn.Dropout: _pass,
}
#: Why a module has no node, where there is more to say than that.
HINTS: dict[type, str] = {
    nn.MaxPool2d: "the graph has no max pooling (nor has NIR or Loihi); use average pooling (nn.AvgPool2d)",
    nn.BatchNorm1d: "a BatchNorm that does not directly follow a conv or linear cannot be folded",
    nn.BatchNorm2d: "a BatchNorm that does not directly follow a conv or linear cannot be folded",
    nn.RNNBase: "recurrent layers have no node in the graph",
}
#: A function adding two values: no node, both sources flow into the next node.
ADDS = (operator.add, torch.add)

Adapter = Callable[[nn.Module], "ir.Node | None"]


def _lookup(table: dict[type, Any], module: nn.Module) -> Any:
    return next((table[kind] for kind in type(module).__mro__ if kind in table), None)


class _Tracer(fx.Tracer):
    """Stops at neurons (by protocol), at `MODULES` and `HINTS` types, and at every module without
    children: those are the nodes."""

    def __init__(self, adapter: Adapter | None) -> None:
        super().__init__()
        self.adapter = adapter

    def is_leaf_module(self, module: nn.Module, qualname: str) -> bool:
        if hasattr(module, "ir_node") or _lookup(MODULES, module) or _lookup(HINTS, module):
            return True
        if self.adapter is not None:
            try:
                if self.adapter(module) is not None:
                    return True
            except ValueError:
                return True  # a neuron the adapter refuses: a leaf, refused by name below
        # an empty Sequential (a graph model's head where the output sums several nodes) is the identity: traced through
        return next(module.children(), None) is None and not isinstance(module, nn.Sequential)


class _Body(nn.Module):
    """A SpikingModel's blocks in order, one step (paths as in the model: ``blocks.<name>...``)."""

    def __init__(self, blocks: nn.ModuleDict) -> None:
        super().__init__()
        self.blocks = blocks

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks.values():
            x = block(x)
        return x


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def _fx_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else node.name


def trace(model: nn.Module, input_shape: Shape, adapter: Adapter | None = None) -> ir.Graph:
    """The graph of one timestep of ``model`` on one sample of ``input_shape`` (module docstring).

    Args:
        model: a `SpikingModel` (its blocks are traced) or any module called once per timestep;
            BatchNorm folded.
        input_shape: one sample, no batch axis.
        adapter: maps a module that is no snnpipe neuron to its IR neuron (None: not a neuron);
            a ValueError from it refuses the module with its message.

    Raises:
        TraceError: a module, operation or neuron setting the graph has no node for, by path.
    """
    blocks = getattr(model, "blocks", None)
    body = _Body(blocks) if isinstance(blocks, nn.ModuleDict) else model
    tracer = _Tracer(adapter)
    try:
        traced = fx.GraphModule(body, tracer.trace(body))
    except TraceError:
        raise
    except Exception as err:  # fx's errors (control flow on tensors ...) are many and untyped
        raise TraceError("", model, f"it cannot be traced into a graph ({_first_line(err)})") from None
    from torch.fx.passes.shape_prop import ShapeProp

    with torch.no_grad():
        try:  # first plainly: ShapeProp prints a traceback of its own before it raises
            traced(torch.zeros(1, *input_shape))
        except Exception as err:  # a layer's own shape error, in its own words
            raise TraceError("", model, f"it does not run on a sample of shape {(1, *input_shape)} ({_first_line(err)}); "
                                        "give one step of its input, (1, C, H, W)") from None
        ShapeProp(traced).propagate(torch.zeros(1, *input_shape))
    for module in model.modules():  # the probe step leaves state and activity counts behind
        for method in ("reset_state", "reset_activity"):
            if callable(getattr(module, method, None)):
                getattr(module, method)()

    def shape_of(node: fx.Node) -> Shape:
        meta = node.meta["tensor_meta"]
        meta = meta if hasattr(meta, "shape") else meta[0]  # a neuron returning (spikes, state)
        return tuple(meta.shape[1:])

    nodes: dict[str, ir.Node] = {"input": ir.Input(tuple(input_shape))}
    edges: list[tuple[str, str]] = []
    sources: dict[fx.Node, list[str]] = {}
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            sources[node] = ["input"]
        elif node.op == "call_module":
            module = traced.get_submodule(node.target)
            path = str(node.target)
            if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], fx.Node):
                raise TraceError(path, module, "it is called with more than one input")
            item = _node_of(module, path, adapter, shape_of(node.args[0]), shape_of(node))
            if item is None:
                sources[node] = sources[node.args[0]]
                continue
            name = path
            nodes[name] = item
            edges += [(source, name) for source in sources[node.args[0]]]
            sources[node] = [name]
        elif node.op == "call_function" and node.target in ADDS and not node.kwargs \
                and len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args):
            left, right = sources[node.args[0]], sources[node.args[1]]
            if set(left) & set(right):
                raise TraceError(_fx_path(node), node.target, "it adds a value to itself, which the graph's edges cannot say")
            sources[node] = left + right
        elif node.op == "call_function" and node.target is operator.getitem and (node.args[1] == 0 or not node.users) \
                and isinstance(node.args[0], fx.Node) and node.args[0] in sources:
            sources[node] = sources[node.args[0]]  # a neuron's (spikes, state): its spikes, or a state left unused
        elif node.op == "output":
            if not isinstance(node.args[0], fx.Node):
                raise TraceError("", model, "it returns more than one tensor per step")
            nodes["output"] = ir.Output(shape_of(node.args[0]))
            edges += [(source, "output") for source in sources[node.args[0]]]
        else:
            name = getattr(node.target, "__name__", str(node.target))
            raise TraceError(_fx_path(node), node.target, f"the operation {name!r} has no node in the graph")
    metadata = {"delay_shift": True} if getattr(model, "delay_steps", 0) else {}
    try:
        return ir.Graph(nodes, edges, metadata)
    except ValueError as err:
        raise TraceError("", model, str(err)) from None


def _node_of(module: nn.Module, path: str, adapter: Adapter | None, in_shape: Shape, out_shape: Shape) -> ir.Node | None:
    try:
        # a neuron by the protocol or by the adapter; a ValueError from either says why it has none
        neuron = module.ir_node() if hasattr(module, "ir_node") else adapter(module) if adapter is not None else None
        if neuron is not None:
            return neuron
        mapper = _lookup(MODULES, module)
        if mapper is not None:
            return mapper(module, in_shape, out_shape)
    except ValueError as err:
        raise TraceError(path, module, str(err)) from None
    hint = _lookup(HINTS, module) or f"the graph has no node for it (it maps {', '.join(k.__name__ for k in MODULES)} and neurons)"
    raise TraceError(path, module, hint)


__all__ = ["ADDS", "HINTS", "MODULES", "TraceError", "trace"]
