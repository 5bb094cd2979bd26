"""Trace a `SpikingModel` into the graph the Loihi export quantizes: nodes of neurons fed by branches.

The model's blocks are walked in execution order; each module is looked up in `LEAVES`, a {module
type: role} table. A module with no role (max pooling, an imported graph, recurrence, anything Loihi
cannot express here) raises `UnsupportedLayerError` naming its module path.

- A *source* is the spikes of the input or of a node, with the average poolings and the Flatten
  that follow it (they fold into the next synapse, `quantize`).
- A *branch* is a synapse (conv or linear) reading a source, or an identity from a source (the
  residual block's identity shortcut: the spikes themselves, weight 1).
- A *node* is the neuron that follows the sum of its branches, named after the path of its first
  branch's synapse; the trailing synapse without a neuron is the readout node.

`BasicBlock` (``models/layers.py``), ``lif2(bn2(conv2(lif1(bn1(conv1(x))))) + shortcut(x))``,
becomes two nodes: ``conv1`` (one branch, from x) and ``conv2`` with two branches, conv2 from the
first and the shortcut (identity, or its 1x1 conv with the BatchNorm folded) from x. BatchNorm has
been folded (`folding.fold_batchnorm`) before the walk: what is left of it is ``nn.Identity``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from snnpipe.hw_targets import UnsupportedLayerError
from snnpipe.models import SpikingModel
from snnpipe.models.graph import GraphBlock
from snnpipe.models.layers import BasicBlock
from snnpipe.models.neurons import CubaLIF, Neuron

TARGET = "loihi"
NIR_HINT = "the Loihi export takes chains and the zoo's residual blocks; export this model with --target nir"


@dataclass(frozen=True)
class Role:
    """What a module type is in the traced graph: ``synapse``, ``neuron``, ``pool``, ``flatten``,
    ``skip``, ``residual``, or ``unsupported`` with the hint that the error gives."""

    kind: str
    hint: str = ""


_UNFOLDED_BN = ("this BatchNorm does not directly follow a conv or linear, so it cannot be folded; move it "
                "after one, or export with --target nir")
LEAVES: dict[type, Role] = {
    nn.Conv2d: Role("synapse"),
    nn.Linear: Role("synapse"),
    CubaLIF: Role("neuron"),
    nn.AvgPool2d: Role("pool"),
    nn.AdaptiveAvgPool2d: Role("pool"),
    nn.Flatten: Role("flatten"),
    nn.Identity: Role("skip"),
    nn.Dropout: Role("skip"),
    BasicBlock: Role("residual"),
    nn.MaxPool2d: Role("unsupported", "max pooling has no Loihi layer (netx cannot read pool layers); "
                       "train with average pooling, or export with --target nir"),
    nn.AdaptiveMaxPool2d: Role("unsupported", "max pooling has no Loihi layer; export with --target nir"),
    GraphBlock: Role("unsupported", f"an imported graph is not traced for Loihi: {NIR_HINT}"),
    nn.RNNBase: Role("unsupported", f"recurrence has no Loihi layer here: {NIR_HINT}"),
    nn.BatchNorm1d: Role("unsupported", _UNFOLDED_BN),
    nn.BatchNorm2d: Role("unsupported", _UNFOLDED_BN),
}


def _role(module: nn.Module) -> Role | None:
    for cls in type(module).__mro__:
        if cls in LEAVES:
            return LEAVES[cls]
    if isinstance(module, Neuron):  # the ANN twin's ReLU
        return Role("unsupported", "this is the ANN twin (ReLU, not spiking neurons); export a spiking checkpoint")
    return None


@dataclass
class Leaf:
    """A module with its role and the shape of one sample before and after it."""

    path: str
    module: nn.Module
    role: Role
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


@dataclass(frozen=True)
class Source:
    """Spikes of ``node`` (``input`` or a node's name) through ``pools`` and an optional Flatten;
    ``shape`` is one sample after them."""

    node: str
    shape: tuple[int, ...]
    pools: tuple[Leaf, ...] = ()
    flatten: bool = False


@dataclass
class Branch:
    """One term of a node's input: ``synapse`` on ``source``, or (``synapse`` None) the identity of
    ``source`` named ``path``."""

    source: Source
    synapse: Leaf | None
    path: str

    @property
    def identity(self) -> bool:
        return self.synapse is None


@dataclass
class TracedNode:
    """A neuron (None: the non-spiking readout) after the sum of ``branches``."""

    name: str
    branches: list[Branch]
    neuron: Leaf | None
    out_shape: tuple[int, ...]
    block: str = ""  # the residual block it closes, for messages


@dataclass
class _Walker:
    spikes: Source | None
    nodes: list[TracedNode] = field(default_factory=list)
    pending: list[Branch] | None = None
    pending_shape: tuple[int, ...] = ()

    def visit(self, path: str, module: nn.Module) -> None:
        role = _role(module)
        if role is None and isinstance(module, nn.Sequential):
            for name, child in module.named_children():
                self.visit(f"{path}.{name}" if path else name, child)
            return
        if role is None:
            role = Role("unsupported", f"it has no Loihi equivalent: {NIR_HINT}")
        if role.kind == "unsupported":
            raise UnsupportedLayerError(path, module, TARGET, role.hint)
        if role.kind == "residual":
            self.residual(path, module)
            return
        getattr(self, role.kind)(path, module, role)

    def skip(self, path: str, module: nn.Module, role: Role) -> None:
        pass

    def _shape_after(self, module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
        with torch.no_grad():
            return tuple(module(torch.zeros(1, *shape)).shape[1:])

    def pool(self, path: str, module: nn.Module, role: Role) -> None:
        if self.pending is not None:
            raise UnsupportedLayerError(path, module, TARGET, "average pooling between a synapse and its neuron "
                                        "cannot be folded; pool after the neuron")
        if self.spikes.flatten:
            raise UnsupportedLayerError(path, module, TARGET, "pooling after a Flatten has no image to pool")
        shape = self.spikes.shape
        leaf = Leaf(path, module, role, shape, self._shape_after(module, shape))
        self.spikes = replace(self.spikes, shape=leaf.out_shape, pools=self.spikes.pools + (leaf,))

    def flatten(self, path: str, module: nn.Module, role: Role) -> None:
        if self.pending is not None:
            raise UnsupportedLayerError(path, module, TARGET, "a Flatten between a synapse and its neuron")
        shape = self.spikes.shape
        self.spikes = replace(self.spikes, shape=(math.prod(shape),), flatten=self.spikes.flatten or len(shape) > 1)

    def synapse(self, path: str, module: nn.Module, role: Role) -> None:
        if self.pending is not None:
            raise UnsupportedLayerError(path, module, TARGET, "two synaptic layers with no neuron between them; "
                                        "Loihi gives every layer neurons")
        shape = self.spikes.shape
        if isinstance(module, nn.Linear) and len(shape) != 1:
            raise UnsupportedLayerError(path, module, TARGET, "a Linear on an image needs a Flatten before it")
        if isinstance(module, nn.Conv2d) and len(shape) != 3:
            raise UnsupportedLayerError(path, module, TARGET, "a Conv2d needs a (C, H, W) input")
        leaf = Leaf(path, module, role, shape, self._shape_after(module, shape))
        self.pending, self.pending_shape = [Branch(self.spikes, leaf, path)], leaf.out_shape
        self.spikes = None

    def neuron(self, path: str, module: nn.Module, role: Role, block: str = "") -> None:
        if self.pending is None:
            raise UnsupportedLayerError(path, module, TARGET, "a neuron with no conv or linear before it has no "
                                        "Loihi layer")
        shape = self.pending_shape
        name = self.pending[0].path
        self.nodes.append(TracedNode(name, self.pending, Leaf(path, module, role, shape, shape), shape, block))
        self.spikes, self.pending = Source(name, shape), None

    def residual(self, path: str, block: BasicBlock) -> None:
        x = self.spikes
        if self.pending is not None:
            raise UnsupportedLayerError(path, block, TARGET, "a residual block right after a synapse with no neuron")
        if x.pools or x.flatten:
            raise UnsupportedLayerError(path, block, TARGET, "pooling or a Flatten right before a residual block would "
                                        "fold into both of its branches; pool after the block's first conv")
        for name in ("conv1", "bn1", "lif1", "conv2", "bn2"):
            self.visit(f"{path}.{name}", getattr(block, name))
        main, main_shape = self.pending, self.pending_shape
        self.spikes, self.pending = x, None
        shortcut = f"{path}.shortcut"
        if _role(block.shortcut) is not None and _role(block.shortcut).kind == "skip":
            branch, shape = Branch(x, None, shortcut), x.shape
        else:
            self.visit(shortcut, block.shortcut)
            if self.pending is None or len(self.pending) != 1:
                raise UnsupportedLayerError(shortcut, block.shortcut, TARGET, "a shortcut must be the identity or one "
                                            "conv (with its BatchNorm)")
            branch, shape = self.pending[0], self.pending_shape
        if shape != main_shape:
            raise UnsupportedLayerError(shortcut, block.shortcut, TARGET, f"the shortcut gives {shape}; the block's main "
                                        f"branch gives {main_shape}")
        self.pending, self.pending_shape = main + [branch], main_shape
        lif2 = block.lif2
        role = _role(lif2)
        if role is None or role.kind != "neuron":
            raise UnsupportedLayerError(f"{path}.lif2", lif2, TARGET, role.hint if role else "not a CUBA LIF neuron")
        self.neuron(f"{path}.lif2", lif2, role, block=path)


def trace_graph(model: SpikingModel, input_shape: tuple[int, ...]) -> list[TracedNode]:
    """The model's nodes in execution order (module docstring); the model has BatchNorm folded.

    Raises:
        UnsupportedLayerError: a module Loihi cannot express, named by its path.
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleDict):
        raise UnsupportedLayerError("", model, TARGET, "only snnpipe SpikingModels (named blocks) can be traced")
    walker = _Walker(Source("input", tuple(input_shape)))
    for name, block in blocks.items():
        walker.visit(f"blocks.{name}", block)
    if walker.pending is not None:  # the readout
        branch = walker.pending[0]
        walker.nodes.append(TracedNode(branch.path, walker.pending, None, walker.pending_shape))
    elif walker.spikes is not None and (walker.spikes.pools or walker.spikes.flatten):
        last = walker.spikes.pools[-1] if walker.spikes.pools else None
        raise UnsupportedLayerError(last.path if last else "", last.module if last else model, TARGET,
                                    "nothing after it to fold it into")
    if not walker.nodes:
        raise UnsupportedLayerError("", model, TARGET, "the model has no conv or linear layer")
    return walker.nodes
