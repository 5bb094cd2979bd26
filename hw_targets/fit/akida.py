"""Akida AKD1000: each layer on its own neural processors (NPs) of the mesh.

The AKD1000's mesh, as the vendor package describes it (``akida.AKD1000().mesh.nps`` in akida
2.19.3): 78 NPs, every one able to run a convolution (type CNP1), 22 of them a dense layer (FNP2 or
FNP3). Akida's own mapper in its smallest mapping (``Model.map(AKD1000(), hw_only=True,
mode=MapMode.Minimal)``) places, as ``benchmarks/akida_probe.py`` measured it on 13 conv layers:

- the image input conv on the HRC (the data-to-spike converter), no NP;
- a conv on ``max(ceil(filters / 256), ceil(kh kw c_in filters x 4 bits / 36864 B))`` CNPs;
- a dense layer on one FNP (its weights in external memory);

and refuses a conv after the input that is not padded "same" ("Only padding same is supported");
a residual add is an Akida 2.0 layer (``akida.Add``), refused in a model of Akida 1.0 layers.
Akida runs the network's ANN twin quantized (CNN2SNN for Akida 1.0: 4-bit weights and activations
per tensor, ``cnn2snn/converter.py``), not the spiking neurons' leak and state; its image input
takes 8-bit pixels of 1 or 3 channels (``akida.InputConv2D``).
"""

from __future__ import annotations

import math

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.fit.layers import FitLayer
from snnpipe.hw_targets.fit.registry import kind_uses, limit, register_mapper
from snnpipe.hw_targets.fit.result import ChipFit, Use

LIMITS = {
    "kinds": "the IR node types the chip runs",
    "nps": "neural processors of the mesh (every one runs a convolution)",
    "dense_nps": "neural processors that run a dense layer",
    "input_channels": "channels of the image input layer",
    "inputs_per_layer": "inputs a layer sums (1: no residual add)",
    "filters_per_np": "conv filters one NP holds",
    "weight_bytes_per_np": "conv weight bytes one NP holds",
    "activation_bits": "bits of an activation",
}


@register_mapper("akida", LIMITS)
def map_akida(layers: list[FitLayer], kinds: dict[str, str], chip: Chip) -> ChipFit:
    nps, np_source = limit(chip, "nps")
    dense, dense_source = limit(chip, "dense_nps")
    channels, channel_source = limit(chip, "input_channels")
    activation_bits, activation_source = limit(chip, "activation_bits")
    per_np, filters_source = limit(chip, "filters_per_np")
    np_bytes, bytes_source = limit(chip, "weight_bytes_per_np")
    one_input, one_input_source = limit(chip, "inputs_per_layer")
    uses = kind_uses(kinds, chip)
    placement: dict[str, list[int]] = {}
    conv_next, dense_next = 0, 0
    for layer in layers:
        inputs = len(layer.sources) + bool(layer.joins) + (layer.summed and len(layer.sources) == 1)
        if inputs > one_input:
            uses.append(Use("layer inputs", layer.name, inputs, one_input, "inputs summed", one_input_source,
                            "Akida 1.0 has no Add (an Akida 2.0 layer): no residual connections on the AKD1000"))
        image_input = "input" in layer.sources and layer.kind == "Conv2d"
        if image_input:
            uses.append(Use("input channels", layer.name, layer.in_shape[0], channels, "channels", channel_source,
                            "" if layer.in_shape[0] <= channels else "an image input of 1 or 3 channels"))
            placement[layer.name] = []  # the HRC
        elif layer.kind == "Affine":
            placement[layer.name], dense_next = [dense_next], dense_next + 1
        else:
            filters, weight_bytes = layer.weight_shape[0], math.ceil(layer.weights * chip.synapse_bits / 8)
            count = max(math.ceil(filters / per_np), math.ceil(weight_bytes / np_bytes))
            placement[layer.name] = list(range(conv_next, conv_next + count))
            conv_next += count
            uses.append(Use("conv filters per NP", layer.name, math.ceil(filters / count), per_np, "filters",
                            filters_source))
            uses.append(Use("conv weights per NP", layer.name, math.ceil(weight_bytes / count), np_bytes, "bytes",
                            bytes_source))
            kernel = layer.weight_shape[2:]
            same = tuple(k // 2 for k in kernel)
            padded = layer.in_shape[1:] == layer.out_shape[1:] or layer.padding in ("same", same)
            uses.append(Use("padding same", layer.name, 0 if padded else 1, 0, "convs not padded 'same'", np_source,
                            "" if padded else "Akida 1.0 runs convs after the input padded 'same' only"))
    uses.append(Use("dense NPs", "*", dense_next, dense, "NPs", dense_source,
                    "" if dense_next <= dense else "fewer dense layers (or convs 1x1)"))
    uses.append(Use("NPs", "*", conv_next + dense_next, nps, "NPs", np_source,
                    "" if conv_next + dense_next <= nps else "fewer or smaller layers"))
    placement = {name: [core + (conv_next if name in dense_names else 0) for core in cores]
                 for name, cores in placement.items()
                 for dense_names in [{layer.name for layer in layers if layer.kind == "Affine"}]}
    quantization = {"weight_bits": chip.synapse_bits, "weight_bits_source": chip.sources.get("synapse_bits", chip.name),
                    "activation_bits": activation_bits, "activation_bits_source": activation_source}
    notes = ["Akida's smallest mapping: the image input conv on the HRC, convs over CNPs by filters and weights, dense layers one FNP each",
             "Akida runs the ANN twin quantized to 4-bit activations: the spiking neurons' state and leak are not run"]
    return ChipFit(chip.name, "akida", placement, uses, conv_next + dense_next, 1, quantization, notes)
