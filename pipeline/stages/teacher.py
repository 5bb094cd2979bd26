"""What a distillation teacher sees: the input it was trained on, whatever the student's encoding.

An ANN teacher (an ``ann`` stage checkpoint) was trained on the normalized analog image at T = 1,
so it gets that image, normalized with its own checkpoint's mean and std, not the student's encoded
input: under rate coding the time average of the student's input is a noisy Bernoulli estimate of
the image and under latency coding it is nearly empty (on digits an ANN teacher scoring 96.7% on its
own scored 93.6% and 67.8% on those averages). An SNN teacher gets the student's encoded input where
it was trained with the same encoding and T, else the images encoded its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from snnpipe.pipeline.encoding import encode, normalize


@dataclass
class TeacherInput:
    """How to turn a training batch into the teacher's input.

    Attributes:
        spiking: the teacher is an SNN (else its ANN twin is used).
        encoding, timesteps: the teacher's own, from its checkpoint.
        mean, std: the normalization of the teacher's checkpoint (per channel).
        student_encoding, student_timesteps: the student's, to reuse its input where they agree.
        generator: draws the teacher's own rate-coded spikes where it needs them.
    """

    spiking: bool
    encoding: str
    timesteps: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    student_encoding: str
    student_timesteps: int
    generator: torch.Generator | None = None

    def __call__(self, x: Tensor, images: Tensor) -> Tensor:
        """The teacher's (T, B, ...) input for a batch: x is the student's encoded input, images the
        batch's [0, 1] images (B, C, H, W)."""
        if not self.spiking:
            return normalize(images, self.mean, self.std).unsqueeze(0)
        if (self.encoding, self.timesteps) == (self.student_encoding, self.student_timesteps):
            return x
        return encode(images, self.encoding, self.timesteps, self.mean, self.std, self.generator)
