"""The ``chip`` energy model: an SNN on a neuromorphic chip (`snnpipe.hw_targets.chip`: a chip file
each), with the chip's power over the run::

    compute      = (ACs + MACs) * synop_pj            (a graded input is one synaptic op, as on Loihi)
    neuron_state = active * neuron_active_pj + (updates - active) * neuron_inactive_pj
    addressing   = spikes * spike_pj                  (each spike sent within its tile)
                 + E * C_dst * hops * hop_pj          (each input event multicast to the C_dst cores
                                                       of the layer it enters, crossing ``hops`` tiles)
    memory       = 0                                  (the synaptic SRAM read is inside synop_pj)
    static       = static_w * chips * steps * step_s  (the whole chip draws it for the run, its unused
                                                       cores and neurons included)

Each constant is the chip's published value, its range the published range where the chip file gives
one (``[ranges]``): every term is a `Span` from the low ends to the high ends. A constant the chip
does not give (not published) is not charged: its term is 0, and the figure is a lower bound.

Every neuron of a layer is updated every step, firing or not: the inactive updates are the idle
neurons' cost (Davies et al. 2018, Table 2). Hops (only where the chip gives hop energies) need the
cores of each layer, counted as the Loihi export maps it (`snnpipe.hw_targets.loihi.cores.cores_for`:
each layer its own cores, enough for its neurons and its unrolled synapses at ``synapse_bits``
each): consecutive layers sit on consecutive cores, one core per tile, so a message crosses
``max(1, ceil((C_src + C_dst) / 2))`` tiles between the centres of the two blocks (our assumption:
the export places no cores); its range is 1 hop at ``hop_min_pj`` to ``hops`` at ``hop_max_pj``.
``chips``: the fit's (`snnpipe.pipeline.fit.chip_cost` passes the chip's own mapper's count), else
``ceil(cores / cores_per_chip)`` where the chip gives its cores, else 1. The chip's ANN baselines
are priced by the ``memory`` model (an ANN runs on a conventional accelerator).
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


def constant(chip: Chip, name: str) -> Span:
    """A chip's constant with its published range (`Chip.bounds`); 0 where the chip does not give it."""
    bounds = chip.bounds(name)
    return Span(*bounds) if bounds else Span.of(0.0)


def step_time(chip: Chip, steps: int) -> Span | None:
    """The run's time, ``steps x step_s`` in seconds, with its range; None without a time per step."""
    return steps * constant(chip, "step_s") if chip.step_s is not None else None


@register_energy_model("chip", "a neuromorphic chip (Loihi, Loihi 2, Xylo, or a chip file): per-event energies, routing, "
                       "power x latency", baseline="memory")
def price_chip(net: NetworkView, chip: Chip, chips: int | None = None, **_: object) -> Priced:
    """Price an SNN on ``chip`` (module docstring); ``chips``: how many the network takes."""
    synop, active, inactive, spike = (constant(chip, n) for n in ("synop_pj", "neuron_active_pj", "neuron_inactive_pj",
                                                                  "spike_pj"))
    routed = chip.hop_min_pj is not None  # hop energies come with the chip's cores (`HOPS`)
    cores = layer_cores(net, chip) if routed or (chips is None and chip.neurons_per_core is not None) else {}
    layers: dict[str, dict[str, Span]] = {}
    previous = 0
    for s in net.synapses:
        layers[s.name] = {"compute": (s.acs + s.macs) * synop, "addressing": Span.of(0.0), "memory": Span.of(0.0)}
        if routed:
            hops = max(1, math.ceil((previous + cores[s.name]) / 2))
            hop = Span(hops * (chip.hop_min_pj + chip.hop_max_pj) / 2, chip.hop_min_pj, hops * chip.hop_max_pj)
            messages = s.input_events * cores[s.name] if net.event_driven(s) else 0.0
            layers[s.name]["addressing"] = messages * hop
            previous = cores[s.name]
    for n in net.neurons:
        layers[n.name] = {"neuron_state": n.active_updates * active + (n.neuron_updates - n.active_updates) * inactive,
                          "addressing": n.spikes * spike}
    network = {}
    run = step_time(chip, net.timesteps)
    if chip.static_w is not None and run is not None:
        if chips is None:
            chips = math.ceil(sum(cores.values()) / chip.cores_per_chip) if cores else 1
        network["static"] = constant(chip, "static_w") * run * (chips * 1e12)
    return Priced(layers, network)
