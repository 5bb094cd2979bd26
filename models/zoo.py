"""The model zoo: a registry of spiking networks, each with an ANN twin.

``create_model(name, input_shape=..., num_classes=..., neuron=..., spiking=...)`` builds a
`SpikingModel`. The ANN twin (``spiking=False``) has the same topology and the same state-dict keys
with ReLU in place of every CUBA LIF, so weights move between the two unchanged. Pooling is average
pooling throughout: it is linear (exact under rate-based backpropagation) and folds into the next
layer on Loihi. Every model's blocks are named, for the distillation stages to hook into.
"""

from __future__ import annotations

import inspect
import typing
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

from torch import nn

from snnpipe.arguments import PositiveFloat, PositiveInt, Sizes, check_keywords
from snnpipe.errors import SnnpipeError
from snnpipe.models.layers import BasicBlock, BatchNorm1d, BatchNorm2d, SpikingModel
from snnpipe.models.neurons import CubaLIF, NeuronParams, ReLU


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and the input it is designed for.

    Attributes:
        imported: the model holds a network that ``snnpipe import`` describes in its arguments (its
            layers, nodes and edges), not one of the zoo's: ``snnpipe train`` does not offer it.
    """

    name: str
    builder: Callable[..., "OrderedDict[str, nn.Module]"]
    default_input: tuple[int, int, int]
    description: str
    imported: bool = False


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, default_input: tuple[int, int, int], description: str, imported: bool = False):
    """Decorator: register a builder ``(input_shape, num_classes, neuron, **kw) -> blocks``
    (``imported``: `ModelEntry`)."""

    def wrap(builder):
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = ModelEntry(name, builder, default_input, description, imported)
        return builder

    return wrap


def model_arguments(name: str) -> dict[str, Any]:
    """The model-specific keyword arguments of a registered model and their annotations (an
    unannotated one takes anything); every model also takes ``delay_shift`` (`MODEL_KEYWORDS`)."""
    builder = _entry(name).builder
    hints = typing.get_type_hints(builder, include_extras=True)
    return {p: hints.get(p, Any) for p in inspect.signature(builder).parameters
            if p not in ("input_shape", "num_classes", "neuron")}


#: The keyword arguments every model takes beside its builder's: Loihi's timing (`SpikingModel`).
MODEL_KEYWORDS: dict[str, Any] = {"delay_shift": bool}


def check_model_arguments(name: str, model_args: dict, arguments: dict[str, Any] | None = None) -> dict:
    """``model_args`` checked against the builder's annotated parameters and `MODEL_KEYWORDS`
    (``arguments``: both, as the catalog holds them), coerced (YAML lists become tuples); an
    unknown name or a wrong value is one line."""
    annotations = {**model_arguments(name), **MODEL_KEYWORDS} if arguments is None else arguments
    return check_keywords(annotations, model_args, f"--model-arg of {name!r}", f"model {name!r}")


def describe_model(name: str, model_args: dict) -> str:
    """A model as a user would ask for it: ``mlp --model-arg hidden=[16, 16]``, or ``convnet`` (its
    default arguments)."""
    shown = topology(model_args)
    args = " ".join("--model-arg " + f"{k}={list(v) if isinstance(v, tuple) else v}".replace(" ", "")
                    for k, v in sorted(shown.items()))
    return f"{name} {args}".rstrip() if args else f"{name} (default arguments)"


def topology(model_args: dict) -> dict:
    """The arguments that shape the weights: ``delay_shift`` changes the timing, not the weights."""
    return {k: v for k, v in model_args.items() if k != "delay_shift"}


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise SnnpipeError(f"unknown model {name!r}: choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def create_model(
    name: str,
    *,
    input_shape: Sequence[int] | None = None,
    num_classes: int = 10,
    neuron: NeuronParams | None = None,
    spiking: bool = True,
    **kwargs,
) -> SpikingModel:
    """Build a zoo model, or its ANN twin with ``spiking=False``.

    Raises:
        SnnpipeError: unknown name or keyword argument, or an input the model cannot take.
    """
    entry = _entry(name)
    kwargs = check_model_arguments(name, kwargs)
    delay_shift = kwargs.pop("delay_shift", False)
    shape = tuple(input_shape) if input_shape is not None else entry.default_input
    if len(shape) != 3 or min(shape) < 1:
        raise SnnpipeError(f"input_shape {shape} is not (channels, height, width)")
    if num_classes < 2:
        raise SnnpipeError(f"num_classes={num_classes} is out of range: at least 2")
    params = neuron or NeuronParams()
    make_neuron = partial(CubaLIF, params) if spiking else ReLU
    blocks = entry.builder(input_shape=shape, num_classes=num_classes, neuron=make_neuron, **kwargs)
    model = SpikingModel(blocks, spiking=spiking, delay_shift=delay_shift)
    model.input_shape, model.num_classes = shape, num_classes
    model.zoo_name, model.zoo_args, model.neuron_params = name, dict(kwargs, delay_shift=True) if delay_shift else kwargs, params
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@register_model("mlp", (1, 8, 8), "fully connected: flatten, [Linear + LIF] per hidden layer, Linear")
def mlp(input_shape, num_classes, neuron, hidden: Sizes = (128,), batch_norm: bool = False):
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    width = input_shape[0] * input_shape[1] * input_shape[2]
    for i, size in enumerate(hidden):
        layers: list[nn.Module] = [nn.Flatten()] if i == 0 else []
        layers.append(nn.Linear(width, size, bias=not batch_norm))
        if batch_norm:
            layers.append(BatchNorm1d(size))
        layers.append(neuron())
        blocks[f"hidden{i + 1}"] = nn.Sequential(*layers)
        width = size
    head: list[nn.Module] = [] if hidden else [nn.Flatten()]
    blocks["head"] = nn.Sequential(*head, nn.Linear(width, num_classes))
    return blocks


def _conv_bn(in_channels: int, out_channels: int, neuron, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        BatchNorm2d(out_channels),
        neuron(),
    ]


def _pooled(size: int, pools: int, name: str) -> int:
    for _ in range(pools):
        if size < 2:
            raise SnnpipeError(f"input too small for {name}: {pools} 2x2 poolings need more pixels")
        size //= 2
    return size


@register_model("convnet", (1, 28, 28), "small conv net for 28x28: 2 x [conv3x3 + BN + LIF + avgpool2], FC + BN + LIF, FC")
def convnet(input_shape, num_classes, neuron, channels: Sizes = (32, 64), hidden: PositiveInt = 128):
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    in_channels = input_shape[0]
    for i, out_channels in enumerate(channels):
        blocks[f"block{i + 1}"] = nn.Sequential(*_conv_bn(in_channels, out_channels, neuron), nn.AvgPool2d(2))
        in_channels = out_channels
    h = _pooled(input_shape[1], len(channels), "convnet")
    w = _pooled(input_shape[2], len(channels), "convnet")
    blocks["head"] = nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * h * w, hidden, bias=False),
        BatchNorm1d(hidden),
        neuron(),
        nn.Linear(hidden, num_classes),
    )
    return blocks


_VGG11 = (64, "A", 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A")
_VGG_SMALL = (32, 32, "A", 64, 64, "A")


def _vgg(input_shape, num_classes, neuron, config, width: float, name: str):
    """VGG-style blocks: ``config`` lists conv widths (3x3 conv + BN + LIF) and ``"A"`` (2x2 average
    pooling, which closes a stage); ``width`` scales every channel count; one FC classifier."""
    if not width > 0:
        raise SnnpipeError(f"width={width} is out of range: it must be > 0")
    if not config or any(item != "A" and not (isinstance(item, int) and item > 0) for item in config):
        raise SnnpipeError(f"config={list(config)!r} is not a VGG configuration: channel counts > 0 and \"A\" for pooling")
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    layers: list[nn.Module] = []
    in_channels, stage = input_shape[0], 1
    for item in config:
        if item == "A":
            blocks[f"stage{stage}"] = nn.Sequential(*layers, nn.AvgPool2d(2))
            layers, stage = [], stage + 1
        else:
            out_channels = max(1, round(item * width))
            layers += _conv_bn(in_channels, out_channels, neuron)
            in_channels = out_channels
    if layers:
        blocks[f"stage{stage}"] = nn.Sequential(*layers)
    pools = sum(item == "A" for item in config)
    h, w = _pooled(input_shape[1], pools, name), _pooled(input_shape[2], pools, name)
    blocks["head"] = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * h * w, num_classes))
    return blocks


@register_model("vgg11", (3, 32, 32), "VGG-11 (conv + BN + LIF, average pooling), one FC classifier")
def vgg11(input_shape, num_classes, neuron, width: PositiveFloat = 1.0):
    """VGG-11 (Simonyan & Zisserman 2015, configuration A); ``width`` scales every channel count."""
    return _vgg(input_shape, num_classes, neuron, _VGG11, width, "vgg11")


@register_model("vgg", (1, 28, 28), "VGG-style for small images: [conv3x3 + BN + LIF] x2 + avgpool, twice; FC")
def vgg(input_shape, num_classes, neuron, config: Sequence = _VGG_SMALL, width: PositiveFloat = 1.0):
    """A VGG-style net of any depth: ``config`` as VGG's tables (widths, ``"A"`` for pooling)."""
    return _vgg(input_shape, num_classes, neuron, tuple(config), width, "vgg")


