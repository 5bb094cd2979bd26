"""``ann``: the ANN twin (ReLU in place of LIF), trained on the analog input at T = 1.

It is the teacher of the distillation stages, and a starting point for SNN stages (``--init``):
the twin shares the SNN's weight layout, so its weights load into the SNN unchanged.
"""

from __future__ import annotations

from snnpipe.pipeline.stages.base import register_stage
from snnpipe.pipeline.stages.bptt import BPTT


@register_stage("ann")
class ANN(BPTT):
    spiking = False
