"""``esd``: enhanced self-distillation (Zhao, Yu et al.; seed ``esd-enhanced-self-distillation-poster``).

Auxiliary branches of depthwise-separable convs read the rates of intermediate blocks and give
extra logits p_l; the teacher is the mean of the outputs that are right, and the loss is
`losses.esd_loss`. Runs on ``base=ratebp`` (the paper's one-step training, default) or
``base=bptt``. The branches belong to the stage and are dropped at export.

A branch hangs on every block but the stem, the head and the last feature block (which feeds the
head): ``convnet``, the default ``vgg`` and ``resnet`` get one, a four-stage
``vgg4`` three (the official code's ResNet-18 has
three). One branch is a working ESD: the teacher is the mean of the right ones among the branch's
and the network's outputs. A model with fewer than two branch points (`base.branch_points`: the
``mlp`` of one hidden layer, ``sequential`` and ``graph``) would get no branch, and ESD would be
its base alone, CE on the logits (the KL to a teacher made of the only output vanishes): it is
refused before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from snnpipe.arguments import NonNegativeFloat, PositiveFloat
from snnpipe.errors import SnnpipeError
from snnpipe.models.zoo import describe_model
from snnpipe.pipeline.stages.base import Stage, StepOutput, branch_points, forward_blocks, register_stage
from snnpipe.pipeline.stages.branches import block_shapes, esd_branch
from snnpipe.pipeline.stages.losses import esd_loss


@dataclass
class ESDArgs:
    """Defaults of the official CIFAR-100 run: alp 1, beta 0.3, temperature 3 (eta: see esd_loss)."""

    base: Literal["ratebp", "bptt"] = "ratebp"
    temperature: PositiveFloat = 3.0
    ce_weight: NonNegativeFloat = 1.0
    kd_weight: NonNegativeFloat = 0.3
    eta: NonNegativeFloat = 0.0


@register_stage("esd")
class ESD(Stage):
    Args = ESDArgs

    def __init__(self, model, config, data) -> None:
        super().__init__(model, config, data)
        points = branch_points(model)
        if len(points) < 2:
            blocks = ", ".join(model.blocks)
            raise SnnpipeError(
                f"stage 'esd' needs a block between the stem and the last feature block to hang a branch on, and "
                f"{describe_model(config.model, config.model_args)} has none (its blocks: {blocks}), so ESD would be "
                f"plain {self.args.base}; use a model with more blocks, e.g. --model convnet or --model vgg "
                f"(1 branch), --model vgg4 (3), or "
                f"--model mlp --model-arg hidden=[128,128] (1)"
            )
        shapes = block_shapes(model)
        # every block but the stem, the head and the last feature block (which feeds the head)
        self.points = points[:-1]
        final = shapes[points[-1]]
        self.branches = nn.ModuleList(esd_branch(shapes[i], final, model.num_classes) for i in self.points)

    def training_step(self, x: Tensor, y: Tensor, images: Tensor) -> StepOutput:
        logits, outputs = forward_blocks(self.model, x, self.args.base)
        branch_logits = [branch(outputs[i]) for branch, i in zip(self.branches, self.points)]
        a = self.args
        loss = esd_loss([*branch_logits, logits], y, a.temperature, a.ce_weight, a.kd_weight, a.eta)
        return StepOutput(loss, logits)