_VGG4 = (32, "A", 64, "A", 128, "A", 256)


@register_model("vgg4", (1, 28, 28), "VGG-style in 4 stages for 28x28: conv3x3 + BN + LIF per stage, avgpool after 3; FC")
def vgg4(input_shape, num_classes, neuron, width: PositiveFloat = 1.0):
    """Four stages of one conv each (32, 64, 128, 256 channels times ``width``), the first three closed
    by 2x2 average pooling: three branch points for ESD and four blocks for EAGD and joint training."""
    return _vgg(input_shape, num_classes, neuron, _VGG4, width, "vgg4")


def _resnet(input_shape, num_classes, neuron, stem: int, stages, head: Sequence[int], stem_stride: int = 1,
            global_pool: bool = True):
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    blocks["stem"] = nn.Sequential(*_conv_bn(input_shape[0], stem, neuron, stem_stride))
    in_channels = stem
    for i, (channels, repeats, stride) in enumerate(stages):
        layer = []
        for r in range(repeats):
            layer.append(BasicBlock(in_channels, channels, stride if r == 0 else 1, neuron))
            in_channels = channels
        blocks[f"layer{i + 1}"] = nn.Sequential(*layer)
    if global_pool:
        fc: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    else:
        fc = [nn.Flatten()]
        h, w = input_shape[1:]
        for stride in [stem_stride] + [s for _, _, s in stages]:
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
        in_channels *= h * w
    for size in head:
        fc += [nn.Linear(in_channels, size, bias=False), BatchNorm1d(size), neuron()]
        in_channels = size
    blocks["head"] = nn.Sequential(*fc, nn.Linear(in_channels, num_classes))
    return blocks


