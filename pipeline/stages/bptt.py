"""``bptt``: surrogate-gradient backpropagation through time over T steps.

The baseline every other stage is measured against. The loss is the cross-entropy of the mean over
T of the readout: CE(mean_t o[t], y). The graph holds all T steps, so memory grows with T.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from snnpipe.pipeline.stages.base import Stage, StepOutput, register_stage


@register_stage("bptt")
class BPTT(Stage):
    def training_step(self, x: Tensor, y: Tensor, images: Tensor) -> StepOutput:
        logits = self.model(x).mean(0)
        return StepOutput(F.cross_entropy(logits, y), logits)
