"""The ``ops`` energy model: operation counts times energy per operation, and the Joint A-SNN data
movement estimate (SNN `snnpipe.hw_targets.energy.EnergyTarget`, as snnpipe has always priced it)::

    SNN  compute      = ACs * ac_pj + MACs * mac_pj                            (synaptic layers)
         neuron_state = active * neuron_pj + inactive * neuron_inactive_pj + spikes * spike_pj
         memory       = (T * 2 * neurons * 32 + spikes) / 64 * move64_pj       (neuron layers)
    ANN  compute      = MACs * mac_pj(precision)
         memory       = 2 * neurons * activation_bits / 64 * move64_pj

The target's constants: ``cmos45nm`` (Horowitz 2014, FP32: AC 0.9 pJ, MAC 4.6 pJ), ``loihi`` (Davies
et al. 2018, Table 2) or a target file; the ANN's MAC at its precision (`hw_targets/precision.py`).
``move64_pj`` ranges over Joint A-SNN §5.4's 10 to 100 pJ per 64-bit move (``move64_min_pj`` to
``move64_max_pj``); the nominal value is the middle of the range. Joint A-SNN Table 5's check:
73.4M ACs and 3.52M MACs cost 82.2 uJ of compute (`tests/test_energy.py`).
"""

from __future__ import annotations

from snnpipe.hw_targets.energy import EnergyTarget
from snnpipe.hw_targets.precision import Precision
from snnpipe.pipeline.profile.estimators.base import NetworkView, Priced, Span, register_energy_model

#: Bits of state the Joint A-SNN estimate moves per neuron and step (a 32-bit membrane potential).
MEMBRANE_BITS = 32


def move64(target: EnergyTarget) -> Span:
    """pJ per 64-bit move: the middle of the target's range, and the range."""
    return Span((target.move64_min_pj + target.move64_max_pj) / 2, target.move64_min_pj, target.move64_max_pj)


@register_energy_model("ops", "operations x energy per op (Horowitz 2014 / Davies 2018) + Joint A-SNN data movement")
def price_ops(net: NetworkView, target: EnergyTarget, precision: Precision, **_: object) -> Priced:
    """Price ``net``: an SNN at the ``target``'s constants, an ANN at ``precision`` (module docstring)."""
    move = move64(target)
    layers: dict[str, dict[str, Span]] = {}
    for s in net.synapses:
        pj = s.acs * target.ac_pj + s.macs * target.mac_pj if net.spiking else s.macs * precision.mac_pj
        layers[s.name] = {"compute": Span.of(pj)}
    inactive_pj = target.neuron_pj if target.neuron_inactive_pj is None else target.neuron_inactive_pj
    for n in net.neurons:
        if net.spiking:
            state = (n.active_updates * target.neuron_pj + (n.neuron_updates - n.active_updates) * inactive_pj
                     + n.spikes * target.spike_pj)
            bits = net.timesteps * 2 * n.neurons * MEMBRANE_BITS + n.spikes
            layers[n.name] = {"neuron_state": Span.of(state), "memory": bits / 64 * move}
        else:
            layers[n.name] = {"memory": 2 * n.neurons * precision.act_bits / 64 * move}
    return Priced(layers)
