"""Runs inside the SANA-FE environment (`sanafe_bridge`), never imported by snnpipe (SANA-FE is GPL-3).

    python sanafe_runner.py JOB.json ANSWER.json

A job is a network of layers on SANA-FE's Loihi architecture (``sanafe.load_loihi()``), run for
``steps`` steps; the answer is SANA-FE's result (energy by part in J, ``sim_time`` in s, the counts)
with the per-step means. Jobs:

- ``{"job": "dvs_gesture", "steps": 1000}``: SANA-FE's own Loihi validation network, DVS gesture
  (its tutorial 5 and ``scripts/tcad2025/dvs_gesture.py``): the weights, thresholds and one frame's
  input biases of ``sanafe/examples/dvs_challenge.npz``, an Input2D 32x32, four Conv2D (the first
  stride 2) and a Dense of 11, mapped over 1, 4, 16, 16, 4, 1 cores as the tutorial maps them;
- ``{"job": "network", "steps": T, "layers": [...], "cores": [...]}``: the same from the job's own
  layers: ``{"kind": "input2d", "width", "height", "channels", "bias": [...], "threshold"}``,
  ``{"kind": "conv2d", "weights": [kh][kw][cin][cout], "stride", "threshold", "leak_decay"}``,
  ``{"kind": "dense", "weights": [in][out], "threshold", "leak_decay"}``, each layer spread evenly
  over its ``cores`` count in order.
"""

import json
import sys

import numpy as np
import sanafe
import sanafe.layers
import sanafe.tutorial

DVS_CORES = [1, 4, 16, 16, 4, 1]


def dvs_layers() -> list:
    with sanafe.tutorial.get_dvs_data() as handle:
        data = np.load(handle)
        a = {key: data[key] for key in data.files}
    th = [float(t) for t in a["thresholds"]]
    return [
        {"kind": "input2d", "width": 32, "height": 32, "channels": 1, "bias": a["inputs"], "threshold": th[0]},
        {"kind": "conv2d", "weights": a["conv1"], "stride": 2, "threshold": th[1]},
        {"kind": "conv2d", "weights": a["conv2"], "stride": 1, "threshold": th[2]},
        {"kind": "conv2d", "weights": a["conv3"], "stride": 1, "threshold": th[3]},
        {"kind": "conv2d", "weights": a["conv4"], "stride": 1, "threshold": th[4]},
        {"kind": "dense", "weights": a["dense1"], "threshold": th[5]},
    ]


def build(snn, spec: list) -> list:
    layers = []
    for layer in spec:
        neuron = {k: layer[k] for k in ("threshold", "leak_decay", "reset_mode") if k in layer}
        if layer["kind"] == "input2d":
            built = sanafe.layers.Input2D(snn, layer["width"], layer["height"], layer.get("channels", 1), **neuron)
            for n, bias in zip(built, layer["bias"]):
                n.set_attributes(model_attributes={"bias": float(bias)})
        elif layer["kind"] == "conv2d":
            stride = layer.get("stride", 1)
            built = sanafe.layers.Conv2D(snn, layers[-1], np.asarray(layer["weights"], dtype=float),
                                         stride_width=stride, stride_height=stride, **neuron)
        elif layer["kind"] == "dense":
            weights = np.asarray(layer["weights"], dtype=float)
            built = sanafe.layers.Dense(snn, layers[-1], weights.shape[1], weights, **neuron)
        else:
            raise ValueError(f"unknown layer kind {layer['kind']!r}")
        layers.append(built)
    return layers


def spread(layers: list, counts: list, arch) -> None:
    """Map each layer evenly over its count of cores, in order (the tutorial's mapping)."""
    cores, used = arch.cores(), 0
    for layer, count in zip(layers, counts):
        neurons = list(layer)
        per = len(neurons) // count
        for i in range(count):
            for n in neurons[i * per:] if i == count - 1 else neurons[i * per:(i + 1) * per]:
                n.map_to_core(cores[used])
            used += 1


def main(job_path: str, answer_path: str) -> None:
    with open(job_path) as handle:
        job = json.load(handle)
    steps = int(job["steps"])
    spec, counts = (dvs_layers(), DVS_CORES) if job["job"] == "dvs_gesture" else (job["layers"], job["cores"])
    arch = sanafe.load_loihi()
    snn = sanafe.Network()
    layers = build(snn, spec)
    spread(layers, counts, arch)
    chip = sanafe.SpikingChip(arch)
    chip.load(snn)
    result = chip.sim(steps)
    answer = {k: v for k, v in result.items() if isinstance(v, (int, float))}
    answer["energy_j"] = dict(result["energy"])
    answer["energy_per_step_j"] = result["energy"]["total"] / steps
    answer["time_per_step_s"] = result["sim_time"] / steps
    answer["neurons"] = [len(layer) for layer in layers]
    answer["cores"] = list(counts)
    answer["sanafe_version"] = getattr(sanafe, "__version__", "2.2.9")
    with open(answer_path, "w") as handle:
        json.dump(answer, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
