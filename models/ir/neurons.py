"""The neuron nodes: the spiking CubaLIF (LIF and IF build it), the non-spiking CubaLI (LI) and
Integrator, and Threshold (the graph's module docstring gives their equations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from snnpipe.models.ir.node import Node, Param, Shape, check_int, check_param, field_error, register_node

#: Reset kinds of `CubaLIF` (as `snnpipe.models.params.RESETS`).
RESETS = ("zero", "subtract")


@register_node
@dataclass(frozen=True, eq=False)
class CubaLIF(Node):
    """The spiking CUBA LIF of the module docstring (decays per step, units of the input current)."""

    ROLE: ClassVar[str] = "neuron"

    current_decay: Param
    voltage_decay: Param
    threshold: Param
    reset: str = "zero"
    refractory_steps: int = 0
    v_leak: Param = 0.0
    v_reset: Param = 0.0
    bias: Param | None = None
    PER_NEURON: ClassVar[tuple[str, ...]] = ("current_decay", "voltage_decay", "threshold", "v_leak", "v_reset", "bias")

    def __post_init__(self) -> None:
        self._set("current_decay", check_param(self, "current_decay", self.current_decay, 0.0, 1.0))
        self._set("voltage_decay", check_param(self, "voltage_decay", self.voltage_decay, 0.0, 1.0))
        self._set("threshold", check_param(self, "threshold", self.threshold, 0.0, low_open=True))
        if self.reset not in RESETS:
            raise field_error(self, "reset", self.reset, f"must be one of {', '.join(RESETS)}")
        self._set("refractory_steps", check_int(self, "refractory_steps", self.refractory_steps, 0))
        self._set("v_leak", check_param(self, "v_leak", self.v_leak))
        self._set("v_reset", check_param(self, "v_reset", self.v_reset))
        if self.bias is not None:
            self._set("bias", check_param(self, "bias", self.bias))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), self.PER_NEURON)
        return tuple(shape)


def LIF(voltage_decay: Param, threshold: Param, **fields: Any) -> CubaLIF:  # noqa: N802 - a node constructor
    """NIR's LIF: the `CubaLIF` with current_decay 1 (the current is the input of the step)."""
    return CubaLIF(1.0, voltage_decay, threshold, **fields)


def IF(threshold: Param, **fields: Any) -> CubaLIF:  # noqa: N802 - a node constructor
    """NIR's IF: the `CubaLIF` with current_decay 1 and voltage_decay 0 (no leak)."""
    return CubaLIF(1.0, 0.0, threshold, **fields)


@register_node
@dataclass(frozen=True, eq=False)
class CubaLI(Node):
    """The non-spiking leaky readout of the module docstring; its output is the voltage."""

    ROLE: ClassVar[str] = "neuron"

    current_decay: Param
    voltage_decay: Param
    gain: Param = 1.0
    v_leak: Param = 0.0
    bias: Param | None = None
    PER_NEURON: ClassVar[tuple[str, ...]] = ("current_decay", "voltage_decay", "gain", "v_leak", "bias")

    def __post_init__(self) -> None:
        self._set("current_decay", check_param(self, "current_decay", self.current_decay, 0.0, 1.0))
        self._set("voltage_decay", check_param(self, "voltage_decay", self.voltage_decay, 0.0, 1.0))
        self._set("gain", check_param(self, "gain", self.gain))
        self._set("v_leak", check_param(self, "v_leak", self.v_leak))
        if self.bias is not None:
            self._set("bias", check_param(self, "bias", self.bias))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), self.PER_NEURON)
        return tuple(shape)


def LI(voltage_decay: Param, **fields: Any) -> CubaLI:  # noqa: N802 - a node constructor
    """NIR's LI: the `CubaLI` with current_decay 1."""
    return CubaLI(1.0, voltage_decay, **fields)


@register_node
@dataclass(frozen=True, eq=False)
class Integrator(Node):
    """v[t] = v[t-1] + gain x[t], the output v (NIR's I: dv/dt = r x, gain = r dt)."""

    ROLE: ClassVar[str] = "neuron"

    gain: Param = 1.0

    def __post_init__(self) -> None:
        self._set("gain", check_param(self, "gain", self.gain))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), ("gain",))
        return tuple(shape)


@register_node
@dataclass(frozen=True, eq=False)
class Threshold(Node):
    """1 where x > threshold, else 0 (NIR's Threshold, a Heaviside of x - threshold)."""

    threshold: Param

    def __post_init__(self) -> None:
        self._set("threshold", check_param(self, "threshold", self.threshold))

    def output_shape(self, shape: Shape) -> Shape:
        self._per_neuron(tuple(shape), ("threshold",))
        return tuple(shape)
