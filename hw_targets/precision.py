"""Arithmetic by precision: what one add, multiply, MAC and AC cost at 45 nm, every constant sourced.

Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, slide "Energy
per operation" (45 nm, 0.9 V), in picojoules:

    ============  =====  ======  ==========================
    precision     add    mult    MAC = mult + add
    ============  =====  ======  ==========================
    fp32          0.9    3.7     4.6
    fp16          0.4    1.1     1.5
    int32         0.1    3.1     3.2
    int8          0.03   0.2     0.23
    ============  =====  ======  ==========================

An AC (accumulate: a synaptic op driven by a spike) is one add. ``int8`` is the precision of the
Loihi export (8-bit weight mantissas, `hw_targets/loihi/quantize.py`): it prices the SNN's weights
as they are deployed.

The quantized ANN baseline of Yan et al. ("Reconsidering the energy efficiency of spiking neural
networks", arXiv 2409.08290): a rate-coded SNN with T steps carries T + 1 levels per neuron, the
same as an ANN with ``b = ceil(log2(T + 1))``-bit activations. `qann(T)` prices that ANN's MAC of a
b-bit activation with an 8-bit weight: ``mult = 0.2 pJ * b / 8`` (an array multiplier's energy grows
with the product of its operand widths; scaled from Horowitz's 8 x 8-bit multiply; our assumption,
stated in docs/energy-models.md), ``add = 0.03 pJ`` (the 8-bit add of Horowitz's INT8 MAC).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

HOROWITZ_OPS = "Horowitz, Computing's energy problem, ISSCC 2014, 45 nm: energy per operation"
YAN = "Yan et al., Reconsidering the energy efficiency of SNNs, arXiv 2409.08290: ceil(log2(T+1))-bit QNN"


@dataclass(frozen=True)
class Precision:
    """One number format's arithmetic, in pJ per operation, and its width.

    Attributes:
        name: ``fp32``, ``fp16``, ``int32``, ``int8`` or ``qann-<b>bit``.
        add_pj: one add (an AC).
        mult_pj: one multiply.
        bits: the width of a weight (and of an activation, unless ``activation_bits`` says otherwise).
        activation_bits: the width of an activation, where it differs from ``bits``.
        state_bits: the width of a neuron's state variable (membrane potential, current): the
            float's own width, and 24 bits for ``int8``, Loihi's u and v registers (SPEC §2, Lava's
            ``PyLifModelBitAcc``).
        source: where the numbers come from.
    """

    name: str
    add_pj: float
    mult_pj: float
    bits: int
    activation_bits: int | None = None
    state_bits: int = 32
    source: str = HOROWITZ_OPS

    def __post_init__(self) -> None:
        for key in ("add_pj", "mult_pj"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{key}={value!r} must be a finite number >= 0, in picojoules")
        for key in ("bits", "activation_bits", "state_bits"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{key}={value!r} must be an integer >= 1")

    @property
    def mac_pj(self) -> float:
        """One multiply-accumulate: mult + add."""
        return self.mult_pj + self.add_pj

    @property
    def ac_pj(self) -> float:
        """One accumulate: an add."""
        return self.add_pj

    @property
    def act_bits(self) -> int:
        return self.activation_bits or self.bits

    def to_dict(self) -> dict:
        return {**asdict(self), "mac_pj": self.mac_pj}


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision("fp32", add_pj=0.9, mult_pj=3.7, bits=32, source=f"{HOROWITZ_OPS}: FP32 add 0.9, mult 3.7"),
    "fp16": Precision("fp16", add_pj=0.4, mult_pj=1.1, bits=16, state_bits=16, source=f"{HOROWITZ_OPS}: FP16 add 0.4, mult 1.1"),
    "int32": Precision("int32", add_pj=0.1, mult_pj=3.1, bits=32, source=f"{HOROWITZ_OPS}: INT32 add 0.1, mult 3.1"),
    "int8": Precision("int8", add_pj=0.03, mult_pj=0.2, bits=8, state_bits=24,
                      source=f"{HOROWITZ_OPS}: INT8 add 0.03, mult 0.2"),
}


def qann_bits(timesteps: int) -> int:
    """b = ceil(log2(T + 1)): the activation width of the ANN that carries as many levels as T steps of
    rate-coded spikes (Yan et al.)."""
    if not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps={timesteps!r} must be an integer >= 1")
    return max(1, math.ceil(math.log2(timesteps + 1)))


def qann(timesteps: int) -> Precision:
    """The quantized ANN of Yan et al. for T steps: b-bit activations, 8-bit weights (module docstring)."""
    b = qann_bits(timesteps)
    int8 = PRECISIONS["int8"]
    return Precision(f"qann-{b}bit", add_pj=int8.add_pj, mult_pj=int8.mult_pj * b / 8, bits=8, activation_bits=b,
                     source=f"{YAN}; b = {b} for T = {timesteps}; mult = INT8 mult 0.2 pJ x b/8 (operand-width "
                            f"scaling, our assumption), add = INT8 add 0.03 pJ ({HOROWITZ_OPS})")


def get_precision(name: str) -> Precision:
    """A precision by name. Raises ValueError naming the choices."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}: choose one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]


def round_weights(weight, bits: int):
    """``weight`` (a tensor) rounded to ``bits``-bit signed integers times one scale per tensor, the
    largest |w| onto the largest integer 2^(bits-1) - 1 (symmetric, round half to even), as a chip
    of ``bits``-bit weights holds it. All zeros stay zeros."""
    import torch

    top = (1 << (bits - 1)) - 1
    largest = weight.abs().max()
    if bits < 2 or largest == 0:
        return weight.clone() if largest == 0 else torch.sign(weight) * largest
    scale = largest / top
    return torch.round(weight / scale) * scale
