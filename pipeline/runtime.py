"""Where the work runs: the device."""

from __future__ import annotations

import torch

from snnpipe.errors import SnnpipeError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SnnpipeError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise SnnpipeError(f"device {name!r} is not supported: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SnnpipeError(f"device {name!r} asked for, but torch sees no CUDA device; use --device cpu")
    return device
