"""``ann-guided``: ANN-guided block-wise distillation (EAGD; Yang, Yu et al.; seed abstract).

A pretrained ANN teacher (``--teacher``, an ``ann`` stage checkpoint of the same model) is split at
the student's blocks. Hybrid model M_k runs the SNN's blocks up to k, maps their rates into the
ANN's feature space with a learnable 1x1 conv + BN, and finishes with the frozen ANN blocks after
k; the loss is `losses.eagd_loss`: CE(SNN, y) + sum_k KL(ANN || M_k) + KL(ANN || SNN). Gradients
of the hybrids flow through the frozen ANN blocks into the mapping and the SNN. Trained with
rate-based backpropagation (``base=ratebp``, default) or ``base=bptt``. The teacher sees the
normalized analog image it was trained on, whatever the student's encoding. The abstract gives no
temperature or weights: 1 each. The teacher and the mappings are dropped at export.

Where the hybrids are: ``hybrids=N`` builds M_k after the first N blocks between the stem and the
head; the default (null) after every one of them, 4 on ``vgg4``. The paper's Figure 1 has 3 on a
ResNet of 4 stages (M_0, M_1, M_2 after stages 1-3; after stage 4 only the head is left, and the
SNN itself is the last model): ``hybrids=3`` on ``vgg4`` is that placement, the one
recipes/protocol-v2-eagd.yaml runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import Tensor, nn

from snnpipe.arguments import NonNegativeFloat, PositiveFloat, Range
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
    hybrids: Annotated[int, Range(0)] | None = None


@register_stage("ann-guided", needs_teacher=True)
class AnnGuided(Stage):
    Args = AnnGuidedArgs

    def __init__(self, model, config, data) -> None:
        super().__init__(model, config, data)
        self.teacher, self.teacher_input = load_teacher(config, model, spiking=False)
        shapes = block_shapes(model)
        points = branch_points(model)
        if not points:
            raise SnnpipeError(f"model {config.model!r} has no intermediate block for ann-guided distillation")
        hybrids = self.args.hybrids
        if hybrids is not None and hybrids > len(points):
            raise SnnpipeError(f"--stage-arg hybrids={hybrids}: model {config.model!r} has {len(points)} blocks between "
                               f"its stem and head; give at most {len(points)}, or leave it out for one after each")
        self.points = points[:hybrids]
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
