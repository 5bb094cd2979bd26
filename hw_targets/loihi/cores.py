"""How many Loihi 2 neuro cores a network needs: per-core limits and a lower-bound layer mapping.

Limits, from Intel Labs, "Taking Neuromorphic Computing to the Next Level with Loihi 2", technology
brief (2021), Table 1 (Loihi 2 column):

- 128 neuro cores per chip;
- up to 1 million neurons per chip, i.e. 8,192 per core (1,048,576 / 128);
- 192 KB of memory per core, shared between synapses, neuron state and routing;
- up to 120 million synapses per chip.

Mapping rule (a lower bound: no fragmentation, no routing tables): each layer (each node of a
graph, with the synapses of all its incoming connections: a residual block's shortcut is stored
with the neurons it feeds) gets its own cores,
enough for its neurons (8,192 per core) and for its synaptic weights at one byte each (the 8-bit
mantissa) in 192 KB, whichever needs more. Conv synapses are counted unrolled (every output
neuron's taps), as Loihi 1 stored them; weight sharing across a conv, where the Loihi 2 compiler
can use it, needs fewer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch-free at run time: the energy models price cores without a network
    from snnpipe.hw_targets.loihi.graph import LoihiGraph
    from snnpipe.hw_targets.loihi.network import LoihiLayer, LoihiNetwork

SOURCE = ("Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', technology brief "
          "(2021), Table 1: 128 cores/chip, 1M neurons/chip (8,192/core), 192 KB memory/core, 120M synapses/chip")


@dataclass(frozen=True)
class CoreLimits:
    """Per-core capacity of a Loihi 2 neuro core (module docstring).

    Attributes:
        neurons_per_core: compartments one core updates.
        memory_bytes_per_core: SRAM for synapses, state and routing.
        synapse_bytes: bytes per stored synapse (an 8-bit weight mantissa).
        cores_per_chip: neuro cores on one chip.
        source: where the numbers come from.
    """

    neurons_per_core: int = 8192
    memory_bytes_per_core: int = 192 * 1024
    synapse_bytes: int = 1
    cores_per_chip: int = 128
    source: str = SOURCE

    def to_dict(self) -> dict:
        return asdict(self)


LOIHI2 = CoreLimits()


def cores_for(neurons: int, synapses: int, limits: CoreLimits = LOIHI2) -> int:
    """Cores a group of neurons and its synapses need: max(neurons / neurons_per_core, synapse
    bytes / memory per core), at least 1."""
    by_neurons = math.ceil(neurons / limits.neurons_per_core)
    by_memory = math.ceil(synapses * limits.synapse_bytes / limits.memory_bytes_per_core)
    return max(1, by_neurons, by_memory)


def layer_cores(layer: LoihiLayer, limits: CoreLimits = LOIHI2) -> int:
    """Cores one netx layer needs (`cores_for`)."""
    return cores_for(layer.neurons, layer.synapses(), limits)


def network_cores(net: LoihiNetwork | LoihiGraph, limits: CoreLimits = LOIHI2) -> list[int]:
    """Cores per layer (per node of a graph: its neurons and the synapses of every connection into
    it, a relay node included), in order; their sum is the network's, chips = ceil(sum / cores_per_chip)."""
    if hasattr(net, "nodes"):  # a LoihiGraph
        return [cores_for(node.neurons, node.synapses(), limits) for node in net.nodes]
    return [layer_cores(layer, limits) for layer in net.layers]
