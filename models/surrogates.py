"""Surrogate derivatives of the Heaviside step, each integrating to 1 over x and peaking at 1/width.

Written with tensor methods only, so that this module (and `params`, which checks a surrogate's
name) imports without torch: the CLI checks ``--surrogate`` before torch is loaded.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import Tensor


def _rectangular(x: Tensor, width: float) -> Tensor:
    """1/w on |x| < w/2 (Wu et al. 2018, STBP)."""
    return (x.abs() < width / 2).to(x.dtype) / width


def _triangular(x: Tensor, width: float) -> Tensor:
    """(1/w) max(0, 1 - |x|/w) (Bellec et al. 2018)."""
    return (1.0 - x.abs() / width).clamp(min=0.0) / width


def _sigmoid(x: Tensor, width: float) -> Tensor:
    """Derivative of sigmoid(4x/w): slope 1/w at x = 0."""
    k = 4.0 / width
    sig = (k * x).sigmoid()
    return k * sig * (1.0 - sig)


def _atan(x: Tensor, width: float) -> Tensor:
    """Derivative of (1/pi) atan(pi/2 alpha x) with alpha = 2/w; w = 1 is snnTorch's ``ATan()``."""
    alpha = 2.0 / width
    return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)


#: Surrogate derivatives of the Heaviside step, each integrating to 1 over x.
SURROGATES: dict[str, Callable[[Tensor, float], Tensor]] = {
    "rectangular": _rectangular,
    "triangular": _triangular,
    "sigmoid": _sigmoid,
    "atan": _atan,
}


def _rectangular_(x: Tensor, width: float) -> tuple[Tensor, float]:
    return x.abs_().lt_(width / 2), 1.0 / width


def _triangular_(x: Tensor, width: float) -> tuple[Tensor, float]:
    return x.abs_().mul_(-1.0 / width).add_(1.0).clamp_(min=0.0), 1.0 / width


def _sigmoid_(x: Tensor, width: float) -> tuple[Tensor, float]:
    sig = x.mul_(4.0 / width).sigmoid_()
    return sig.addcmul_(sig, sig, value=-1.0), 4.0 / width


def _atan_(x: Tensor, width: float) -> tuple[Tensor, float]:
    alpha = 2.0 / width
    return x.mul_(math.pi / 2.0 * alpha).square_().add_(1.0).reciprocal_(), alpha / 2.0


#: The same surrogates computed in place, as (tensor, scale) with derivative = scale * tensor:
#: the RECORD pass folds the scale into its accumulation and allocates nothing for them.
SURROGATES_INPLACE: dict[str, Callable[[Tensor, float], tuple[Tensor, float]]] = {
    "rectangular": _rectangular_,
    "triangular": _triangular_,
    "sigmoid": _sigmoid_,
    "atan": _atan_,
}
