"""Runs inside the SANA-FE environment (`sanafe_bridge`), never imported by snnpipe (SANA-FE is GPL-3).

    python sanafe_runner.py JOB.json ANSWER.json

A job is a network of layers on SANA-FE's Loihi architecture (``sanafe.load_loihi()``), run for
``steps`` steps; the answer is SANA-FE's result (energy by part in J, ``sim_time`` in s, the counts)
with the per-step means. Jobs:

- ``{"job": "dvs_gesture", "steps": 1000}``: SANA-FE's own Loihi validation network, DVS gesture
  (its tutorial 5 and ``scripts/tcad2025/dvs_gesture.py``): the weights, thresholds and one frame's
  input biases of ``sanafe/examples/dvs_challenge.npz``, an Input2D 32x32, four Conv2D (the first
  stride 2) and a Dense of 11, mapped over 1, 4, 16, 16, 4, 1 cores as the tutorial maps them;
- ``{"job": "network", "steps": T, "groups": [...], "connections": [...]}`` (``sanafe_job.graph_job``
  writes it): groups of neurons in order, ``{"name", "neurons", "cores", "attributes": {...},
  "per_neuron": {attribute: [one per neuron]}}`` with the ``leaky_integrate_fire`` soma, or with
  ``"spikes": [neuron][step]`` the ``input`` soma replaying a spike train (``loihi_inputs[k]``, one
  per neuron of a core); connections ``{"source", "target", "src", "dst", "weight"}`` (group
  indices, then one entry per synapse). Each group is spread evenly over its cores, in order. The
  answer adds each group's spikes per step (``group_spikes``) and per neuron (``neuron_spikes``).

Arrays arrive as ``{"array": key}``, the array in ``job.npz`` beside the job.
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


def spread(layers: list, counts: list, arch) -> list:
    """Map each layer evenly over its count of cores, in order (the tutorial's mapping); returns,
    per layer, each neuron's position on its core."""
    cores, used, positions = arch.cores(), 0, []
    for layer, count in zip(layers, counts):
        neurons = list(layer)
        per = len(neurons) // count
        position = []
        for i in range(count):
            block = neurons[i * per:] if i == count - 1 else neurons[i * per:(i + 1) * per]
            for k, n in enumerate(block):
                n.map_to_core(cores[used])
                position.append(k)
            used += 1
        positions.append(position)
    return positions


def resolve(value, arrays):
    """The job with its ``{"array": key}`` entries read from ``job.npz``."""
    if isinstance(value, dict):
        return arrays[value["array"]] if set(value) == {"array"} else {k: resolve(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, arrays) for v in value]
    return value


def build_network(snn, job: dict, arch) -> list:
    groups = []
    for spec in job["groups"]:
        if "spikes" in spec:
            group = snn.create_neuron_group(spec["name"], spec["neurons"], soma_hw_name="loihi_inputs[0]",
                                            log_spikes=True)
        else:
            group = snn.create_neuron_group(spec["name"], spec["neurons"], model_attributes=spec["attributes"],
                                            log_spikes=True)
        groups.append(group)
    positions = spread([g.neurons for g in groups], [spec["cores"] for spec in job["groups"]], arch)
    for spec, group, position in zip(job["groups"], groups, positions):
        per_neuron = spec.get("per_neuron", {})
        for i, neuron in enumerate(group.neurons):
            if "spikes" in spec:
                neuron.set_attributes(soma_hw_name=f"loihi_inputs[{position[i]}]",
                                      model_attributes={"spikes": [bool(b) for b in spec["spikes"][i]]})
            elif per_neuron:
                neuron.set_attributes(model_attributes={k: float(v[i]) for k, v in per_neuron.items()})
    for c in job["connections"]:
        pairs = list(zip(np.asarray(c["src"]).tolist(), np.asarray(c["dst"]).tolist()))
        groups[c["source"]].connect_neurons_sparse(groups[c["target"]], {"w": np.asarray(c["weight"]).tolist()}, pairs)
    return [group.neurons for group in groups]


def main(job_path: str, answer_path: str) -> None:
    with open(job_path) as handle:
        job = json.load(handle)
    with np.load(job_path.replace(".json", ".npz")) as data:
        job = resolve(job, {key: data[key] for key in data.files})
    steps = int(job["steps"])
    arch = sanafe.load_loihi()
    snn = sanafe.Network()
    if job["job"] == "dvs_gesture":
        layers, counts = build(snn, dvs_layers()), DVS_CORES
        spread(layers, counts, arch)
    else:
        layers, counts = build_network(snn, job, arch), [spec["cores"] for spec in job["groups"]]
    chip = sanafe.SpikingChip(arch)
    chip.load(snn)
    result = chip.sim(steps, spike_trace=job["job"] == "network")
    answer = {k: v for k, v in result.items() if isinstance(v, (int, float))}
    answer["energy_j"] = dict(result["energy"])
    answer["energy_per_step_j"] = result["energy"]["total"] / steps
    answer["time_per_step_s"] = result["sim_time"] / steps
    answer["neurons"] = [len(layer) for layer in layers]
    answer["cores"] = list(counts)
    answer["sanafe_version"] = getattr(sanafe, "__version__", "2.2.9")
    if job["job"] == "network":
        names = [spec["name"] for spec in job["groups"]]
        per_step = {name: [0] * steps for name in names}
        per_neuron = {name: [0] * spec["neurons"] for name, spec in zip(names, job["groups"])}
        for step, fired in enumerate(result["spike_trace"]):
            for neuron in fired:
                per_step[neuron.group_name][step] += 1
                per_neuron[neuron.group_name][neuron.neuron_offset] += 1
        answer["group_spikes"], answer["neuron_spikes"] = per_step, per_neuron
    with open(answer_path, "w") as handle:
        json.dump(answer, handle)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
