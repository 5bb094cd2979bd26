"""``ratebp``: one-step rate-based backpropagation (RateBP; Yu et al., NeurIPS 2024).

Forward T steps with no graph, each LIF recording its firing rate r and eligibility
e = mean_t sg'(v[t] - theta) f[t] (`snnpipe.models.neurons.CubaLIF`), then one differentiable pass
on time-averaged tensors in which every neuron outputs ``r + x*e - (x*e).detach()``: the forward
value is the true rate, and the gradient flows through the time-averaged input current x.

The RECORD pass keeps only per-step state and running sums, and the differentiable pass is one
step on (B, ...) tensors, so training memory does not grow with T; time grows only with the cheap
graph-free steps. Linear layers (conv, linear, average pooling, the residual add) commute with the
time average; BatchNorm uses the mean of the per-step batch statistics of the RECORD pass.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from snnpipe.models.layers import rate_based
from snnpipe.pipeline.stages.base import Stage, StepOutput, register_stage


@register_stage("ratebp")
class RateBP(Stage):
    @classmethod
    def graph_over_time(cls, args) -> bool:
        return False

    def rate_forward(self, x: Tensor) -> Tensor:
        """Record T steps without a graph, then return the differentiable rate-pass logits."""
        with rate_based(self.model, x) as averaged:
            return self.model.step(averaged)

    def training_step(self, x: Tensor, y: Tensor, images: Tensor) -> StepOutput:
        logits = self.rate_forward(x)
        return StepOutput(F.cross_entropy(logits, y), logits)
