"""Akida AKD1000: each layer on its own neural processors (NPs) of the mesh.

The AKD1000's mesh, as the vendor package describes it (``akida.AKD1000().mesh.nps`` in akida
2.19.3): 78 NPs, every one able to run a convolution (type CNP1), 22 of them a dense layer (FNP2 or
FNP3). Akida's mapper (``Model.map``) gives each layer one or more NPs; how many a large layer takes
is not published, so one NP per layer is counted here: a lower bound, and a network of more
conv layers than NPs, or more dense layers than dense-capable NPs, does not fit. Akida runs the
network's ANN twin quantized (CNN2SNN for Akida 1.0: 4-bit weights and 4-bit activations per
tensor, ``cnn2snn/converter.py``), not the spiking neurons' leak and state; its image input layer
takes 8-bit pixels of 1 or 3 channels (``akida.InputConv2D``).
"""

from __future__ import annotations

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.fit.layers import FitLayer
from snnpipe.hw_targets.fit.registry import kind_uses, limit, register_mapper
from snnpipe.hw_targets.fit.result import ChipFit, Use

LIMITS = {
    "kinds": "the IR node types the chip runs",
    "nps": "neural processors of the mesh (every one runs a convolution)",
    "dense_nps": "neural processors that run a dense layer",
    "input_channels": "channels of the image input layer",
    "activation_bits": "bits of an activation",
}


@register_mapper("akida", LIMITS)
def map_akida(layers: list[FitLayer], kinds: dict[str, str], chip: Chip) -> ChipFit:
    nps, np_source = limit(chip, "nps")
    dense, dense_source = limit(chip, "dense_nps")
    channels, channel_source = limit(chip, "input_channels")
    activation_bits, activation_source = limit(chip, "activation_bits")
    uses = kind_uses(kinds, chip)
    for layer in layers:
        if "input" in layer.sources and layer.kind == "Conv2d":
            uses.append(Use("input channels", layer.name, layer.in_shape[0], channels, "channels", channel_source,
                            "" if layer.in_shape[0] <= channels else "an image input of 1 or 3 channels"))
    dense_layers = [layer for layer in layers if layer.kind == "Affine"]
    uses.append(Use("dense NPs", dense_layers[-1].name if dense_layers else "*", len(dense_layers), dense, "NPs",
                    dense_source, "" if len(dense_layers) <= dense else "fewer dense layers (or convs 1x1)"))
    uses.append(Use("NPs", "*", len(layers), nps, "NPs (at least one per layer)", np_source,
                    "" if len(layers) <= nps else "fewer layers"))
    placement, conv_next, dense_next = {}, len([1 for _ in dense_layers]), 0
    for layer in layers:
        if layer.kind == "Affine":
            placement[layer.name], dense_next = [dense_next], dense_next + 1
        else:
            placement[layer.name], conv_next = [conv_next], conv_next + 1
    quantization = {"weight_bits": chip.synapse_bits, "weight_bits_source": chip.sources.get("synapse_bits", chip.name),
                    "activation_bits": activation_bits, "activation_bits_source": activation_source}
    notes = ["one NP per layer (a lower bound: Akida's mapper may give a large layer several)",
             "Akida runs the ANN twin quantized to 4-bit activations: the spiking neurons' state and leak are not run"]
    return ChipFit(chip.name, "akida", placement, uses, len(layers), 1, quantization, notes)
