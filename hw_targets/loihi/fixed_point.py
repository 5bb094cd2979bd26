"""Loihi's fixed-point formats and the integer arithmetic of Lava's bit-accurate models.

Every constant is read off the Lava code that runs ``Loihi2SimCfg(select_tag="fixed_pt")``
(lava-nc 0.10.0, lava-dl 0.6.0); the file and class are named beside each one. The units:

- the synaptic input ``a_in`` of a neuron is an integer in *weight units* (one unit = one step of
  the layer's integer weights as written in the netx file);
- the current ``u`` and voltage ``v`` are integers in *state units*, 2^-6 of a weight unit, because
  the neuron left-shifts its input and its threshold by 6 bits (``act_shift``, ``vth_shift``).

One neuron update of ``PyLifModelBitAcc`` (``lava/proc/lif/models.py``, via
``AbstractPyLifModelFixed.subthr_dynamics``), with ``rtz`` integer division rounding toward zero::

    u = wrap24(rtz(u * (4096 - (du + 1)) / 4096) + (a_in << 6))
    v = clip(rtz(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp), -(2^23 - 1), 2^23 - 1)
    s = v > (vth << 6);  v = 0 where s

``wrap24`` is Lava's single wrap of the current: values above 2^23 lose 2^24, values at or below
-2^23 gain 2^24 (both tested on the value before any wrap, as Lava does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: Decays are 12-bit: the decay of a step is ``d / 2^12`` (``AbstractPyLifModelFixed.decay_shift``).
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
#: Added to ``du`` before it is used, so that a current decay of exactly 4096 is possible
#: (``AbstractPyLifModelFixed.ds_offset``); the voltage's ``dm_offset`` is 0.
CURRENT_DECAY_OFFSET = 1
#: Largest ``du`` and ``dv``: unsigned 12-bit (``PyLifModelBitAcc`` docstring, "du: unsigned 12-bit").
DECAY_MAX = DECAY_UNITY - 1
#: The synaptic input and the threshold are MSB-aligned by 6 bits (``act_shift``, ``vth_shift``).
ACT_SHIFT = 6
VTH_SHIFT = 6
#: ``u`` and ``v`` are 24-bit signed (``uv_bitwidth``): u wraps at 2^23, v saturates at 2^23 - 1.
STATE_BITS = 24
STATE_LIMIT = 1 << (STATE_BITS - 1)
#: The threshold mantissa is unsigned 17-bit (``PyLifModelBitAcc`` docstring, "vth: 0 to 131071").
VTH_MANT_MAX = (1 << 17) - 1
#: The bias mantissa is signed 13-bit (``AbstractPyLifModelFixed.bias_mant``, precision=13).
BIAS_MANT_MIN, BIAS_MANT_MAX = -(1 << 12), (1 << 12) - 1
#: netx fixes the bias exponent at 6 (``lava/lib/dl/netx/hdf5.py``, ``Network.get_neuron_params``:
#: ``'bias_exp': 6``): a bias mantissa is in weight units, like ``a_in``.
NETX_BIAS_EXP = 6
#: Weights: an 8-bit signed mantissa. The file holds ``mantissa << 1``, even integers in
#: [-256, 254], the 8-bit scheme of lava-dl's slayer that ``netx.utils.optimize_weight_bits`` reads.
WEIGHT_MANT_MIN, WEIGHT_MANT_MAX = -128, 127
WEIGHT_FILE_SHIFT = 1
#: A convolution's output is clamped to 24-bit signed by wrapping
#: (``lava/proc/conv/models.py``, ``PyConvModelFixed.clamp_precision`` -> ``signed_clamp(x, 24)``).
CONV_ACCUMULATOR_BITS = 24
#: ``a_in`` reaches the neuron as int32 and is shifted in int32 (``np.left_shift``).
INT32_BITS = 32


def quantize_current_decay(current_decay: float) -> int:
    """The netx ``iDecay`` of a current decay a_u: ``round(a_u * 4096)``; netx uses ``du = iDecay - 1``.

    Raises:
        ValueError: a_u below 1/8192 (``du`` would be -1: unsigned 12-bit cannot hold it).
    """
    i_decay = int(round(current_decay * DECAY_UNITY))
    if i_decay < CURRENT_DECAY_OFFSET:
        raise ValueError(f"current_decay={current_decay} rounds to iDecay 0; netx needs du = iDecay - 1 >= 0")
    return i_decay


def quantize_voltage_decay(voltage_decay: float) -> int:
    """The netx ``vDecay`` (= Lava ``dv``) of a voltage decay a_v: ``round(a_v * 4096)``, at most 4095.

    Raises:
        ValueError: a_v above 4095.5/4096 (``dv`` is unsigned 12-bit and ``dm_offset`` is 0).
    """
    v_decay = int(round(voltage_decay * DECAY_UNITY))
    if v_decay > DECAY_MAX:
        raise ValueError(f"voltage_decay={voltage_decay} needs dv={v_decay}; Lava's 12-bit dv stops at {DECAY_MAX}")
    return v_decay


def rtz_decay(state: Tensor, keep: int) -> Tensor:
    """``rtz(state * keep / 4096)`` on integer tensors: Lava's ``sign(p) * (|p| >> 12)``."""
    if keep == 0:
        return torch.zeros_like(state)
    if keep == DECAY_UNITY:
        return state
    product = state * keep
    return torch.sign(product) * (product.abs() >> DECAY_SHIFT)


