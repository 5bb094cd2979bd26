"""Speck (DYNAP-CNN cores): one layer per core, placed as Sinabs places it.

Sinabs 2.0.3 (``sinabs.backend.dynapcnn``) maps a chain of conv -> spiking -> pool layers, one per
core, with these memory formulas (``DynapcnnLayer.memory_summary``), for a conv of ``f`` filters
over ``c`` input channels with a kh x kw kernel, giving f maps of H x W neurons (before pooling)::

    kernel memory = c * 2^(ceil(log2(kh * kw)) + ceil(log2(f)))
    neuron memory = f * 2^(ceil(log2(H)) + ceil(log2(W)))
    bias memory   = f   (0 without a bias)

A dense layer runs as a conv whose kernel covers its whole input map (C, H, W before the Flatten)
and gives f maps of 1 x 1. A layer may take a core where all three fit (``LayerConstraints.fits``);
layers are matched to distinct cores by a maximum bipartite matching (Sinabs' ``get_valid_mapping``:
Edmonds-Karp on the same flow graph). The core limits are Sinabs' (``DynapcnnConfigBuilder.
get_constraints``); a layer's outputs reach at most two other layers (two destinations per core).
"""

from __future__ import annotations

import math

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.fit.layers import FitLayer
from snnpipe.hw_targets.fit.registry import kind_uses, limit, register_mapper
from snnpipe.hw_targets.fit.result import ChipFit, Use

LIMITS = {
    "kinds": "the IR node types the chip runs",
    "kernel_memory": "kernel memory of each core, words",
    "neuron_memory": "neuron memory of each core, words",
    "bias_memory": "bias memory of each core, words",
    "destinations": "layers one layer's output may feed",
    "state_bits": "bits of a neuron's state",
}


def _log2(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def memory(layer: FitLayer) -> dict[str, int]:
    """Sinabs' kernel, neuron and bias memory of one layer (module docstring), in words."""
    f = layer.weight_shape[0]
    if layer.kind == "Affine":
        shape = layer.map_shape
        c, taps, neurons = shape[0], math.prod(shape[1:]), f
    else:
        c, taps = layer.weight_shape[1], math.prod(layer.weight_shape[2:])
        height, width = layer.out_shape[1:]
        neurons = f * 2 ** (_log2(height) + _log2(width))
    return {"kernel": c * 2 ** (_log2(taps) + _log2(f)), "neuron": neurons, "bias": f if layer.bias else 0}


def match(candidates: list[list[int]], cores: int) -> dict[int, int]:
    """Layer index -> core, a maximum matching of layers to distinct cores (augmenting paths, each
    layer first trying the lowest free core it fits, as Sinabs' breadth-first search finds it)."""
    owner: dict[int, int] = {}

    def place(layer: int, seen: set[int]) -> bool:
        free = [core for core in candidates[layer] if core not in owner and core not in seen]
        for core in free + [core for core in candidates[layer] if core not in free]:
            if core not in seen:
                seen.add(core)
                if core not in owner or place(owner[core], seen):
                    owner[core] = layer
                    return True
        return False

    for layer in range(len(candidates)):
        place(layer, set())
    return {layer: core for core, layer in owner.items()}


def _fewer_channels(layer: FitLayer, need: dict[str, int], largest: dict[str, int]) -> str:
    f = layer.weight_shape[0]
    c = layer.map_shape[0] if layer.kind == "Affine" else layer.weight_shape[1]
    taps = math.prod(layer.map_shape[1:]) if layer.kind == "Affine" else math.prod(layer.weight_shape[2:])
    if need["kernel"] > largest["kernel"]:
        room = largest["kernel"] // (c * 2 ** _log2(taps))
        fit = 2 ** int(math.log2(room)) if room >= 1 else 0
        return (f"{f} channels need {need['kernel'] / largest['kernel']:.2g}x the kernel memory of the largest "
                f"core; " + (f"{fit} fit" if fit else f"even one does not: fewer than {c} input channels"))
    per_channel = need["neuron"] // f
    fit = largest["neuron"] // per_channel
    return (f"{f} maps of {layer.out_shape[1:]} need {need['neuron'] / largest['neuron']:.2g}x the neuron memory "
            f"of the largest core; {fit} fit (or a stride or pool before it)")


@register_mapper("dynapcnn", LIMITS)
def map_dynapcnn(layers: list[FitLayer], kinds: dict[str, str], chip: Chip) -> ChipFit:
    kernel, kernel_source = limit(chip, "kernel_memory")
    neuron, neuron_source = limit(chip, "neuron_memory")
    bias, bias_source = limit(chip, "bias_memory")
    destinations, destination_source = limit(chip, "destinations")
    state_bits, state_source = limit(chip, "state_bits")
    caps = {"kernel": kernel, "neuron": neuron, "bias": bias}
    sources = {"kernel": kernel_source, "neuron": neuron_source, "bias": bias_source}
    largest = {key: max(values) for key, values in caps.items()}
    uses = kind_uses(kinds, chip)
    for layer in layers:
        inputs = len(layer.sources) + bool(layer.joins) + (layer.summed and len(layer.sources) == 1)
        if inputs > 1:
            uses.append(Use("layer inputs", layer.name, inputs, 1, "inputs summed",
                            destination_source, "Sinabs 2.0.3 maps chains: one input per layer (no residual add)"))
    needs = [memory(layer) for layer in layers]
    candidates = [[core for core in range(len(kernel)) if all(need[k] <= caps[k][core] for k in caps)]
                  for need in needs]
    placed = match(candidates, len(kernel))
    for i, (layer, need) in enumerate(zip(layers, needs)):
        core = placed.get(i)
        for key, unit in (("kernel", "kernel memory"), ("neuron", "neuron memory"), ("bias", "bias memory")):
            cap = caps[key][core] if core is not None else largest[key]
            change = "" if need[key] <= cap else (_fewer_channels(layer, need, largest) if key != "bias" else
                                                  f"{need['bias']} biases: drop the bias or use fewer channels")
            uses.append(Use(unit, layer.name, need[key], cap, "words", sources[key], change))
        feeds = sum(layer.name in other.sources for other in layers)
        uses.append(Use("destinations", layer.name, feeds, destinations, "layers", destination_source,
                        "" if feeds <= destinations else "route through a relay layer"))
    unplaced = [layers[i].name for i in range(len(layers)) if i not in placed and candidates[i]]
    uses.append(Use("core layers", "*", len(placed) + len(unplaced), len(kernel), "cores", kernel_source,
                    "" if not unplaced else f"no free core with room for {', '.join(unplaced)}: merge or shrink layers"))
    placement = {layers[i].name: [core] for i, core in sorted(placed.items())}
    quantization = {"weight_bits": chip.synapse_bits, "weight_bits_source": chip.sources.get("synapse_bits", chip.name),
                    "state_bits": state_bits, "state_bits_source": state_source}
    notes = ["one layer per core, matched to the nine cores as Sinabs' get_valid_mapping does",
             "Speck's neurons integrate and fire: a CubaLIF's leak and synaptic current are not run"]
    return ChipFit(chip.name, "dynapcnn", placement, uses, len(placed), 1, quantization, notes)
