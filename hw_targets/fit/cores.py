"""Loihi, Loihi 2 and SpiNNaker 2: each layer split over as many cores as it needs.

The vendors' compilers (NxSDK / Lava for Loihi, py-spinnaker2 for SpiNNaker 2) place a layer's
neurons on consecutive cores, each core holding a slice of the neurons and the synapses into them;
a layer never shares a core with another (Lava's netx places one process per layer). For a layer
of N neurons and S stored synapse bytes on cores of n neurons and m bytes::

    cores = max(1, ceil(N / n), ceil(S / m))
    S     = synapses x synapse_bits / 8   (a conv unrolled: every output's taps, as Loihi 1 stores them;
                                           ``conv_weight_sharing = 1``: the kernel once per core)

Where the chip file gives them, the Loihi 2 compiler's own rules replace the plain split (inferred from
its per-core partition of PilotNet printed in lava-dl's ``pilotnet_snn/benchmark.ipynb``, which
they reproduce layer by layer: 25, 13, 3, 3, 2 cores for the convs, 12, 1, 1, 1 for the dense):

- ``conv_tile_neurons``: a conv is tiled into slabs of ``w`` output columns with all rows and
  channels, ``w`` the largest power of two with ``w x H x C`` below the limit (conv weights shared,
  ``conv_weight_sharing = 1``): ``ceil(W / w)`` cores;
- ``dense_synapses_per_core``: a dense layer's neurons go ``floor(limit / inputs)`` to a core.

Each core of a dense layer receives every input (its input axons: the layer's fan-in); a conv
core receives its slice of the input map (``ceil(inputs / cores)``): where the chip bounds input
axons per core (``fan_in_per_core``), more inputs fail with the layer named. The network fits when
its cores fit one chip (``cores_per_chip``); ``chips`` says how many a multi-chip board needs.
"""

from __future__ import annotations

import math

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.fit.layers import FitLayer
from snnpipe.hw_targets.fit.registry import kind_uses, limit, register_mapper
from snnpipe.hw_targets.fit.result import ChipFit, Use

LIMITS = {
    "kinds": "the IR node types the chip runs",
    "fan_in_per_core": "input axons one core receives (optional)",
    "conv_weight_sharing": "1 where a core stores a conv kernel once, 0 where every output's taps (optional)",
    "state_bits": "bits of a neuron's voltage",
    "conv_tile_neurons": "a conv core's neurons stay below this: power-of-two column slabs (optional)",
    "dense_synapses_per_core": "synapses one core of a dense layer holds (optional)",
}


def _tiles(layer: FitLayer, below: int) -> int:
    """Cores of a conv cut into slabs of a power-of-two count of output columns (module docstring)."""
    channels, height, width = layer.out_shape
    slab = 1
    while slab * 2 <= width and slab * 2 * height * channels < below:
        slab *= 2
    return math.ceil(width / slab)


@register_mapper("cores", LIMITS)
def map_cores(layers: list[FitLayer], kinds: dict[str, str], chip: Chip) -> ChipFit:
    per_core, neuron_source = limit(chip, "neurons_per_core")
    memory, memory_source = limit(chip, "memory_bytes_per_core")
    per_chip, chip_source = limit(chip, "cores_per_chip")
    state_bits, state_source = limit(chip, "state_bits")
    fan_in = chip.limits.get("fan_in_per_core")
    sharing = bool(chip.limits.get("conv_weight_sharing", 0))
    tile = chip.limits.get("conv_tile_neurons")
    dense_synapses = chip.limits.get("dense_synapses_per_core")
    bits = chip.synapse_bits
    uses = kind_uses(kinds, chip)
    placement: dict[str, list[int]] = {}
    used = 0
    for layer in layers:
        shared = sharing and layer.kind != "Affine"
        stored = layer.weights if shared else layer.synapses
        memory_bytes = math.ceil(stored * bits / 8)
        count = max(1, math.ceil(layer.neurons / per_core),
                    1 if shared else math.ceil(memory_bytes / memory))
        if tile is not None and layer.kind == "Conv2d" and not layer.joins:
            count = max(count, _tiles(layer, tile))
        elif dense_synapses is not None and layer.kind == "Affine" and not layer.joins:
            count = max(count, math.ceil(layer.neurons / max(1, dense_synapses // layer.fan_in)))
        placement[layer.name] = list(range(used, used + count))
        used += count
        core_bytes = memory_bytes if shared else math.ceil(memory_bytes / count)
        uses.append(Use("neurons per core", layer.name, math.ceil(layer.neurons / count), per_core, "neurons",
                        neuron_source))
        uses.append(Use("synaptic memory per core", layer.name, core_bytes, memory, "bytes", memory_source,
                        "" if core_bytes <= memory else
                        f"its kernel of {layer.weights} weights at {bits} bits exceeds one core: fewer channels"))
        if fan_in is not None:
            axons = layer.inputs if layer.kind == "Affine" else math.ceil(layer.inputs / count)
            uses.append(Use("input axons per core", layer.name, axons, fan_in, "axons",
                            chip.sources.get("fan_in_per_core", chip.name),
                            "" if axons <= fan_in else
                            f"every core of a dense layer receives all {layer.inputs} inputs: at most {fan_in} "
                            f"(pool or shrink the layer before it, or split it into {math.ceil(axons / fan_in)} "
                            "layers summed downstream)"))
    largest = max(placement, key=lambda name: len(placement[name]), default="")
    uses.append(Use("cores", "*", used, per_chip, "cores", chip_source,
                    "" if used <= per_chip else
                    f"{math.ceil(used / per_chip)} chips of a multi-chip board, or shrink {largest} "
                    f"({len(placement[largest])} cores)"))
    quantization = {"weight_bits": bits, "weight_bits_source": chip.sources.get("synapse_bits", chip.name),
                    "state_bits": state_bits, "state_bits_source": state_source}
    notes = [f"each layer on its own cores, split by neurons ({per_core}/core) and synaptic memory "
             f"({memory} B/core at {bits}-bit weights" + (", conv kernels stored once per core)" if sharing else
                                                          ", convs unrolled)")]
    return ChipFit(chip.name, "cores", placement, uses, used, max(1, math.ceil(used / per_chip)), quantization, notes)
