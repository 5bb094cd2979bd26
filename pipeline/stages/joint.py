"""``joint``: joint ANN-SNN training with shared singular vectors (Joint A-SNN; Guo et al.; seed paper).

Every conv and linear weight, reshaped to a matrix W (out x in*kh*kw), is factorized
W = U diag(sigma) V^T. The SNN and its ANN twin share U and V and keep their own singular values
sigma_snn and sigma_ann, all initialized from the SVD of the initial weight (so the composition
reproduces it). Both networks get a branch (global average pooling + FC) after every block but the
stem and the head, and the loss is `losses.joint_loss`: CE and KL over all branch and final
outputs, the L2 hint on the branches' pooled features averaged over their elements (eq. (9) writes
a squared Frobenius norm: see `losses.joint_loss`), lambda1 = 1, lambda2 = 0.3. The paper trains
the SNN with surrogate gradients (``base=bptt``, default); ``base=ratebp`` also works. After each
step the SNN's composed weights are written into the model, so the checkpoint is a plain SNN: the
ANN side, the factors and the branches are dropped at export. The ANN side sees the normalized analog image (the direct encoding's), whatever
the SNN's encoding.

The paper's ablation (Table 4) runs from two switches, both on by default:

- ``shared_svd=false``: no factors; the SNN and its ANN twin (a copy of the SNN's initial weights)
  train their own weights, coupled only by the losses (Table 4's rows without WFT);
- ``branches=false``: no branches; the loss is CE on both final outputs and lambda1 KL between them
  (``lambda1=0`` too gives Table 4's "WFT without distillation", the ANN reaching the SNN only
  through the shared singular vectors).

Cost: a step runs the SNN over T steps, the ANN once, and composes every weight twice (and once
more after the optimizer step); measured side by side with ``bptt`` (benchmarks/joint_cost.py) a
step costs about 1.5x a bptt step on the CPU, the paper reports 1.37x (Table 4, 36.7 s against
26.7 s per epoch). The stateless first layers run once for a static (direct-coded) input and the
composed weights take the model's channels_last layout, as bptt's own forward does; without
that the step cost 1.8-2x.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from snnpipe.arguments import NonNegativeFloat
from snnpipe.models import create_model
from snnpipe.pipeline.encoding import normalize
from snnpipe.pipeline.stages.base import Stage, StepOutput, branch_points, forward_blocks, register_stage
from snnpipe.pipeline.stages.branches import PooledClassifier, block_shapes
from snnpipe.pipeline.stages.losses import joint_loss


@dataclass
class JointArgs:
    base: Literal["ratebp", "bptt"] = "bptt"
    lambda1: NonNegativeFloat = 1.0
    lambda2: NonNegativeFloat = 0.3
    branches: bool = True
    shared_svd: bool = True


def _key(name: str) -> str:
    return name.replace(".", "__")


def _memory_format(weight: Tensor) -> torch.memory_format:
    if weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


@contextlib.contextmanager
def swapped_weights(model: nn.Module, weights: dict[str, Tensor]):
    """Run ``model`` with the given tensors in place of its layers' ``weight`` parameters."""
    saved = {}
    for name, weight in weights.items():
        module = model.get_submodule(name)
        saved[name] = module._parameters.pop("weight")
        module.weight = weight
    try:
        yield
    finally:
        for name, param in saved.items():
            module = model.get_submodule(name)
            del module.weight
            module._parameters["weight"] = param


@register_stage("joint")
class Joint(Stage):
    Args = JointArgs

    def __init__(self, model, config, data) -> None:
        super().__init__(model, config, data)
        self.ann = create_model(
            config.model, input_shape=model.input_shape, num_classes=model.num_classes, spiking=False,
            **config.model_args,
        ).to(next(model.parameters()).device)
        self.ann.load_state_dict(model.state_dict())
        layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.layers = layers if self.args.shared_svd else []  # the factorized layers
        self.U, self.V = nn.ParameterDict(), nn.ParameterDict()
        self.sigma_snn, self.sigma_ann = nn.ParameterDict(), nn.ParameterDict()
        with torch.no_grad():
            for name in self.layers:
                weight = model.get_submodule(name).weight
                u, s, vh = torch.linalg.svd(weight.reshape(weight.shape[0], -1), full_matrices=False)
                self.U[_key(name)], self.V[_key(name)] = nn.Parameter(u), nn.Parameter(vh.T.contiguous())
                self.sigma_snn[_key(name)], self.sigma_ann[_key(name)] = nn.Parameter(s.clone()), nn.Parameter(s.clone())
        # the composed weights in the layout of the model's own (channels_last where train() made it
        # so), and the ANN twin in the model's layout: a conv whose input and weight layouts differ
        # converts one of them on every call, T times a step
        self.formats = {name: _memory_format(model.get_submodule(name).weight) for name in layers}
        if any(f is torch.channels_last for f in self.formats.values()):
            self.ann.to(memory_format=torch.channels_last)
        for net in (model, self.ann):  # composed from the factors: not trained directly
            for name in self.layers:
                net.get_submodule(name).weight.requires_grad_(False)
        shapes = block_shapes(model)
        self.points = branch_points(model) if self.args.branches else []
        self.snn_branches = nn.ModuleList(PooledClassifier(shapes[i], model.num_classes) for i in self.points)
        self.ann_branches = nn.ModuleList(PooledClassifier(shapes[i], model.num_classes) for i in self.points)

    def composed(self, sigma: nn.ParameterDict) -> dict[str, Tensor]:
        """W = U diag(sigma) V^T for every layer, in the layer's weight shape."""
        out = {}
        for name in self.layers:
            k = _key(name)
            shape = self.model.get_submodule(name).weight.shape
            out[name] = ((self.U[k] * sigma[k]) @ self.V[k].T).reshape(shape).contiguous(memory_format=self.formats[name])
        return out

    def training_step(self, x: Tensor, y: Tensor, images: Tensor) -> StepOutput:
        with swapped_weights(self.model, self.composed(self.sigma_snn)):
            logits, snn_blocks = forward_blocks(self.model, x, self.args.base)
        with swapped_weights(self.ann, self.composed(self.sigma_ann)):
            analog = normalize(images, self.data.mean, self.data.std).unsqueeze(0)
            ann_logits, ann_blocks = forward_blocks(self.ann, analog, "bptt")
        snn_features = [b.features(snn_blocks[i]) for b, i in zip(self.snn_branches, self.points)]
        ann_features = [b.features(ann_blocks[i]) for b, i in zip(self.ann_branches, self.points)]
        snn_out = [b.fc(f) for b, f in zip(self.snn_branches, snn_features)] + [logits]
        ann_out = [b.fc(f) for b, f in zip(self.ann_branches, ann_features)] + [ann_logits]
        loss = joint_loss(ann_out, snn_out, y, ann_features, snn_features, self.args.lambda1, self.args.lambda2)
        return StepOutput(loss, logits)

    @torch.no_grad()
    def after_step(self) -> None:
        for name, weight in self.composed(self.sigma_snn).items():
            self.model.get_submodule(name).weight.copy_(weight)
