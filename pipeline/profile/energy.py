"""Energy and data movement from a profile's counts: the one place where counts become joules.

With an `EnergyTarget` (``hw_targets/energy.py`` holds the constants and their sources)::

    E_compute = ACs * ac_pj + MACs * mac_pj + active * neuron_pj + inactive * neuron_inactive_pj
              + spikes * spike_pj
    bits_ANN  = 2 * sum(activation sizes) * 32                        (Joint A-SNN §5.4)
    bits_SNN  = T * 2 * sum(activation sizes) * 32 + spikes * 1       (membrane potentials + spikes)
    E_move    = bits / 64 * [move64_min_pj, move64_max_pj]

`totals` adds up the layers; `compare` gives ANN / SNN for compute and total energy.
"""

from __future__ import annotations

import math

from snnpipe.hw_targets.energy import EnergyTarget
from snnpipe.pipeline.profile.schema import LayerProfile, NeuronProfile, Profile, SynapseProfile, Totals


class ActivationSparsity:
    """Stateless: NeuroBench's activation sparsity, 1 - nonzero outputs / all outputs of all neuron
    layers over all timesteps (nonzero outputs: the active updates)."""

    def __call__(self, neurons: list[NeuronProfile]) -> float:
        total = sum(layer.neuron_updates for layer in neurons)
        return 1.0 - sum(layer.active_updates for layer in neurons) / total if total else 0.0


class DataMovement:
    """Stateless: bits moved per inference (Joint A-SNN §5.4).

    ANN: 2 x sum of activation sizes x 32 bit (each feature map written to and read from cache).
    SNN: T x 2 x sum of activation sizes x 32 bit (membrane potentials) + 1 bit per spike.
    """

    def __call__(self, neurons: list[NeuronProfile], timesteps: int, spiking: bool) -> float:
        activations = sum(layer.neurons for layer in neurons)
        if not spiking:
            return 2.0 * activations * 32
        return timesteps * 2.0 * activations * 32 + sum(layer.spikes for layer in neurons)


class ComputeEnergy:
    """Stateless: a layer's compute energy on a target, in pJ (`EnergyTarget` has the equations)."""

    def __init__(self, target: EnergyTarget, spiking: bool) -> None:
        self.target, self.spiking = target, spiking

    def __call__(self, layer: LayerProfile) -> float:
        if isinstance(layer, SynapseProfile):
            return self.target.synaptic_pj(layer.acs, layer.macs)
        if not self.spiking:  # an ANN's activation function is not a neuron update
            return 0.0
        return self.target.neuron_pj_total(layer.neuron_updates, layer.active_updates, layer.spikes)


def totals(layers: list[LayerProfile], timesteps: int, spiking: bool, target: EnergyTarget) -> Totals:
    """Sums over the layers (their ``energy_pj`` already set), the energies in microjoules, and the
    data movement (min and max)."""
    syn = [layer for layer in layers if isinstance(layer, SynapseProfile)]
    neu = [layer for layer in layers if isinstance(layer, NeuronProfile)]
    spikes = sum(layer.spikes for layer in neu)
    updates = sum(layer.neuron_updates for layer in neu)
    synapse_pj = sum(layer.energy_pj for layer in syn)
    neuron_pj = sum(layer.energy_pj for layer in neu)
    bits = DataMovement()(neu, timesteps, spiking)
    move_min, move_max = target.movement_pj(bits)
    ops = {key: sum(getattr(layer, key) for layer in syn) for key in ("acs", "macs", "effective_acs", "effective_macs", "dense")}
    compute_uj = (synapse_pj + neuron_pj) * 1e-6
    return Totals(
        **ops, spikes=spikes, neurons=sum(layer.neurons for layer in neu), state_size=sum(layer.state_size for layer in neu),
        neuron_updates=updates, firing_rate=spikes / updates if updates else 0.0,
        activation_sparsity=ActivationSparsity()(neu),
        synapse_energy_uj=synapse_pj * 1e-6, neuron_energy_uj=neuron_pj * 1e-6, compute_energy_uj=compute_uj,
        movement_bits=bits, movement_min_uj=move_min * 1e-6, movement_max_uj=move_max * 1e-6,
        total_min_uj=compute_uj + move_min * 1e-6, total_max_uj=compute_uj + move_max * 1e-6)


def compare(snn: Profile, ann: Profile) -> dict[str, float]:
    """ANN / SNN ratios of compute energy and of total energy (min and max data movement)."""
    ratio = lambda a, b: a / b if b else math.inf  # noqa: E731
    return {f"ann_over_snn_{key}": ratio(getattr(ann.totals, key), getattr(snn.totals, key))
            for key in ("compute_energy_uj", "total_min_uj", "total_max_uj")}
