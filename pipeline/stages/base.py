"""The stage base class and registry: one trainer, and a stage is the loss and the extra modules it needs.

A stage class registers itself with ``@register_stage("name", needs_teacher=...)``; the trainer builds it with the
model and the config, optimizes ``stage.trainable()`` (the model's parameters, plus any auxiliary
modules), calls ``training_step(x, y, images)`` on each batch (x the encoded (T, B, ...) input,
images the same batch's [0, 1] images, for teachers and ANN twins that take the analog image) and
``after_step`` after each optimizer step.

Auxiliary modules (distillation branches, mapping layers, the ANN side of joint training) are
submodules of the stage, not of the model: the checkpoint's weights are ``model_state_dict()``, so
export and profile never see them, while ``aux_state_dict()`` travels in the training state so that
``--resume`` restores them. A stage's options are the fields of its ``Args`` dataclass, given as
``--stage-arg KEY=VALUE``; an unknown key is refused.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn

from snnpipe.arguments import from_options
from snnpipe.errors import SnnpipeError
from snnpipe.models import SpikingModel, topology
from snnpipe.models.layers import rate_based
from snnpipe.models.neurons import Neuron
from snnpipe.models.zoo import describe_model
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import DataSpec
from snnpipe.pipeline.stages.teacher import TeacherInput
from snnpipe.registry import register_into


@dataclass
class StepOutput:
    """What one training step produced: the loss to minimize and the batch's logits (B, classes)."""

    loss: Tensor
    logits: Tensor


@dataclass
class NoArgs:
    """A stage without options."""


