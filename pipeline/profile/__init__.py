"""``snnpipe profile``: spikes, synaptic operations, energy and data movement of any spiking model,
per layer and per timestep, and a firing-rate regression gate.

One job per module, imports only downward (schema <- counting, metrics, frameworks <- hooks <- stage):

- `schema`: the report's data shapes (`Profile`, `SynapseProfile`, `NeuronProfile`, `Totals`) and
  their JSON; what ``report.py`` and the gate read.
- `counting`: the counting engine (fan-out, ACs, MACs, NeuroBench's definitions, pooling folded).
- `metrics`: the accumulators over batches.
- `energy`: counts into energy and data movement, the one place with that arithmetic.
- `frameworks`: the neuron layers of each framework, a table (snnpipe, snnTorch, SpikingJelly,
  Norse, Sinabs); a new framework is one entry.
- `hooks`: the `Recorder`, which sees the model's calls and checks the contract.
- `stage`: `profile_module`, `profile_checkpoint` (and `profile`, which picks one).
- `gate`: the firing-rate gate.
"""

from snnpipe.pipeline.profile.gate import GateResult, firing_rate_gate, parse_fraction, read_profile
from snnpipe.pipeline.profile.schema import (
    SCHEMA, NeuronProfile, Profile, ProfileError, SynapseProfile, Totals,
)
from snnpipe.pipeline.profile.stage import profile, profile_checkpoint, profile_module, profile_to_reports

__all__ = [
    "SCHEMA", "GateResult", "NeuronProfile", "Profile", "ProfileError", "SynapseProfile", "Totals",
    "firing_rate_gate", "parse_fraction", "profile", "profile_checkpoint", "profile_module", "profile_to_reports",
    "read_profile",
]
