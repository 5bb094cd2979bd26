"""A framework's ``nn.Module`` straight into the IR, without its NIR writer: ``module_graph(module,
sample) -> ir.Graph``, and ``deploy(module, sample, out)`` that takes it on to a target (Loihi).

The module is copied (the user's model is left as it was) and prepared for the one tracer
(`snnpipe.models.tracer`), which traces one call as one timestep:

- every neuron layer a registered framework recognizes (`pipeline.profile.frameworks`) is replaced
  by a stand-in that holds the IR node its adapter gives (`pipeline.neuron_adapters`) by the neuron
  protocol (``ir_node()``), keeps the layer's path as the node's name, and is called as the
  framework's layer is: ``lif(x)`` for snnTorch (``init_hidden=True``), SpikingJelly and Sinabs,
  ``z, state = lif(x, state)`` for Norse cells and snnTorch without ``init_hidden``. No framework code
  runs on the probe step, so a layout of the whole sequence (Sinabs' (B*T, ...), SpikingJelly's
  multi-step mode) needs no sample of T steps;
- SpikingJelly's multi-step layers are set to single steps, Sinabs' ``SumPool2d`` becomes the torch
  sum pool the tracer maps (`FRAMEWORK_LAYERS`);
- a model that returns ``(output, state)`` (Norse's ``SequentialState``) is traced for its output.

What the IR's CUBA LIF cannot hold is refused by the adapter in one line naming the module path.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from torch import Tensor, nn

from snnpipe.errors import SnnpipeError
from snnpipe.models import ir
from snnpipe.pipeline.profile.frameworks import FRAMEWORKS, framework_of


class DeployError(SnnpipeError):
    """A framework module that cannot be taken into the IR: one line naming the module path."""


class _Neuron(nn.Module):
    """The IR node of a framework's neuron by the neuron protocol: the identity on the probe step."""

    def __init__(self, node: ir.Node, name: str) -> None:
        super().__init__()
        self.node, self.ir_name = node, name

    def ir_node(self) -> ir.Node:
        return self.node

    def forward(self, x: Tensor) -> Tensor:
        return x


class _StandIn(nn.Module):
    """Called as the framework's layer is: returns the spikes, or (spikes, *states) where it returns
    its states too (None: the graph is one step from rest)."""

    def __init__(self, node: ir.Node, name: str, states: int) -> None:
        super().__init__()
        self.neuron, self.states = _Neuron(node, name), states

    def forward(self, x: Tensor, *state: Any) -> Any:
        spikes = self.neuron(x)
        return (spikes, *[None] * self.states) if self.states else spikes


def _states_returned(module: nn.Module, framework: str) -> int:
    """How many state values the layer returns beside its spikes (snnTorch: one per state variable
    unless ``init_hidden`` without ``output``; Norse: one state tuple)."""
    if framework == "norse":
        return 1
    if framework == "snntorch" and (not module.init_hidden or getattr(module, "output", False)):
        return {"Synaptic": 2, "RSynaptic": 2, "Alpha": 3}.get(type(module).__name__, 1)
    return 0


def _sum_pool(module: nn.Module) -> nn.Module:
    return nn.AvgPool2d(module.kernel_size, module.stride, divisor_override=1, ceil_mode=module.ceil_mode)


#: Framework layers that are a torch layer the tracer maps: ``"module.Class": converter``.
FRAMEWORK_LAYERS: dict[str, Callable[[nn.Module], nn.Module]] = {
    "sinabs.layers.pool2d.SumPool2d": _sum_pool,
}


class _Output(nn.Module):
    """The model's output of one step, without the state a Norse model returns beside it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        return out[0] if isinstance(out, tuple) else out


def prepared(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with stand-ins for its neurons and torch layers for its framework layers."""
    model = copy.deepcopy(module).eval()
    for path, child in list(model.named_modules()):
        if getattr(child, "step_mode", None) == "m":  # SpikingJelly: one call is one step here
            child.step_mode = "s"
        framework = framework_of(child)
        convert = FRAMEWORK_LAYERS.get(f"{type(child).__module__}.{type(child).__name__}")
        if framework is not None and framework.spiking and framework.name in FRAMEWORKS:
            if framework.to_ir is None:
                continue  # snnpipe's own neurons follow the protocol themselves
            try:
                node = framework.to_ir(child)
            except ValueError as err:
                raise DeployError(f"{path or '<model>'} ({err})") from None
            replacement = _StandIn(node, path, _states_returned(child, framework.name))
        elif convert is not None:
            replacement = convert(child)
        else:
            continue
        if not path:
            raise DeployError(f"the model is itself a neuron layer ({type(child).__name__}); give the network")
        parent, _, name = path.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, name, replacement)
    return model


def module_graph(module: nn.Module, sample: Tensor) -> ir.Graph:
    """The IR graph of a framework's network (module docstring).

    Args:
        module: the network, called once per timestep (Norse: with its state, which may be left out).
        sample: one step of input with a batch axis, (B, C, H, W) (what the frameworks' NIR writers
            take); only its shape is used.

    Raises:
        DeployError: a neuron the CUBA LIF cannot hold, by module path.
        TraceError: a layer or operation the graph has no node for, by module path.
    """
    from snnpipe.models.tracer import trace

    graph = trace(_Output(prepared(module)), tuple(sample.shape[1:]))
    rename = {name: name[len("model."):] if name.startswith("model.") else name for name in graph.nodes}
    return ir.Graph({rename[n]: node for n, node in graph.nodes.items()},
                    [(rename[a], rename[b]) for a, b in graph.edges], graph.metadata)


__all__ = ["DeployError", "FRAMEWORK_LAYERS", "module_graph", "prepared"]
