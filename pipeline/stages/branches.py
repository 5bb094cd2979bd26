"""Auxiliary classifier branches read from intermediate block outputs (rates or ANN features).

Both are ANN modules (ReLU): they run on time-averaged spike rates, as in the ESD and Joint A-SNN
reference code, and are dropped at export.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from snnpipe.models import SpikingModel


def block_shapes(model: SpikingModel) -> list[tuple[int, ...]]:
    """The output shape (without batch) of every block, from a dry run on zeros."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        h = torch.zeros(2, *model.input_shape, device=next(model.parameters()).device)
        model.reset_state()
        shapes = []
        for block in model.blocks.values():
            h = block(h)
            shapes.append(tuple(h.shape[1:]))
        model.reset_state()
    for neuron in model.neurons():
        neuron.reset_activity()
    model.train(was_training)
    return shapes


class DepthwiseSeparableBlock(nn.Module):
    """ESD's auxiliary unit (official code's ``DeepConv``): two depthwise-separable convs (depthwise
    3x3, pointwise 1x1, BN, ReLU), the first with ``stride``, plus a 1x1-conv + BN shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, in_channels, 1, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, in_channels, 3, 1, 1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def esd_branch(shape: tuple[int, ...], final: tuple[int, ...], num_classes: int) -> nn.Module:
    """Depthwise-separable units from a block's feature shape down to the last feature block's,
    halving the size and growing the channels per unit, then global pooling and a classifier."""
    if len(shape) == 1:
        width = shape[0]
        return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, num_classes))
    channels, size = shape[0], shape[1]
    target_channels = final[0] if len(final) == 3 else channels
    target_size = final[1] if len(final) == 3 else 1
    units: list[nn.Module] = []
    steps = max(1, round(math.log2(max(size, 1) / max(target_size, 1))))
    for i in range(steps):
        out = target_channels if i == steps - 1 else min(channels * 2, target_channels)
        units.append(DepthwiseSeparableBlock(channels, out, stride=2 if size > target_size else 1))
        channels, size = out, -(-size // 2) if size > target_size else size
    return nn.Sequential(*units, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


class PooledClassifier(nn.Module):
    """Joint A-SNN's branch: global average pooling (4-D features) and one fully connected layer.
    ``features(x)`` is the pooled vector the hint loss compares; calling it gives the logits."""

    def __init__(self, shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(shape[0], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The mean over the feature map, (B, C, H, W) -> (B, C); a vector (B, C) as it is.

        Pooled by an average pool with the map's size, not ``adaptive_avg_pool2d``: the same mean,
        but its gradient keeps the feature map's layout, where the adaptive pool's comes back
        contiguous (NCHW) and makes the channels_last backward behind it convert.
        """
        if x.dim() == 2:
            return x
        return F.avg_pool2d(x, x.shape[-2:]).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def feature_mapper(shape: tuple[int, ...]) -> nn.Module:
    """EAGD's learnable map from SNN rates to the ANN's feature space: 1x1 conv + BN (or linear + BN)."""
    if len(shape) == 1:
        return nn.Sequential(nn.Linear(shape[0], shape[0], bias=False), nn.BatchNorm1d(shape[0]))
    return nn.Sequential(nn.Conv2d(shape[0], shape[0], 1, bias=False), nn.BatchNorm2d(shape[0]))
