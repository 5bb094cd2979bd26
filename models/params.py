"""The parameters of a CUBA LIF layer, checked on construction; torch-free, so that a training
configuration is built and checked before torch is imported."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from snnpipe.errors import SnnpipeError
from snnpipe.models.surrogates import SURROGATES


#: After a spike: ``zero`` sets v = 0 (hard), ``subtract`` sets v = v - theta (soft).
RESETS = ("zero", "subtract")


@dataclass(frozen=True)
class NeuronParams:
    """Parameters of a CUBA LIF layer.

    Attributes:
        current_decay: a_u in [0, 1]; the current keeps (1 - a_u) per step. 1 = plain LIF.
        voltage_decay: a_v in [0, 1]; the voltage keeps (1 - a_v) per step.
        threshold: theta > 0, in the units of the input current.
        refractory_steps: R >= 0 steps the voltage is held after a spike.
        surrogate: name in `SURROGATES`.
        surrogate_width: w > 0, the width of the surrogate derivative around theta.
        reset: ``"zero"`` sets v to 0 after a spike (Lava's LIF, the only one the Loihi and NIR exports
            take); ``"subtract"`` lowers it by theta, keeping the excess (the soft reset of the official
            RateBP and ESD code, spikingjelly's ``v_reset=None``).
    """

    current_decay: float = 1.0
    voltage_decay: float = 0.5
    threshold: float = 1.0
    refractory_steps: int = 0
    surrogate: str = "atan"
    surrogate_width: float = 1.0
    reset: str = "zero"

    def __post_init__(self) -> None:
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SnnpipeError(f"{name}={value} is out of range: a decay must lie in [0, 1]")
        if not self.threshold > 0:
            raise SnnpipeError(f"threshold={self.threshold} is out of range: it must be > 0")
        if self.refractory_steps < 0 or int(self.refractory_steps) != self.refractory_steps:
            raise SnnpipeError(
                f"refractory_steps={self.refractory_steps} is out of range: a whole number >= 0"
            )
        if self.surrogate not in SURROGATES:
            raise SnnpipeError(
                f"unknown surrogate {self.surrogate!r}: choose one of {', '.join(SURROGATES)}"
            )
        if not self.surrogate_width > 0:
            raise SnnpipeError(
                f"surrogate_width={self.surrogate_width} is out of range: it must be > 0"
            )
        if self.reset not in RESETS:
            raise SnnpipeError(f"unknown reset {self.reset!r}: choose one of {', '.join(RESETS)}")
        if self.reset == "subtract" and self.refractory_steps:
            raise SnnpipeError("reset='subtract' with refractory_steps > 0 is not a neuron snnpipe has: "
                               "a refractory period holds the hard-reset voltage; use one or the other")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NeuronParams":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise SnnpipeError(f"unknown neuron parameter(s): {', '.join(sorted(unknown))}")
        return cls(**data)


#: The neurons of papers' official code, by name: a recipe's ``neuron: NAME`` (its explicit neuron
#: keys still win). ``snnpipe``: this package's defaults (LIF keeping half its voltage, atan, hard reset).
#: ``ratebp``: the official RateBP code (Yu et al. 2024, github.com/Tab-ct/rate-based-backpropagation,
#: ``model/layer.py`` ``LIFLayer`` with ``experiment/*/config/config.py``'s defaults): spikingjelly's
#: ``LIFNode`` with tau = 1 / (1 - sigmoid(decay)), decay 0.2, ``decay_input=False``, ``v_reset=None``
#: (soft reset), threshold 1 and spikingjelly's default ``Sigmoid(alpha=4)`` surrogate. Its voltage
#: keeps 1 - 1/tau = sigmoid(0.2) = 0.549834 per step, so a_v = 1 - sigmoid(0.2) = 0.450166; no
#: synaptic current (a_u = 1); snnpipe's ``sigmoid`` surrogate at width 1 is alpha = 4 / width = 4.
NEURON_PRESETS: dict[str, NeuronParams] = {
    "snnpipe": NeuronParams(),
    "ratebp": NeuronParams(voltage_decay=1.0 - 1.0 / (1.0 + math.exp(-0.2)), surrogate="sigmoid", surrogate_width=1.0,
                           reset="subtract"),
}


def neuron_preset(name: str) -> NeuronParams:
    """`NEURON_PRESETS`'s neuron of that name; an unknown one is refused naming the choices."""
    if name not in NEURON_PRESETS:
        raise SnnpipeError(f"unknown neuron {name!r}: choose one of {', '.join(NEURON_PRESETS)}, or give its "
                           "parameters (voltage_decay, surrogate, ...) one by one")
    return NEURON_PRESETS[name]
