"""``check_config(config) -> TrainConfig``: a training configuration refused in one line before any
work, and before torch is imported: names and arguments are checked against the registries'
`catalog`, so a mistake on the command line, in a config file or in a recipe answers at once."""

from __future__ import annotations

import re
from dataclasses import replace

from snnpipe.arguments import check_keywords, from_options
from snnpipe.errors import SnnpipeError
from snnpipe.pipeline.catalog import catalog
from snnpipe.pipeline.config import TrainConfig

#: The devices `runtime.resolve_device` takes.
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


def check_config(config: TrainConfig) -> TrainConfig:
    """Refuse a config that cannot train: an unknown dataset, encoding, model or stage, a device
    torch would not parse, a model or stage argument of the wrong type or range, a missing
    teacher. Returns it resolved (dataset
    defaults filled in) with the model arguments coerced (YAML lists as tuples)."""
    if not _DEVICE.fullmatch(config.device):
        raise SnnpipeError(f"unknown device {config.device!r}: use auto, cpu, cuda or cuda:N")
    known = catalog()
    if config.encoding not in known.encodings:
        raise SnnpipeError(f"unknown encoding {config.encoding!r}: choose one of {', '.join(known.encodings)}")
    resolved = config.resolved(known.dataset(config.dataset))
    model = known.model(resolved.model)
    if model.imported and config.init is None:
        zoo = ", ".join(sorted(name for name, info in known.models.items() if not info.imported))
        raise SnnpipeError(f"model {model.name!r} holds a network that `snnpipe import nir` brings in; fine-tune it with "
                           f"--init CHECKPOINT (or --init FILE.nir), or train a zoo model: {zoo}")
    model_args = check_keywords(model.arguments, resolved.model_args, f"--model-arg of {model.name!r}",
                                f"model {model.name!r}")
    stage = known.stage(resolved.stage)
    args = from_options(stage.args, resolved.stage_args, f"stage {stage.name!r}", spell=lambda key: f"--stage-arg {key}")
    # one-step: RateBP itself, and the distillation stages on base=ratebp (`Stage.graph_over_time`)
    one_step = stage.name == "ratebp" or getattr(args, "base", None) == "ratebp"
    if resolved.grad_scale != "1" and not one_step:
        raise SnnpipeError(f"grad_scale={resolved.grad_scale} scales the one-step (rate) pass, and stage "
                           f"{stage.name!r} trains through time here; leave grad_scale at 1 or use base=ratebp")
    if stage.needs_teacher and resolved.teacher is None:
        raise SnnpipeError(f"stage {stage.name!r} needs a teacher: pass --teacher CKPT (e.g. an ann stage's checkpoint)")
    if not stage.needs_teacher and resolved.teacher is not None:
        distilling = ", ".join(name for name, info in sorted(known.stages.items()) if info.needs_teacher)
        raise SnnpipeError(f"stage {stage.name!r} takes no teacher: --teacher {resolved.teacher} would be ignored; leave "
                           f"it out, or train a stage that distills from one: {distilling}")
    return replace(resolved, model_args=model_args)
