"""Image augmentation for training, in torch alone (no torchvision), drawn from the run's generator.

The transforms of the official RateBP and ESD CIFAR recipes (and of most SNN image papers), applied
per sample to a batch of [0, 1] images (B, C, H, W) before it is encoded:

- random crop with zero padding: pad ``padding`` pixels of 0 on every side, then cut an H x W window
  at an offset drawn uniformly in [0, 2 * padding] on each axis (torchvision's
  ``RandomCrop(size, padding)`` on the raw image, whose padding is black);
- horizontal flip with probability 1/2 (only where the classes are mirror-symmetric: not digits);
- Cutout (DeVries & Taylor 2017, arXiv 1708.04552): one ``cutout`` x ``cutout`` square, its centre
  drawn uniformly over the image and the square clipped at the borders, filled with the dataset's
  mean (the official code cuts after normalizing, i.e. to 0 in normalized units: the mean here).

Every draw comes from one CPU ``torch.Generator`` in a fixed order (offsets, flips, centres), the
one the trainer also encodes with and keeps in its checkpoint: a seed gives the same batches, and a
resumed run the same ones it would have had.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Augmentation:
    """What ``augment`` does to a dataset's images (a dataset's registry entry carries its own).

    Attributes:
        padding: pixels of zero padding per side before the random crop; 0 = no crop.
        flip: horizontal flip with probability 1/2.
        cutout: side of the Cutout square in pixels; 0 = no Cutout.
    """

    padding: int = 0
    flip: bool = False
    cutout: int = 0

    def __post_init__(self) -> None:
        for name in ("padding", "cutout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} is out of range: at least 0")

    def describe(self) -> str:
        parts = [f"random crop (padding {self.padding})" if self.padding else "",
                 "horizontal flip" if self.flip else "", f"Cutout {self.cutout}x{self.cutout}" if self.cutout else ""]
        return ", ".join(p for p in parts if p) or "none"


def augment(images: Tensor, aug: Augmentation, fill: tuple[float, ...], generator: torch.Generator) -> Tensor:
    """A new batch: every image of ``images`` (B, C, H, W) cropped, flipped and cut out per ``aug``.

    Args:
        fill: per channel, the value Cutout writes (the dataset's mean).
        generator: a CPU generator; it advances by the same amount for every batch of one size.
    """
    batch, channels, height, width = images.shape
    out = images
    if aug.padding:
        p = aug.padding
        padded = torch.nn.functional.pad(images, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (batch,), generator=generator).to(images.device)
        dx = torch.randint(0, 2 * p + 1, (batch,), generator=generator).to(images.device)
        rows = (dy[:, None] + torch.arange(height, device=images.device))[:, :, None]  # (B, H, 1)
        cols = (dx[:, None] + torch.arange(width, device=images.device))[:, None, :]  # (B, 1, W)
        index = torch.arange(batch, device=images.device)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2)  # (B, C, H, W)
    if aug.flip:
        flips = (torch.rand(batch, generator=generator) < 0.5).to(images.device)
        out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    if aug.cutout:
        half = aug.cutout // 2
        cy = torch.randint(0, height, (batch,), generator=generator).to(images.device)
        cx = torch.randint(0, width, (batch,), generator=generator).to(images.device)
        ys = torch.arange(height, device=images.device)
        xs = torch.arange(width, device=images.device)
        inside_y = (ys[None, :] >= cy[:, None] - half) & (ys[None, :] < cy[:, None] - half + aug.cutout)
        inside_x = (xs[None, :] >= cx[:, None] - half) & (xs[None, :] < cx[:, None] - half + aug.cutout)
        square = (inside_y[:, :, None] & inside_x[:, None, :])[:, None]  # (B, 1, H, W)
        value = torch.tensor(fill, dtype=out.dtype, device=out.device).view(1, channels, 1, 1)
        out = torch.where(square, value, out)
    return out.contiguous() if out is not images else images.clone()
