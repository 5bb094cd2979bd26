"""Training stages: one module each, found here by looking, not by a list.

A stage is a module in this package that defines a `Stage` subclass with
``@register_stage("name", needs_teacher=...)`` (see `base`); adding a stage is adding that file.
Importing this package imports every module in it, so `STAGES` holds them all.
"""

import importlib
import pkgutil

from snnpipe.pipeline.stages.base import (  # noqa: F401  (the public names)
    STAGES,
    Stage,
    StepOutput,
    get_stage,
    register_stage,
    stage_arguments,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
