"""Akida's own mapper as the source of the ``akida`` chip file's NP limits (needs akida 2.19.3).

    python benchmarks/akida_probe.py        # in an environment with `pip install akida==2.19.3`

akida installs here beside torch 2.13 (with cnn2snn and onnx2akida it pulls TensorFlow 2.19 and
Keras 3: keep it out of snnpipe's environment). Its ``AKD1000()`` is a virtual device: ``Model.map``
places a model on its mesh without hardware. Each probe is an image input conv (which maps to the
HRC) and one conv of ``c_in -> filters`` 3x3, padded "same", with nonzero 4-bit weights (a layer of
zeros is refused), mapped with ``hw_only=True, mode=MapMode.Minimal`` (the fewest NPs); the NPs the
conv takes are printed beside ``max(ceil(filters / 256), ceil(9 c_in filters x 4 bits / 36864 B))``,
the rule `snnpipe.hw_targets.fit.akida` uses, and a dense layer's. Writes
``reports/bench/akida_probe.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "akida_probe.json"
PROBES = [(8, 16), (8, 64), (8, 128), (8, 256), (8, 512), (32, 512), (64, 1024), (64, 256), (128, 128), (16, 512),
          (64, 512), (128, 256), (40, 256)]


def mapped(c_in: int, filters: int, units: int | None = None) -> dict:
    import akida

    rng = np.random.default_rng(0)
    model = akida.Model()
    model.add(akida.InputConvolutional(input_shape=(28, 28, 1), kernel_size=(3, 3), filters=c_in, name="input",
                                       padding=akida.Padding.Valid, weights_bits=8))
    model.add(akida.Convolutional(kernel_size=(3, 3), filters=filters, name="conv", padding=akida.Padding.Same,
                                  weights_bits=4))
    if units:
        model.add(akida.FullyConnected(units=units, name="fc", weights_bits=4))
    for layer in model.layers:
        weights = layer.get_variable("weights")
        layer.set_variable("weights", rng.integers(1, 3, weights.shape).astype(weights.dtype))
    model.map(akida.AKD1000(), hw_only=True, mode=akida.MapMode.Minimal)
    return {layer.name: [str(np.type) for np in layer.mapping.nps] for layer in model.layers}


def main() -> None:
    import akida

    rows = []
    for c_in, filters in PROBES:
        nps = mapped(c_in, filters)
        rule = max(math.ceil(filters / 256), math.ceil(9 * c_in * filters * 4 / 8 / 36864))
        rows.append({"c_in": c_in, "filters": filters, "input": nps["input"], "conv_nps": len(nps["conv"]),
                     "rule": rule})
        print(f"{c_in:>4} -> {filters:>5}: {len(nps['conv'])} CNPs (rule {rule}); input on {nps['input']}")
    dense = {units: mapped(8, 16, units)["fc"] for units in (10, 100, 1000)}
    print(f"dense layers: {dense}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"akida": akida.__version__, "device": "AKD1000", "nps": len(akida.AKD1000().mesh.nps),
                               "convs": rows, "dense": dense}, indent=1) + "\n")


if __name__ == "__main__":
    main()
