"""Energy models, selectable (``snnpipe profile --energy-model ops|memory|chip``): each prices a
network's counts, split by term (compute, addressing, memory, neuron_state, static), with a range
over its constants' published values. One module each, registered by `register_energy_model`:

- `ops`: operation counts x energy per operation and Joint A-SNN's data movement (today's model);
- `memory`: Lemaire et al. 2022, every memory access priced by the size of its memory;
- `chip`: a neuromorphic chip (Loihi, Loihi 2, a chip file), with core mapping and static power.

`base` holds what they share; `snnpipe.pipeline.profile.verdict` runs them on a profile (the SNN and
its baselines, break-even points, standard errors).
"""

from snnpipe.pipeline.profile.estimators import chip, memory, ops  # each registers itself
from snnpipe.pipeline.profile.estimators.base import ENERGY_MODELS, EnergyModelEntry, Priced, Span, register_energy_model

__all__ = ["chip", "memory", "ops", "ENERGY_MODELS", "EnergyModelEntry", "Priced", "Span", "register_energy_model"]
