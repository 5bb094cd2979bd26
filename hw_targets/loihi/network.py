"""The quantized network: what the netx file holds, what the simulator runs, what Lava runs.

A `LoihiNetwork` is an input shape and a chain of `LoihiLayer`\\ s. Each layer is a synapse (dense
or conv, integer weights) feeding a layer of CUBA neurons (`CubaNeuron`, netx's device parameters);
``flatten`` marks a layer whose input is flattened first (netx's ``flatten`` layer). Shapes are
(C, H, W) for images and (n,) for vectors, in torch's order; netx reads them reversed (W, H, C).

The last layer is the readout: with ``CubaNeuron.readout`` its neurons integrate (threshold at the
17-bit maximum, no voltage decay) and their voltage after the last step, ``v = 2^6 sum_t
(a_in[t] + bias)``, is the network's output; otherwise the output is the spike count. They spike only
where v passes 131071 << 6 = 8,388,544, just below v's clip at 2^23 - 1, which the exporter's
calibration keeps v far from (`graph_file`'s docstring).

Timing (Lava's ``Dense`` and ``Conv`` send at step t what they received at step t-1): layer l at step
t receives the spikes layer l-1 emitted at step t-1, the input being layer 0. An input of T steps has
passed every layer after ``steps = T + len(layers)`` steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snnpipe.hw_targets.loihi import fixed_point as fx

LAYER_KINDS = ("dense", "conv")


@dataclass(frozen=True)
class CubaNeuron:
    """netx's CUBA device parameters (``lava/lib/dl/netx/hdf5.py``, ``Network.get_neuron_params``).

    Attributes:
        i_decay: netx ``iDecay`` = round(a_u 4096), 1..4096; Lava's ``du`` is ``iDecay - 1``.
        v_decay: netx ``vDecay`` = Lava ``dv`` = round(a_v 4096), 0..4095.
        vth_mant: threshold mantissa, 0..131071; spikes where v > vth_mant << 6.
        readout: an integrator whose final voltage is the output (its threshold lies 63 below v's clip).
    """

    i_decay: int
    v_decay: int
    vth_mant: int
    readout: bool = False

    def __post_init__(self) -> None:
        if not fx.CURRENT_DECAY_OFFSET <= self.i_decay <= fx.DECAY_UNITY:
            raise ValueError(f"i_decay={self.i_decay} is out of range [1, 4096]")
        if not 0 <= self.v_decay <= fx.DECAY_MAX:
            raise ValueError(f"v_decay={self.v_decay} is out of range [0, 4095]")
        if not 0 <= self.vth_mant <= fx.VTH_MANT_MAX:
            raise ValueError(f"vth_mant={self.vth_mant} is out of range [0, {fx.VTH_MANT_MAX}]")

    @property
    def current_keep(self) -> int:
        """4096 - (du + 1): what the current keeps of itself per step, in 1/4096."""
        return fx.DECAY_UNITY - self.i_decay

    @property
    def voltage_keep(self) -> int:
        """4096 - dv: what the voltage keeps of itself per step, in 1/4096."""
        return fx.DECAY_UNITY - self.v_decay

    def to_dict(self) -> dict:
        return {"iDecay": self.i_decay, "vDecay": self.v_decay, "vThMant": self.vth_mant, "readout": self.readout}


def readout_neuron() -> CubaNeuron:
    """u = a_in (iDecay 4096), v = v + u + bias (vDecay 0), threshold at the 17-bit maximum."""
    return CubaNeuron(fx.DECAY_UNITY, 0, fx.VTH_MANT_MAX, readout=True)


def integer_array(values, what: str) -> np.ndarray:
    """``values`` as int64, refused where one is not a whole number (a file's float weight of 0.5
    would otherwise be truncated to 0 without a word).

    Raises:
        ValueError: naming ``what`` and the first such value.
    """
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    flat = array.reshape(-1)
    if array.dtype.kind != "f":
        raise ValueError(f"{what} is of type {array.dtype}; Loihi weights and biases are integers")
    wrong = flat[~np.isfinite(flat) | (flat != np.round(flat))]
    if wrong.size:
        raise ValueError(f"{what} holds {wrong[0]:g}; Loihi weights and biases are integers")
    return array.astype(np.int64)


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    a, b = (int(v) for v in value)
    return a, b


@dataclass
class LoihiLayer:
    """One netx layer: a synapse and its neurons.

    Attributes:
        name: the module path of the synaptic layer in the source model (for messages).
        kind: ``dense`` or ``conv``.
        in_shape: one sample's input, (C, H, W) or (n,) (after ``flatten``).
        out_shape: the neurons, (C, H, W) for conv, (n,) for dense.
        weight: int64 file weights, (out, in) or (out, in/groups, kh, kw); 8-bit mantissa << 1.
        bias: int64 bias mantissas per output channel (13-bit), or None.
        neuron: the neurons' device parameters.
        flatten: the input is flattened (C, H, W) -> (C*H*W,) first, in torch's order.
        stride, padding, dilation, groups: conv geometry, (height, width) pairs.
    """

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray
    bias: np.ndarray | None
    neuron: CubaNeuron
    flatten: bool = False
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        self.in_shape = tuple(int(n) for n in self.in_shape)
        self.out_shape = tuple(int(n) for n in self.out_shape)
        self.stride, self.padding, self.dilation = _pair(self.stride), _pair(self.padding), _pair(self.dilation)
        self.groups = int(self.groups)
        self.weight = integer_array(self.weight, f"weight of {self.name}")
        if self.bias is not None:
            self.bias = integer_array(self.bias, f"bias of {self.name}").reshape(-1)
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"kind={self.kind!r} is not one of {', '.join(LAYER_KINDS)}")
        if self.kind == "conv":
            for key, low in (("stride", 1), ("padding", 0), ("dilation", 1)):
                if min(getattr(self, key)) < low:
                    raise ValueError(f"{key}={getattr(self, key)} of conv layer {self.name} is below {low}")
            if self.groups < 1 or self.in_shape[0] % self.groups or self.out_shape[0] % self.groups:
                raise ValueError(f"groups={self.groups} of conv layer {self.name} does not divide its {self.in_shape[0]} "
                                 f"input and {self.out_shape[0]} output channels")
        if self.kind == "dense" and not self.weight.any():
            raise ValueError(f"weight of {self.name} is all zero: netx's optimize_weight_bits cannot scale it")
        if self.weight.size and (self.weight.min() < -256 or self.weight.max() > 254):
            raise ValueError(f"weight of {self.name} spans [{self.weight.min()}, {self.weight.max()}]; netx reads [-256, 254]")
        if self.bias is not None and (self.bias.min() < fx.BIAS_MANT_MIN or self.bias.max() > fx.BIAS_MANT_MAX):
            raise ValueError(f"bias of {self.name} spans [{self.bias.min()}, {self.bias.max()}]; the mantissa is 13-bit")
        if self.bias is not None and len(self.bias) != self.out_shape[0]:
            raise ValueError(f"bias of {self.name} has {len(self.bias)} values for {self.out_shape[0]} channels")
        fan_in = self.in_features if self.kind == "dense" else self.in_shape[0] // self.groups
        if self.weight.shape[:2] != (self.out_shape[0], fan_in):
            raise ValueError(f"weight of {self.name} has shape {self.weight.shape}; expected ({self.out_shape[0]}, {fan_in}, ...)")
        if self.kind == "dense" and len(self.out_shape) != 1:
            raise ValueError(f"out_shape={self.out_shape} of dense layer {self.name} is not (n,)")
        if self.kind == "conv" and (len(self.in_shape) != 3 or len(self.out_shape) != 3 or self.weight.ndim != 4):
            raise ValueError(f"conv layer {self.name} needs (C, H, W) shapes and a 4-d weight")
        if self.kind == "dense" and self.weight.ndim != 2:
            raise ValueError(f"weight of dense layer {self.name} has shape {self.weight.shape}; expected (out, in)")
        if self.kind == "conv":
            self._check_conv_geometry()

    def _check_conv_geometry(self) -> None:
        """Per axis, torch's ``Conv2d`` (and Lava's ``Conv``) gives ``(n + 2 p - d (k - 1) - 1) // s + 1``
        outputs from n inputs: that must be ``out_shape``, or the simulator and Lava fail on a shape
        mismatch. Padding is bounded by the input (more only adds zeros, and a file's padding of 10^6
        would allocate terabytes)."""
        size = self.in_shape[1:]
        if self.padding[0] > size[0] or self.padding[1] > size[1]:
            raise ValueError(f"padding={self.padding} of conv layer {self.name} exceeds its {size[0]}x{size[1]} input")
        out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                    zip(size, self.padding, self.dilation, self.kernel_size, self.stride))
        if out != self.out_shape[1:]:
            raise ValueError(f"conv layer {self.name} (kernel_size={self.kernel_size}, stride={self.stride}, "
                             f"padding={self.padding}, dilation={self.dilation}) maps its {size[0]}x{size[1]} input to "
                             f"{out[0]}x{out[1]}; its neurons are {self.out_shape[1]}x{self.out_shape[2]}")

    @property
    def in_features(self) -> int:
        return math.prod(self.in_shape)

    @property
    def neurons(self) -> int:
        return math.prod(self.out_shape)

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3])) if self.kind == "conv" else (1, 1)

    def synapses(self) -> int:
        """Connections that carry a weight: in x out for dense; for conv, the kernel taps that land
        on the input (not on padding), summed over every output neuron."""
        if self.kind == "dense":
            return self.in_features * self.neurons
        import torch

        ones = torch.ones(1, self.in_shape[0], *self.in_shape[1:], dtype=torch.float64)
        kernel = torch.ones(self.out_shape[0], self.in_shape[0] // self.groups, *self.kernel_size, dtype=torch.float64)
        taps = torch.nn.functional.conv2d(ones, kernel, None, self.stride, self.padding, self.dilation, self.groups)
        return int(taps.sum().item())


@dataclass
class LoihiNetwork:
    """A chain of netx layers on an input of ``input_shape`` (C, H, W) binary spikes."""

    input_shape: tuple[int, ...]
    layers: list[LoihiLayer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(n) for n in self.input_shape)
        if not self.layers:
            raise ValueError("layers is empty: a network needs at least one layer")
        shape = self.input_shape
        for layer in self.layers:
            expected = (math.prod(shape),) if layer.flatten else shape
            if layer.in_shape != expected:
                raise ValueError(f"layer {layer.name} takes {layer.in_shape}; it gets {expected}")
            shape = layer.out_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    def steps_for(self, timesteps: int) -> int:
        """Steps after which an input of ``timesteps`` steps has reached the output (one per layer)."""
        return timesteps + len(self.layers)
