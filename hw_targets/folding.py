"""BatchNorm folding: the first step of every export.

In eval mode BatchNorm is affine, ``y = gamma (z - mu) / sqrt(var + eps) + beta``, so after a conv
or linear ``z = W x + b`` it folds into it::

    W' = W * s,   b' = (b - mu) * s + beta,   s = gamma / sqrt(var + eps)   (per output channel)

`fold_batchnorm` returns a copy of the model with every such pair folded and the BatchNorm replaced
by ``nn.Identity``, so module paths (and error messages that name them) stay the same.
"""

from __future__ import annotations

import copy
from typing import Iterator

import torch
from torch import Tensor, nn

_FOLDABLE = (nn.Conv2d, nn.Linear)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def batchnorm_scale(bn: nn.modules.batchnorm._BatchNorm) -> Tensor:
    """``s = gamma / sqrt(var + eps)``, per channel, from the running statistics."""
    return bn.weight / torch.sqrt(bn.running_var + bn.eps)


def batchnorm_pairs(module: nn.Module) -> Iterator[tuple[nn.Module, nn.Module, str, nn.modules.batchnorm._BatchNorm]]:
    """Every conv or linear directly followed by a BatchNorm in the same container, at any depth:
    (the container, the layer, the BatchNorm's name in the container, the BatchNorm)."""
    previous = None
    for name, child in module.named_children():
        if isinstance(child, _BATCHNORMS) and isinstance(previous, _FOLDABLE):
            yield module, previous, name, child
            previous = None
            continue
        yield from batchnorm_pairs(child)
        previous = child


def _fold_pair(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    with torch.no_grad():
        scale = batchnorm_scale(bn)
        shape = [-1] + [1] * (layer.weight.dim() - 1)
        layer.weight.mul_(scale.view(shape))
        bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        folded = (bias - bn.running_mean) * scale + bn.bias
        if layer.bias is None:
            layer.bias = nn.Parameter(folded)
        else:
            layer.bias.copy_(folded)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with each BatchNorm that directly follows a conv or linear
    in the same container folded into it. Other BatchNorms are left in place for the exporter to
    refuse or handle."""
    folded = copy.deepcopy(model).eval()
    for container, layer, name, bn in list(batchnorm_pairs(folded)):
        _fold_pair(layer, bn)
        setattr(container, name, nn.Identity())
    return folded


def remaining_batchnorms(model: nn.Module) -> list[str]:
    """Module paths of BatchNorms that could not be folded."""
    return [name for name, m in model.named_modules() if isinstance(m, _BATCHNORMS)]
