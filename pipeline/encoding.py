"""Input encodings: a batch of [0, 1] images (B, C, H, W) into network input (T, B, C, H, W) float32.

- ``direct``: the normalized analog image ``(x - mean) / std`` (per channel), the same at every
  step. It is a stride-0 view along T, not T copies: the model recognizes it and computes its first
  layer once. Read it freely; call ``.contiguous()`` before writing into it.
- ``rate``: Bernoulli spikes, ``s[t] ~ Bernoulli(x)`` independently at every step. x is the raw
  intensity: the normalization (mean, std) applies to the direct encoding only.
- ``latency``: one spike per pixel at ``t = round((1 - x) (T - 1))``, brighter earlier; a pixel
  of 0 never spikes. This is snnTorch's linear latency code, ``spikegen.latency(x, T, linear=True,
  normalize=True, clip=True, threshold=t)`` for any tiny t > 0 (rounding half to even, like
  ``torch.round``); snnTorch's default threshold 0.01 would also silence the pixels below 0.01.

Rate and latency clip x to [0, 1] first, so rounding noise in the scaling cannot break them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from snnpipe.errors import SnnpipeError
from snnpipe.registry import register_into


class EncodingError(SnnpipeError):
    """An unknown encoding or arguments out of range; the message is one line."""


Encoder = Callable[[torch.Tensor, int, torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]
ENCODINGS: dict[str, Encoder] = {}


def register_encoding(name: str) -> Callable[[Encoder], Encoder]:
    """Decorator: register ``fn(x, timesteps, mean, std, generator) -> (T, B, ...)``; no duplicates.

    ``mean`` and ``std`` reach ``fn`` as tensors shaped to broadcast over x, (1, C, 1, 1).
    """

    return register_into(ENCODINGS, name, "encoding")


def encode(
    x: torch.Tensor,
    encoding: str,
    timesteps: int,
    mean: Sequence[float],
    std: Sequence[float],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Encode images for a spiking network.

    Args:
        x: (B, C, H, W) intensities in [0, 1] (not normalized).
        encoding: a key of `ENCODINGS`: ``direct``, ``rate`` or ``latency``.
        timesteps: T, at least 1.
        mean, std: per channel (C values each), used by ``direct`` only.
        generator: draws the random spikes of ``rate``; on x's device.

    Returns:
        (T, B, C, H, W) float32.

    Raises:
        EncodingError: unknown encoding, T < 1, or mean/std not one value per channel.
    """
    if encoding not in ENCODINGS:
        raise EncodingError(f"unknown encoding {encoding!r}: choose one of {', '.join(ENCODINGS)}")
    if timesteps < 1:
        raise EncodingError(f"timesteps={timesteps} is out of range: T must be at least 1")
    if x.dim() < 2 or len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise EncodingError(
            f"mean ({len(mean)} values) and std ({len(std)}) need one value per channel "
            f"of input {tuple(x.shape)}"
        )
    try:
        check_normalization(mean, std)
    except ValueError as err:
        raise EncodingError(str(err)) from None
    x = x.to(torch.float32)
    shape = (1, -1, *([1] * (x.dim() - 2)))
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(shape)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(shape)
    return ENCODINGS[encoding](x, timesteps, mean_t, std_t, generator)


def check_normalization(mean: Sequence[float], std: Sequence[float]) -> None:
    """The one check of a normalization, whoever read it (a checkpoint's `DataSpec`, a deployed
    file's attributes, a NIR file's metadata, `encode`): every mean finite, every std finite and > 0.
    A NaN mean or a zero std makes every direct-coded input NaN or infinite, which profiles to a
    silent 0% (and a rate-coded file that carries them is damaged all the same).

    Raises:
        ValueError: naming the field (``mean`` or ``std``) and its values.
    """
    for key, values in (("mean", mean), ("std", std)):
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(f"{key} {_brief(values)} is not a list of numbers") from None
        if not all(math.isfinite(v) and (key == "mean" or v > 0) for v in numbers):
            rule = "finite" if key == "mean" else "finite and > 0"
            raise ValueError(f"{key} {numbers} must be {rule} in every channel")


def _brief(value: object) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel: the analog image (B, C, H, W) the direct encoding repeats
    over T, and what an ANN (the ``ann`` stage, T = 1) is trained on."""
    return encode(images, "direct", 1, mean, std)[0]


@register_encoding("direct")
def _direct(
    x: torch.Tensor, timesteps: int, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    normalized = (x - mean) / std
    return normalized.unsqueeze(0).expand(timesteps, *normalized.shape)


@register_encoding("rate")
def _rate(
    x: torch.Tensor, timesteps: int, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    probability = x.clamp(0.0, 1.0).unsqueeze(0).expand(timesteps, *x.shape)
    return torch.bernoulli(probability, generator=generator)


@register_encoding("latency")
def _latency(
    x: torch.Tensor, timesteps: int, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    spike_step = torch.round((1.0 - x) * (timesteps - 1))
    steps = torch.arange(timesteps, dtype=x.dtype, device=x.device).view(-1, *([1] * x.dim()))
    return ((steps == spike_step) & (x > 0)).to(torch.float32)