def wrap_current(current: Tensor) -> tuple[Tensor, Tensor]:
    """Lava's 24-bit wrap of the current; returns (wrapped, mask of the values that wrapped)."""
    high = current > STATE_LIMIT
    wrapped = torch.where(high, current - 2 * STATE_LIMIT, current)
    low = wrapped <= -STATE_LIMIT
    wrapped = torch.where(low, current + 2 * STATE_LIMIT, wrapped)
    return wrapped, high | low


def saturate_voltage(voltage: Tensor) -> tuple[Tensor, Tensor]:
    """Lava's clip of the voltage to +-(2^23 - 1); returns (clipped, mask of the clipped values)."""
    limit = STATE_LIMIT - 1
    clipped = voltage.clamp(-limit, limit)
    return clipped, clipped != voltage


def wrap_signed(x: Tensor, bits: int) -> Tensor:
    """Two's-complement wrap to ``bits`` (Lava's ``signed_clamp``: ``(x + 2^(b-1)) % 2^b - 2^(b-1)``)."""
    half = 1 << (bits - 1)
    return torch.remainder(x + half, 2 * half) - half


@dataclass(frozen=True)
class DenseSynapseFormat:
    """How Lava holds the integer weights of a netx dense layer.

    netx (``lava/lib/dl/netx/utils.py``, ``optimize_weight_bits``) turns the file's integers ``w``
    into Lava weights ``w << scale_bits`` with ``weight_exp = -scale_bits`` and ``num_weight_bits``;
    Lava's ``PyDenseModelBitAcc`` then clips them to 8 bits and truncates them to
    ``num_weight_bits``, and computes ``a_in = (sum_active w_lava) >> scale_bits`` (arithmetic
    shift, flooring). For weights the quantizer writes (even, in [-256, 254], mixed sign) this is
    exactly ``sum_active w``.

    Attributes:
        weights: the Lava weights after clipping and truncation, int64 (out, in).
        weight_exp: Loihi's weight exponent of the layer (``-scale_bits``).
        num_weight_bits: Loihi's weight precision of the layer.
        sign_mode: ``mixed``, ``excitatory`` or ``inhibitory``.
        exact: True when ``a_in`` is exactly ``sum_active w_file`` (no clipping, no lost bits).
    """

    weights: np.ndarray
    weight_exp: int
    num_weight_bits: int
    sign_mode: str
    exact: bool


def dense_synapse_format(weight_file: np.ndarray) -> DenseSynapseFormat:
    """Replay netx's ``optimize_weight_bits`` and Lava's ``clip_weights``/``truncate_weights``.

    Raises:
        ValueError: all weights zero (netx divides by the largest weight) or outside [-256, 255].
    """
    w = np.asarray(weight_file, dtype=np.int64)
    top, bottom = int(w.max()), int(w.min())
    if top == 0 and bottom == 0:
        raise ValueError("all weights are zero; netx's optimize_weight_bits cannot scale them")
    if top > 254 and bottom < 0 or bottom < -256 and top > 0 or top > 255 or bottom < -256:
        raise ValueError(f"weights span [{bottom}, {top}]; netx reads 8-bit weights in [-256, 254]")
    # netx.utils.optimize_weight_bits
    if top < 0:
        mode, signed = "inhibitory", 0
        scale = -256 / bottom
    elif bottom >= 0:
        mode, signed = "excitatory", 0
        scale = 255 / top
    else:
        mode, signed = "mixed", 1
        scale = min(127 / top if top else math.inf, -128 / bottom)  # netx: 127 / 0 is numpy's inf
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.sum(np.abs(w / 2**n - np.round(w / 2**n))) != 0:
        n -= 1
    n -= signed
    num_weight_bits = 8 - scale_bits - n
    lava = w << scale_bits
    # lava.proc.dense.models.AbstractPyDenseModelBitAcc: the sign mode is re-derived from the weights
    # (lava.utils.weightutils.determine_sign_mode), then clip_weights(num_bits=8), truncate_weights.
    lava_mode = "excitatory" if lava.min() >= 0 else "inhibitory" if lava.max() <= 0 else "mixed"
    mixed = int(lava_mode == "mixed")
    flip = -1 if lava_mode == "inhibitory" else 1
    lava = flip * np.clip(flip * lava, -(2**8) * mixed, 2**8 - 1)
    drop = 8 - num_weight_bits + mixed
    lava = flip * (((flip * lava) >> drop) << drop)
    exact = bool(np.array_equal(lava, w << scale_bits))
    return DenseSynapseFormat(lava.astype(np.int64), -scale_bits, num_weight_bits, mode, exact)
