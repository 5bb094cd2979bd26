"""The nodes that reshape one sample: sum and average pooling, Flatten."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from snnpipe.models.ir.node import Node, Shape, check_int, check_ints, field_error, register_node, window_length


@dataclass(frozen=True, eq=False)
class _Pool2d(Node):
    kernel_size: Any
    stride: Any = None
    padding: Any = 0

    def __post_init__(self) -> None:
        self._set("kernel_size", check_ints(self, "kernel_size", self.kernel_size, 2, 1))
        self._set("stride", check_ints(self, "stride", self.kernel_size if self.stride is None else self.stride, 2, 1))
        self._set("padding", check_ints(self, "padding", self.padding, 2, 0))
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise field_error(self, "padding", self.padding, f"is more than half the window {self.kernel_size}")

    def output_shape(self, shape: Shape) -> Shape:
        name = type(self).__name__
        if len(shape) != 3:
            raise ValueError(f"{name} takes (C, H, W); it gets shape {tuple(shape)}")
        spatial = tuple(window_length(n, k, s, p) for n, k, s, p in zip(shape[1:], self.kernel_size, self.stride, self.padding))
        if min(spatial) < 1:
            raise ValueError(f"{name}: input {tuple(shape)} is smaller than its window {self.kernel_size}")
        return (shape[0], *spatial)


@register_node
@dataclass(frozen=True, eq=False)
class SumPool2d(_Pool2d):
    """The sum over each window (zero padding)."""


@register_node
@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """The mean over each window, padding counted (PyTorch's default, NIR's)."""


@register_node
@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Dims ``start_dim`` .. ``end_dim`` of one sample (no batch axis; negative from the end) as one."""

    start_dim: int = 0
    end_dim: int = -1

    def __post_init__(self) -> None:
        self._set("start_dim", check_int(self, "start_dim", self.start_dim))
        self._set("end_dim", check_int(self, "end_dim", self.end_dim))

    def output_shape(self, shape: Shape) -> Shape:
        dims = len(shape)
        start = self.start_dim + dims if self.start_dim < 0 else self.start_dim
        end = self.end_dim + dims if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < dims:
            raise ValueError(f"Flatten({self.start_dim}, {self.end_dim}) does not fit shape {tuple(shape)}")
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])
