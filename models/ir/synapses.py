"""The nodes that weight their input: Affine (NIR's Affine and Linear), Conv1d, Conv2d, and Scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from snnpipe.models.ir.node import (Node, Param, Shape, check_array, check_int, check_ints, check_param, field_error,
                                    register_node, window_length)


@register_node
@dataclass(frozen=True, eq=False)
class Affine(Node):
    """y = W x + b on a flat sample: weight [out, in], bias [out] or None (NIR's Linear)."""

    weight: np.ndarray
    bias: np.ndarray | None = None
    WEIGHTS: ClassVar[tuple[str, ...]] = ("weight", "bias")
    ROLE: ClassVar[str] = "synapse"

    def __post_init__(self) -> None:
        self._set("weight", check_array(self, "weight", self.weight, 2))
        if self.bias is not None:
            self._set("bias", check_array(self, "bias", self.bias, 1))
            if len(self.bias) != len(self.weight):
                raise field_error(self, "bias", self.bias.shape, f"needs {len(self.weight)} values, one per output")

    def output_shape(self, shape: Shape) -> Shape:
        if tuple(shape) != (self.weight.shape[1],):
            raise ValueError(f"Affine takes {self.weight.shape[1]} features; it gets shape {tuple(shape)}")
        return (self.weight.shape[0],)


@dataclass(frozen=True, eq=False)
class _Conv(Node):
    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    WEIGHTS: ClassVar[tuple[str, ...]] = ("weight", "bias")
    ROLE: ClassVar[str] = "synapse"
    DIMS: ClassVar[int] = 2

    def __post_init__(self) -> None:
        dims = self.DIMS
        self._set("weight", check_array(self, "weight", self.weight, dims + 2))
        out = self.weight.shape[0]
        self._set("groups", check_int(self, "groups", self.groups, 1))
        if out % self.groups:
            raise field_error(self, "groups", self.groups, f"does not divide the {out} output channels")
        if self.bias is not None:
            self._set("bias", check_array(self, "bias", self.bias, 1))
            if len(self.bias) != out:
                raise field_error(self, "bias", self.bias.shape, f"needs {out} values, one per output channel")
        self._set("stride", check_ints(self, "stride", self.stride, dims, 1))
        self._set("dilation", check_ints(self, "dilation", self.dilation, dims, 1))
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid") or (self.padding == "same" and self.stride != (1,) * dims):
                raise field_error(self, "padding", self.padding, "a string must be 'valid', or 'same' with stride 1")
        else:
            self._set("padding", check_ints(self, "padding", self.padding, dims, 0))

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    def output_shape(self, shape: Shape) -> Shape:
        name, dims = type(self).__name__, self.DIMS
        if len(shape) != dims + 1 or shape[0] != self.in_channels:
            raise ValueError(f"{name} takes {self.in_channels} channels of {dims}-D maps; it gets shape {tuple(shape)}")
        kernel = self.weight.shape[2:]
        if self.padding == "same":
            spatial = tuple(shape[1:])
        else:
            padding = (0,) * dims if self.padding == "valid" else self.padding
            spatial = tuple(window_length(n, k, s, p, d) for n, k, s, p, d in
                            zip(shape[1:], kernel, self.stride, padding, self.dilation))
        if min(spatial) < 1:
            raise ValueError(f"{name}: input {tuple(shape)} is smaller than its kernel {tuple(kernel)}")
        return (self.weight.shape[0], *spatial)


@register_node
@dataclass(frozen=True, eq=False)
class Conv1d(_Conv):
    """PyTorch's Conv1d on one sample (C, L): weight [out, in/groups, k]."""

    DIMS: ClassVar[int] = 1


@register_node
@dataclass(frozen=True, eq=False)
class Conv2d(_Conv):
    """PyTorch's Conv2d on one sample (C, H, W): weight [out, in/groups, kh, kw]."""

    DIMS: ClassVar[int] = 2


@register_node
@dataclass(frozen=True, eq=False)
class Scale(Node):
    """y = scale x (one factor, or one per neuron)."""

    scale: Param

    def __post_init__(self) -> None:
        self._set("scale", check_param(self, "scale", self.scale))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), ("scale",))
        return tuple(shape)