class Stage(nn.Module):
    """Base class. ``spiking=False`` stages train the ANN twin at T = 1 on the analog input."""

    name: ClassVar[str]
    needs_teacher: ClassVar[bool] = False
    spiking: ClassVar[bool] = True
    Args: ClassVar[type] = NoArgs

    def __init__(self, model: SpikingModel, config: TrainConfig, data: DataSpec) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.data = data
        self.args = stage_arguments(self.name, config.stage_args)

    @classmethod
    def graph_over_time(cls, args: Any) -> bool:
        """Whether training keeps autograd's graph over all T steps (BPTT), so that its memory grows
        with T; the one-step stages (RateBP, and the distillation stages on ``base=ratebp``) do not."""
        return getattr(args, "base", "bptt") == "bptt"

    def training_step(self, x: Tensor, y: Tensor, images: Tensor) -> StepOutput:
        """Loss and logits for one batch; x is the encoded input (T, B, ...), images the batch's
        [0, 1] images (B, C, H, W)."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each optimizer step (e.g. to recompose factorized weights)."""

    def trainable(self) -> Iterator[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    def model_state_dict(self) -> dict[str, Tensor]:
        """The weights the checkpoint keeps: the model's alone."""
        return self.model.state_dict()

    def aux_state_dict(self) -> dict[str, Tensor]:
        """The auxiliary modules' state, for resuming (never exported)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("model.")}

    def load_aux_state_dict(self, state: dict[str, Tensor]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("model.")]
        if missing or unexpected:
            raise SnnpipeError(f"the stage state of this checkpoint does not fit stage {self.name!r}")


def forward_blocks(model: SpikingModel, x: Tensor, base: str) -> tuple[Tensor, list[Tensor]]:
    """Logits and every block's time-averaged output, with gradients, under ``base`` training.

    - ``ratebp``: a graph-free RECORD pass over the T steps, then one RATE pass on the time-averaged
      input; each block's output is then its firing rate with the RateBP gradient.
    - ``bptt``: the T steps with the graph; each block's output is averaged over T.
    The last block is the head: its output (the logits) is returned first, and also last in the list.
    """
    blocks = list(model.blocks.values())
    if base == "ratebp":
        outputs = []
        with rate_based(model, x) as h:
            for block in blocks:
                h = block(h)
                outputs.append(h)
        return outputs[-1], outputs
    if base == "bptt":
        model.reset_state()
        sums: list[Tensor] = []
        with model.timing(x) as steps:  # Loihi's delays under delay_shift
            prefix, first = _static_split(model, steps)
            stem = prefix(steps[0]) if prefix is not None else None
            for x_t in steps:
                for i, block in enumerate(blocks):
                    if i == 0:
                        h = first(stem) if prefix is not None else block(x_t)
                    else:
                        h = block(h)
                    if len(sums) <= i:
                        sums.append(h)
                    else:
                        sums[i] = sums[i] + h
        outputs = [s / len(steps) for s in sums]
        return outputs[-1], outputs
    raise SnnpipeError(f"unknown base {base!r}: a distillation stage runs on ratebp or bptt")


def _static_split(model: SpikingModel, steps: Tensor) -> tuple[nn.Sequential | None, nn.Sequential | None]:
    """The first block cut at its first neuron, (stateless layers before it, the rest), when every
    timestep is the same tensor (stride 0 along T, as the direct encoding makes it); else (None, None).

    The stateless layers then run once instead of T times, as `SpikingModel.forward` does for
    ``bptt``: the same outputs and gradients (the first layer's gradient arrives summed over the T
    steps either way), and BatchNorm's running statistics move once per batch, as in ``bptt``.
    """
    first = next(iter(model.blocks.values()))
    if not (steps.dim() > 1 and steps.stride(0) == 0 and len(steps) > 1 and isinstance(first, nn.Sequential)):
        return None, None
    children = list(first)
    cut = next((i for i, m in enumerate(children) if any(isinstance(n, Neuron) for n in m.modules())), len(children))
    if cut == 0:
        return None, None
    return nn.Sequential(*children[:cut]), nn.Sequential(*children[cut:])


def branch_points(model: SpikingModel) -> list[int]:
    """Indices of the blocks whose outputs the distillation branches read: every block but the
    stem (a single conv layer) and the head."""
    names = list(model.blocks)
    return [i for i, name in enumerate(names) if name not in ("stem", "head")]


def load_teacher(config: TrainConfig, model: SpikingModel,
                 spiking: bool | None = None) -> tuple[SpikingModel, TeacherInput]:
    """The frozen teacher of ``--teacher``, which must have the student's topology, and how it
    sees a batch (`TeacherInput`: an ANN the normalized image it was trained on).

    Args:
        spiking: build the teacher as ANN (False) or SNN (True); None keeps the checkpoint's kind.
    """
    from snnpipe.pipeline.checkpoint import Checkpoint, CheckpointError

    if config.teacher is None:
        raise SnnpipeError(f"stage {config.stage!r} needs a teacher: pass --teacher CKPT (e.g. an ann stage's checkpoint)")
    source = Checkpoint.load(config.teacher)
    if source.model_name != config.model or topology(source.model_args) != topology(config.model_args):
        raise CheckpointError(
            f"teacher {config.teacher} is {describe_model(source.model_name, source.model_args)}, the student "
            f"{describe_model(config.model, config.model_args)}: the topologies must match; train the student as "
            f"--model {describe_model(source.model_name, source.model_args).replace(' (default arguments)', '')}"
        )
    teacher = source.build_model(spiking=spiking)
    if [tuple(p.shape) for p in teacher.parameters()] != [tuple(p.shape) for p in model.parameters()]:
        raise CheckpointError(f"teacher {config.teacher} has other layer shapes than the student (input or classes differ)")
    teacher.eval()
    for param in teacher.parameters():
        param.requires_grad_(False)
    device = next(model.parameters()).device
    sees = TeacherInput(
        spiking=teacher.spiking, encoding=source.encoding, timesteps=source.timesteps, mean=source.data.mean,
        std=source.data.std, student_encoding=config.encoding, student_timesteps=config.timesteps,
        generator=torch.Generator(device).manual_seed(config.seed),
    )
    return teacher.to(device), sees


STAGES: dict[str, type[Stage]] = {}


def register_stage(name: str, needs_teacher: bool = False):
    """Class decorator: register a `Stage` under ``name``; a duplicate name is refused.

    Args:
        needs_teacher: the stage distills from ``--teacher CKPT`` and cannot run without one.
    """

    def wrap(cls: type[Stage]) -> type[Stage]:
        cls.name, cls.needs_teacher = name, needs_teacher
        return register_into(STAGES, name, "stage")(cls)

    return wrap


def get_stage(name: str) -> type[Stage]:
    if name not in STAGES:
        close = difflib.get_close_matches(name, STAGES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SnnpipeError(f"unknown stage {name!r}{hint}: choose one of {', '.join(sorted(STAGES))}")
    return STAGES[name]


def stage_arguments(name: str, raw: dict[str, Any]) -> Any:
    """The stage's ``Args`` from ``--stage-arg`` values, each checked against its type and range."""
    cls = get_stage(name)
    return from_options(cls.Args, raw, f"stage {name!r}", spell=lambda key: f"--stage-arg {key}")
