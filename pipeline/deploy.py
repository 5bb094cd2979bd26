"""A framework's ``nn.Module`` straight into the IR, without its NIR writer: ``module_graph(module,
sample) -> ir.Graph``; ``module_checkpoint`` makes it an snnpipe checkpoint (as ``snnpipe import nir``
makes a file one), and ``deploy(module, sample, out, dataset=...)`` exports that to a target (Loihi by
default: quantized, checked in the bit-accurate simulator against the float model, ``verify="lava"``
spike for spike in Lava), all as for a zoo model.

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
- a model that returns ``(output, state)`` (Norse's ``SequentialState``) is traced for its output;
- a BatchNorm right after a conv or linear is folded into it (`hw_targets.folding`), as every export does.

What the IR's CUBA LIF cannot hold is refused by the adapter in one line naming the module path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch import Tensor, nn

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets import ExportResult
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.models import ir
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.profile.frameworks import framework_of, neuron_layers


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
    """A copy of ``module`` (eval mode, BatchNorm folded) with stand-ins for its neurons and torch layers
    for its framework layers."""
    model = fold_batchnorm(module).eval()  # a copy, every BatchNorm after a conv or linear folded into it
    for path, child in list(model.named_modules()):
        if getattr(child, "step_mode", None) == "m":  # SpikingJelly: one call is one step here
            child.step_mode = "s"
        framework = framework_of(child)
        convert = FRAMEWORK_LAYERS.get(f"{type(child).__module__}.{type(child).__name__}")
        if framework is not None and framework.spiking:
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

    model = prepared(module)
    # nodes are named by module path in the user's model: a neuron by its layer's, not its stand-in's
    neurons = {f"model.{path}": m.ir_name for path, m in model.named_modules() if isinstance(m, _Neuron)}
    graph = trace(_Output(model), tuple(sample.shape[1:]))
    rename = {n: neurons.get(n, n[len("model."):] if n.startswith("model.") else n) for n in graph.nodes}
    return ir.Graph({rename[n]: node for n, node in graph.nodes.items()},
                    [(rename[a], rename[b]) for a, b in graph.edges], graph.metadata)


def module_checkpoint(module: nn.Module, sample: Tensor, *, dataset: str, timesteps: int, encoding: str = "direct",
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      split_seed: int = 0) -> Checkpoint:
    """The checkpoint of a framework's network (`module_graph`) for the data it was trained on.

    Args:
        module, sample: as for `module_graph`.
        dataset: a registered dataset whose images the network takes (its test set checks exports).
        timesteps: T the network runs for.
        encoding: ``direct``, ``rate`` or ``latency``: how the images became its input.
        mean, std: the direct encoding's per-channel normalization (default 0 and 1: the images as they are).
        split_seed: the seed of the dataset's train/test split.

    Raises:
        SnnpipeError: a network the IR cannot hold (by module path), data that does not fit it.
    """
    from snnpipe.models import create_model
    from snnpipe.models.graph import graph_model_args
    from snnpipe.models.params import NeuronParams
    from snnpipe.pipeline.data import DATASETS, DataSpec

    graph = module_graph(module, sample)
    if dataset not in DATASETS:
        raise DeployError(f"dataset {dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
    shapes = graph.shapes()
    image, classes = DATASETS[dataset].input_shape, DATASETS[dataset].num_classes
    if tuple(shapes[graph.input]) != tuple(image) or tuple(shapes[graph.output]) != (classes,):
        raise DeployError(f"the network maps {shapes[graph.input]} to {shapes[graph.output]}; {dataset} has "
                          f"{'x'.join(map(str, image))} images and {classes} classes")
    channels = image[0]
    spec = DataSpec(dataset, image, classes, tuple(mean) if mean is not None else (0.0,) * channels,
                    tuple(std) if std is not None else (1.0,) * channels, split_seed)
    first = next((n for n in graph.nodes.values() if isinstance(n, ir.CubaLIF)), None)
    fields = ("current_decay", "voltage_decay", "threshold")
    scalar = first is not None and not any(isinstance(getattr(first, f), np.ndarray) for f in fields)
    neuron = NeuronParams(current_decay=first.current_decay, voltage_decay=first.voltage_decay, threshold=first.threshold,
                          reset=first.reset, refractory_steps=first.refractory_steps) if scalar else NeuronParams()
    name, args = graph_model_args(graph)
    model = create_model(name, input_shape=image, num_classes=classes, neuron=neuron, graph=graph)
    frameworks = sorted({f.name for _, (_, f) in neuron_layers(module).items()})
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Checkpoint(model_name=name, model_args=args, spiking=True, neuron=neuron, timesteps=timesteps,
                      encoding=encoding, data=spec, state_dict=state,
                      history=[{"stage": "deploy", "source": type(module).__name__, "frameworks": frameworks}])


def deploy(module: nn.Module, sample: Tensor, out: str | Path, *, dataset: str, timesteps: int,
           encoding: str = "direct", mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
           split_seed: int = 0, target: str = "loihi", checkpoint: str | Path | None = None, force: bool = False,
           data_dir: str | Path | None = None, samples: int | None = None, **options: Any) -> ExportResult:
    """Export a framework's network to ``target`` without its NIR writer (module docstring).

    Args:
        module, sample: the network and one step of its input (`module_graph`).
        out: the file to write (a netx or Loihi graph file for ``loihi``).
        dataset, timesteps, encoding, mean, std, split_seed: its data (`module_checkpoint`).
        target: a registered export target (``loihi``, ``nir``, ``onnx``).
        checkpoint: where to keep the snnpipe checkpoint too (to profile or fine-tune it later).
        force: overwrite existing files.
        data_dir, samples: where the dataset lives; the first N test samples only.
        options: the target's options (``max_drop``, ``verify="lava"`` ...), as for `pipeline.export.export`.

    Raises:
        SnnpipeError: what the graph, the target or the gate refuses, in one line.
    """
    from snnpipe.pipeline.export import export

    ckpt = module_checkpoint(module, sample, dataset=dataset, timesteps=timesteps, encoding=encoding, mean=mean,
                             std=std, split_seed=split_seed)
    if checkpoint is not None:
        if os.path.lexists(checkpoint) and not force:
            raise DeployError(f"{checkpoint} exists; pass force=True to overwrite it or give another path")
        ckpt.save(checkpoint)
    return export(ckpt, target, out, force=force, data_dir=data_dir, samples=samples, **options)


__all__ = ["DeployError", "FRAMEWORK_LAYERS", "deploy", "module_checkpoint", "module_graph", "prepared"]
