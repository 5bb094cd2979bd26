"""The ``chip`` energy model: an SNN on a neuromorphic chip (`snnpipe.hw_targets.chip`: ``loihi``,
``loihi2`` or a chip file), mapped onto cores as the Loihi export maps it
(`snnpipe.hw_targets.loihi.cores.cores_for`: each layer its own cores, enough for its neurons and
its unrolled synapses at ``synapse_bits`` each), with the chip's static power over the run::

    compute      = (ACs + MACs) * synop_pj            (a graded input is one synaptic op, as on Loihi)
    neuron_state = active * neuron_active_pj + (updates - active) * neuron_inactive_pj
    addressing   = spikes * spike_pj                  (each spike sent within its tile)
                 + E * C_dst * hops * hop_pj          (each input event multicast to the C_dst cores
                                                       of the layer it enters, crossing ``hops`` tiles)
    memory       = 0                                  (the synaptic SRAM read is inside synop_pj)
    static       = static_w * chips * steps * step_s  (the whole chip idles and leaks for the run,
                                                       its unused cores and neurons included)

Every neuron of a layer is updated every step, firing or not: the inactive updates are the idle
neurons' cost (Davies et al. 2018, Table 2). ``hops``: consecutive layers sit on consecutive cores,
one core per tile, so a message crosses ``max(1, ceil((C_src + C_dst) / 2))`` tiles between the
centres of the two blocks (our assumption: the export places no cores); its range is 1 hop at
``hop_min_pj`` to ``hops`` at ``hop_max_pj``. ``chips = ceil(cores / cores_per_chip)``. The chip's
ANN baselines are priced by the ``memory`` model (an ANN runs on a conventional accelerator).
"""

from __future__ import annotations

import math

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.loihi.cores import CoreLimits, cores_for
from snnpipe.pipeline.profile.estimators.base import NetworkView, Priced, Span, register_energy_model


def layer_cores(net: NetworkView, chip: Chip) -> dict[str, int]:
    """Cores per synaptic layer: its output neurons and its unrolled synapses (`cores_for`)."""
    limits = CoreLimits(chip.neurons_per_core, chip.memory_bytes_per_core, max(1, math.ceil(chip.synapse_bits / 8)),
                        chip.cores_per_chip, source=chip.sources.get("neurons_per_core", chip.name))
    return {s.name: cores_for(s.outputs, s.dense_macs, limits) for s in net.synapses}


@register_energy_model("chip", "a neuromorphic chip (Loihi, Loihi 2, or a chip file): per-op energies, routing, static power x latency",
                       baseline="memory")
def price_chip(net: NetworkView, chip: Chip, **_: object) -> Priced:
    """Price an SNN on ``chip`` (module docstring)."""
    cores = layer_cores(net, chip)
    layers: dict[str, dict[str, Span]] = {}
    previous = 0
    for s in net.synapses:
        hops = max(1, math.ceil((previous + cores[s.name]) / 2))
        hop = Span(hops * (chip.hop_min_pj + chip.hop_max_pj) / 2, chip.hop_min_pj, hops * chip.hop_max_pj)
        messages = s.input_events * cores[s.name] if net.event_driven(s) else 0.0
        layers[s.name] = {"compute": Span.of((s.acs + s.macs) * chip.synop_pj), "addressing": messages * hop,
                          "memory": Span.of(0.0)}
        previous = cores[s.name]
    for n in net.neurons:
        layers[n.name] = {
            "neuron_state": Span.of(n.active_updates * chip.neuron_active_pj
                                    + (n.neuron_updates - n.active_updates) * chip.neuron_inactive_pj),
            "addressing": Span.of(n.spikes * chip.spike_pj),
        }
    network = {}
    if chip.static_w is not None:
        chips = math.ceil(sum(cores.values()) / chip.cores_per_chip)
        network["static"] = Span.of(chip.static_w * chips * net.timesteps * chip.step_s * 1e12)
    return Priced(layers, network)