@register_model("resnet", (1, 28, 28), "small ResNet for 28x28: stride-2 stem, then per width a stage of BasicBlocks "
                "(the first identity, later stages open with a stride-2 1x1 projection), FC + BN + LIF, FC")
def resnet(input_shape, num_classes, neuron, channels: Sizes = (8, 16), blocks: PositiveInt = 1, hidden: PositiveInt = 64):
    """A reduced-width ResNet (He et al. 2016; spiking blocks as `BasicBlock`): a 3x3 stride-2 stem of
    ``channels[0]``, then one stage per width of ``blocks`` BasicBlocks, stride 1 for the first stage
    (identity shortcuts) and 2 after (a 1x1 projection opens the stage), then the whole last map (no
    global pooling: at this width its channel means alone leave the classifier 16 numbers) into FC
    ``hidden`` + BN + LIF, FC."""
    if not channels or min(channels) < 1 or blocks < 1 or hidden < 1:
        raise SnnpipeError(f"channels={list(channels)!r}, blocks={blocks}, hidden={hidden}: at least one width >= 1, "
                           "one block and one hidden neuron")
    stages = [(width, blocks, 1 if i == 0 else 2) for i, width in enumerate(channels)]
    return _resnet(input_shape, num_classes, neuron, stem=channels[0], stages=stages, head=(hidden,), stem_stride=2,
                   global_pool=False)


@register_model("resnet18", (3, 32, 32), "ResNet-18, CIFAR variant: 3x3 stride-1 stem of 64, stages [2,2,2,2]")
def resnet18(input_shape, num_classes, neuron):
    stages = [(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)]
    return _resnet(input_shape, num_classes, neuron, stem=64, stages=stages, head=())


@register_model("resnet19", (3, 32, 32), "ResNet-19 (tdBN): 128 stem, stages [3,3,2] at 128/256/512, FC 512-256-classes")
def resnet19(input_shape, num_classes, neuron):
    stages = [(128, 3, 1), (256, 3, 2), (512, 2, 2)]
    return _resnet(input_shape, num_classes, neuron, stem=128, stages=stages, head=(256,))
