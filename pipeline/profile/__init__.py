"""``snnpipe profile``: spikes, synaptic operations, energy and data movement of any spiking model,
per layer and per timestep, and a firing-rate regression gate.

One job per module, imports only downward (schema <- counting, metrics, frameworks <- hooks <- stage
<- deployed_counts <- deployed; deployed_data <- deployed):

- `schema`: the report's data shapes (`Profile`, `SynapseProfile`, `NeuronProfile`, `Totals`) and
  their JSON; what ``report.py`` and the gate read.
- `counting`: the counting engine (fan-out, ACs, MACs, NeuroBench's definitions, pooling folded).
- `metrics`: the accumulators over batches.
- `energy`: counts into energy and data movement, the one place with that arithmetic.
- `frameworks`: the neuron layers of each framework, a table (snnpipe, snnTorch, SpikingJelly,
  Norse, Sinabs); a new framework is one entry.
- `hooks`: the `Recorder`, which sees the model's calls and checks the contract.
- `stage`: `profile_module`, `profile_checkpoint` (and `profile`, which picks one).
- `estimators`: the energy models (``ops``, ``memory``, ``chip``), one module each, and their registry.
- `verdict`: the SNN and its ANN baselines priced by one model, break-even points, standard errors.
- `deployed`: `profile_deployed`, a Loihi file run in the bit-accurate simulator, counted as `stage` counts;
  `deployed_data` reads the file and plans its data, `deployed_counts` runs and counts it.
- `side_by_side`: a float profile beside its deployed one, as tables (schema only).
- `gate`: the firing-rate and energy gates.

The schema's names import at once; the others on first use (PEP 562), so that reading a profile
(``report.py``, the gate) never imports the counting stage and torch's hooks.
"""

from __future__ import annotations

import importlib
from typing import Any

from snnpipe.pipeline.profile.schema import SCHEMA, NeuronProfile, Profile, ProfileError, SynapseProfile, Totals

#: public name -> the module that defines it
_LAZY = {
    "GateResult": "gate", "energy_gate": "gate", "firing_rate_gate": "gate", "parse_fraction": "gate", "read_profile": "gate",
    "profile": "stage", "profile_checkpoint": "stage", "profile_module": "stage", "profile_to_reports": "stage",
    "profile_deployed": "deployed",
}

__all__ = ["SCHEMA", "NeuronProfile", "Profile", "ProfileError", "SynapseProfile", "Totals", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
