"""``ann-guided``: ANN-guided block-wise distillation (EAGD; Yang, Yu et al.; seed abstract).

A pretrained ANN teacher (``--teacher``, an ``ann`` stage checkpoint of the same model) is split at
the student's blocks. Hybrid model M_k runs the SNN's blocks up to k, maps their rates into the
ANN's feature space with a learnable 1x1 conv + BN, and finishes with the frozen ANN blocks after
k; the loss is `losses.eagd_loss`: CE(SNN, y) + sum_k KL(ANN || M_k) + KL(ANN || SNN). Gradients
of the hybrids flow through the frozen ANN blocks into the mapping and the SNN. Trained with
rate-based backpropagation (``base=ratebp``, default) or ``base=bptt``. The teacher sees the
normalized analog image it was trained on, whatever the student's encoding. The abstract gives no
temperature or weights: 1 each. The teacher and the mappings are dropped at export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from snnpipe.arguments import NonNegativeFloat, PositiveFloat
from snnpipe.errors import SnnpipeError
from snnpipe.pipeline.stages.base import Stage, StepOutput, branch_points, forward_blocks, load_teacher, register_stage
from snnpipe.pipeline.stages.branches import block_shapes, feature_mapper
from snnpipe.pipeline.stages.losses import eagd_loss


@dataclass
class AnnGuidedArgs:
    base: Literal["ratebp", "bptt"] = "ratebp"
    temperature: PositiveFloat = 1.0
    hybrid_weight: NonNegativeFloat = 1.0
    kd_weight: NonNegativeFloat = 1.0


@register_stage("ann-guided", needs_teacher=True)
class AnnGuided(Stage):
    Args = AnnGuidedArgs

    def __init__(self, model, config, data) -> None:
        super().__init__(model, config, data)
        self.teacher, self.teacher_input = load_teacher(config, model, spiking=False)
        shapes = block_shapes(model)
        self.points = branch_points(model)
        if not self.points:
            raise SnnpipeError(f"model {config.model!r} has no intermediate block for ann-guided distillation")
        self.mappers = nn.ModuleList(feature_mapper(shapes[i]) for i in self.points)

    def train(self, mode: bool = True) -> "AnnGuided":
        super().train(mode)
        self.teacher.eval()  # frozen: running statistics stay the pretrained ones
        return self

    def training_step(self, x: Tensor, y: Tensor, images: Tensor) -> StepOutput:
        logits, outputs = forward_blocks(self.model, x, self.args.base)
        with torch.no_grad():
            ann_logits = self.teacher.step(self.teacher_input(x, images)[0])
        hybrids = [self.teacher.step(mapper(outputs[i]), start=i + 1) for mapper, i in zip(self.mappers, self.points)]
        a = self.args
        loss = eagd_loss(logits, hybrids, ann_logits, y, a.temperature, a.hybrid_weight, a.kd_weight)
        return StepOutput(loss, logits)
