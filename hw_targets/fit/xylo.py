"""Xylo Audio 2 (SYNS61201): Rockpool's mapper and design rules.

Rockpool 3.1's ``rockpool.devices.xylo.syns61201.mapper`` takes a graph of linear weights and LIF
neurons: every neuron layer but the last is part of one hidden population (at most 1000 neurons,
``max_hidden_neurons``), the last layer's neurons are the output neurons (at most 8), and the first
weights read the input channels (at most 16, ``le_16_input_channels``); it needs two neuron layers
(``at_least_two_neuron_layers_needed``). Weights are 8-bit, thresholds and states 16-bit
(``weight_dtype`` int8, ``threshold_dtype`` int16 in Rockpool's quantization).
"""

from __future__ import annotations

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.fit.layers import FitLayer
from snnpipe.hw_targets.fit.registry import kind_uses, limit, register_mapper
from snnpipe.hw_targets.fit.result import ChipFit, Use

LIMITS = {
    "kinds": "the IR node types the chip runs",
    "input_channels": "input channels",
    "hidden_neurons": "neurons of the hidden population",
    "output_neurons": "output neurons",
    "neuron_layers": "neuron layers the mapper needs at least",
    "state_bits": "bits of a neuron's state and threshold",
}


@register_mapper("xylo", LIMITS)
def map_xylo(layers: list[FitLayer], kinds: dict[str, str], chip: Chip) -> ChipFit:
    inputs, input_source = limit(chip, "input_channels")
    hidden, hidden_source = limit(chip, "hidden_neurons")
    outputs, output_source = limit(chip, "output_neurons")
    least, least_source = limit(chip, "neuron_layers")
    state_bits, state_source = limit(chip, "state_bits")
    why = {"Conv2d": "Rockpool's Xylo mapper takes linear weights only: unroll the conv into a dense layer",
           "Conv1d": "Rockpool's Xylo mapper takes linear weights only: unroll the conv into a dense layer"}
    uses = kind_uses(kinds, chip, why)
    first = [layer for layer in layers if "input" in layer.sources]
    for layer in first:
        uses.append(Use("input channels", layer.name, layer.inputs, inputs, "channels", input_source,
                        "" if layer.inputs <= inputs else
                        f"{layer.inputs} inputs: at most {inputs} (Xylo's audio front end gives 16 channels)"))
    *body, last = layers or [None]
    hidden_layers = [layer for layer in body if layer is not None]
    used = sum(layer.neurons for layer in hidden_layers)
    biggest = max(hidden_layers, key=lambda layer: layer.neurons, default=None)
    uses.append(Use("hidden neurons", biggest.name if biggest else "*", used, hidden, "neurons", hidden_source,
                    "" if used <= hidden else
                    f"the hidden layers need {used}: shrink {biggest.name} ({biggest.neurons}) by {used - hidden}"))
    if last is not None:
        uses.append(Use("output neurons", last.name, last.neurons, outputs, "neurons", output_source,
                        "" if last.neurons <= outputs else f"{last.neurons} outputs: at most {outputs} classes"))
    uses.append(Use("neuron layers missing", "*", max(0, least - len(layers)), 0, "layers", least_source,
                    "" if len(layers) >= least else f"Rockpool maps at least {least}: a hidden and an output layer"))
    placement = {layer.name: [0] for layer in layers}
    quantization = {"weight_bits": chip.synapse_bits, "weight_bits_source": chip.sources.get("synapse_bits", chip.name),
                    "state_bits": state_bits, "state_bits_source": state_source}
    notes = ["one core: the hidden layers share one population of neurons, the last layer is the output"]
    return ChipFit(chip.name, "xylo", placement, uses, 1, 1, quantization, notes)
