"""Quantization-aware training for Loihi: ``snnpipe train --quantize loihi``.

Every conv and linear that the export turns into a netx layer computes with the weights Loihi will
hold, with straight-through gradients (Bengio et al. 2013; Jacob et al. 2018 for the BatchNorm
fold). For a layer with weight W followed by a BatchNorm of scale ``s = gamma / sqrt(running_var +
eps)`` (per output channel; 1 without BatchNorm)::

    W_used = W + (Q(W s) / s - W).detach(),   Q(w) = clip(round(w / 2^e), -128, 127) 2^e

with the exponent e that `quantize.layer_exponent` gives the folded weights at this step, from the
threshold of the layer's neuron (the readout: from the weights alone). Synapses summed into one
neuron (a residual block's conv2 and its shortcut) share one exponent, from the largest folded
weight of all of them, an identity shortcut counting as 1.0, as the export quantizes them. The BatchNorm still
normalizes with batch statistics during training; in eval mode (running statistics) the folded
weight ``W_used s`` is exactly the grid the export writes, so the exported weights are the trained
ones. Average pooling folded into the next layer divides its weights by k^2 = 4 (2x2 pooling): a
power of two, which moves e and keeps the mantissas.

``--quantize loihi`` also sets the model argument ``delay_shift`` (`SpikingModel`): the forward runs
in Lava's timing, every layer one step late with its bias at every step, for T + L steps. Without
it, the first steps of a deep layer see its bias alone, which cost 2.1 points on Fashion-MNIST.
What the export does that this forward does not (each small, and measured by the export report):
the bias is rounded to one weight unit 2^(e-1) and clipped to 13 bits, the neuron's fixed-point
rounding (rtz of the decays, 2^-6 of a weight unit) is not modeled, and the readout's exponent rises
at export where its calibrated voltage range would overflow (`quantize.READOUT_HEADROOM`), a coarser
grid than the one trained (the export report gives its weight error).

The checkpoint keeps the latent float weights W under their usual names, so it loads into the plain
model; export quantizes them with the same `quantize.layer_exponent` and `quantize.fake_quantize`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.loihi.quantize import fake_quantize, layer_exponent
from snnpipe.hw_targets.folding import batchnorm_pairs, batchnorm_scale, fold_batchnorm
from snnpipe.hw_targets.loihi.grouping import layer_parameter, loihi_layers, naming_nodes, traced
from snnpipe.models import SpikingModel


def _folded(module: nn.Module, batchnorm: nn.Module | None) -> tuple[Tensor, Tensor]:
    """(weight x BatchNorm scale, the scale shaped to multiply the weight)."""
    weight = module.weight
    if batchnorm is not None:
        scale = batchnorm_scale(batchnorm).view(-1, *([1] * (weight.dim() - 1)))
    else:
        scale = torch.ones((), dtype=weight.dtype, device=weight.device)
    return weight * scale, scale


def _fake_quantized_weight(module: nn.Module) -> Tensor:
    batchnorm, threshold, group, identity = module._loihi
    weight = module.weight
    with torch.no_grad():
        folded, scale = _folded(module, batchnorm)
        # the node's exponent: every synapse summed into it (and an identity shortcut's 1.0) shares it
        max_abs = max([float(_folded(m, bn)[0].abs().max()) for m, bn in group] + [1.0 if identity else 0.0])
        if max_abs == 0.0:
            return weight
        exponent = layer_exponent(max_abs, threshold)
        safe = torch.where(scale == 0, torch.ones_like(scale), scale)
        target = fake_quantize(folded, exponent) / safe
    return weight + (target - weight).detach()


class LoihiQuantConv2d(nn.Conv2d):
    """`nn.Conv2d` computing with Loihi's quantized weights (module docstring); same parameters."""

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, _fake_quantized_weight(self), self.bias)


class LoihiQuantLinear(nn.Linear):
    """`nn.Linear` computing with Loihi's quantized weights (module docstring); same parameters."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, _fake_quantized_weight(self), self.bias)


_QUANT_CLASSES = {nn.Conv2d: LoihiQuantConv2d, nn.Linear: LoihiQuantLinear}


def apply_loihi_qat(model: SpikingModel) -> SpikingModel:
    """Make every netx layer of ``model`` compute with Loihi's weights, in place.

    Raises:
        SnnpipeError: the model cannot be exported to Loihi (the trace's error, prefixed), so that
            training does not start on a network the export will refuse.
    """
    if not getattr(model, "spiking", True):
        raise SnnpipeError("--quantize loihi trains a spiking model; this stage trains the ANN twin")
    input_shape = getattr(model, "input_shape", None)
    if input_shape is None:
        raise SnnpipeError("--quantize loihi needs a zoo model (it knows its input shape)")
    try:
        folded = fold_batchnorm(model)
        with naming_nodes(folded):
            nodes = loihi_layers(traced(folded, input_shape))
    except SnnpipeError as err:
        raise SnnpipeError(f"--quantize loihi: {err}") from None
    batchnorm_after = {id(layer): bn for _, layer, _, bn in batchnorm_pairs(model)}  # the pairs the export folds
    for node in nodes:
        modules = [model.get_submodule(b.path) for b in node.branches if not b.identity]
        group = [(m, batchnorm_after.get(id(m))) for m in modules]
        identity = any(b.identity for b in node.branches)
        threshold = layer_parameter(node.neuron_name, node.neuron, "threshold") if node.neuron is not None else None
        for module, batchnorm in group:
            module.__class__ = _QUANT_CLASSES[type(module)] if type(module) in _QUANT_CLASSES else type(module)
            module._loihi = (batchnorm, threshold, group, identity)
    return model


#: ``--quantize`` schemes: name -> function applied to the freshly built model.
QUANTIZERS: dict[str, Callable[[SpikingModel], SpikingModel]] = {"loihi": apply_loihi_qat}


def apply_quantization(model: SpikingModel, scheme: str) -> SpikingModel:
    """Apply a ``--quantize`` scheme to ``model`` (in place) and return it.

    Raises:
        SnnpipeError: an unknown scheme, or a model the scheme cannot quantize.
    """
    if scheme not in QUANTIZERS:
        raise SnnpipeError(f"unknown --quantize {scheme!r}: choose one of {', '.join(QUANTIZERS)}")
    return QUANTIZERS[scheme](model)
