"""``kd-activity``: knowledge distillation with activity and logits regularization
(Louis et al. 2024; seed ``kd-activity-regularization-abstract``).

    L = (1 - alpha) CE + alpha tau^2 KL(teacher || student)
        + activity_weight * sum_layers mean(rate^norm) + logits_weight * mean ||z||^2

The teacher (``--teacher``) is an ANN or an SNN checkpoint of the same model; an ANN teacher sees
the normalized analog image it was trained on (`teacher.TeacherInput`). The rates are those
of the student's LIF layers in this step, with their gradients (surrogate under ``base=bptt``,
the paper's training and the default; RateBP under ``base=ratebp``). The abstract gives the logits
weight (~0.01); the activity weight is ours, set so that the firing rate drops by the paper's
~14% at equal accuracy on Fashion-MNIST (see reports/bench/stages.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from snnpipe.arguments import Fraction, NonNegativeFloat, PositiveFloat
from snnpipe.models.neurons import CubaLIF
from snnpipe.pipeline.stages.base import Stage, StepOutput, forward_blocks, load_teacher, register_stage
from snnpipe.pipeline.stages.losses import activity_penalty, kd_loss, logits_penalty


@dataclass
class KDActivityArgs:
    base: Literal["ratebp", "bptt"] = "bptt"
    temperature: PositiveFloat = 2.0
    alpha: Fraction = 0.5
    activity_weight: NonNegativeFloat = 0.5
    norm: Literal[1, 2] = 1
    logits_weight: NonNegativeFloat = 0.01


@register_stage("kd-activity", needs_teacher=True)
class KDActivity(Stage):
    Args = KDActivityArgs

    def __init__(self, model, config, data) -> None:
        super().__init__(model, config, data)
        self.teacher, self.teacher_input = load_teacher(config, model)

    def train(self, mode: bool = True) -> "KDActivity":
        super().train(mode)
        self.teacher.eval()
        return self

    def layer_rates(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The student's logits and each LIF layer's firing rate per neuron, with gradients.

        A rate is spikes / steps run: under Loihi's timing (``delay_shift``) the model runs T + L
        steps for T input steps, and the rate is over all of them, as `firing_rate`, the profiler
        and the reported rate count it. Under ``base=ratebp`` a layer is called once, on its rate.
        """
        sums: dict[int, Tensor] = {}
        calls: dict[int, int] = {}

        def hook(module, _inputs, output):
            if torch.is_grad_enabled():
                key = id(module)
                sums[key] = output if key not in sums else sums[key] + output
                calls[key] = calls.get(key, 0) + 1

        handles = [m.register_forward_hook(hook) for m in self.model.modules() if isinstance(m, CubaLIF)]
        try:
            logits, _ = forward_blocks(self.model, x, self.args.base)
        finally:
            for handle in handles:
                handle.remove()
        return logits, [total / calls[key] for key, total in sums.items()]

    def training_step(self, x: Tensor, y: Tensor, images: Tensor) -> StepOutput:
        a = self.args
        logits, rates = self.layer_rates(x)
        with torch.no_grad():
            teacher_logits = self.teacher(self.teacher_input(x, images)).mean(0)
        loss = kd_loss(logits, teacher_logits, y, a.temperature, a.alpha)
        if a.activity_weight:
            loss = loss + a.activity_weight * activity_penalty(rates, a.norm)
        if a.logits_weight:
            loss = loss + a.logits_weight * logits_penalty(logits)
        return StepOutput(loss, logits)
