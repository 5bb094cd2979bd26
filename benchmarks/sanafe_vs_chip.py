"""SANA-FE's Loihi energy beside snnpipe's ``chip`` model, on the same activity.

    python benchmarks/sanafe_vs_chip.py [--steps 100]

SANA-FE (calibrated against Loihi silicon: within 12 % energy, 25 % latency; see
``benchmarks/sanafe_validation.py``) runs each network on its Loihi architecture file and counts
the activity: synaptic events (``spikes``), neuron updates, neurons fired, spike packets. snnpipe's
``chip`` model (`pipeline.profile.estimators.chip`) prices the same counts with the ``loihi`` chip
file's constants (Davies et al. 2018, Table 2)::

    E = events x synop_pj + fired x (neuron_active_pj + spike_pj)
        + (updates - fired) x neuron_inactive_pj + packets x 1 hop x (hop_min_pj .. hop_max_pj)

so the ratio compares the two energy models, not two simulations. Networks: SANA-FE's own DVS gesture
network (its validation), and two snnpipe graphs exported to SANA-FE (`sanafe_bridge.graph_job`)
with seeded weights and a seeded graded input, each layer spread over the cores ``snnpipe fit``
gives it on Loihi: the default recipe's student (mlp 128-64 on 1x8x8) and a conv chain (SANA-FE has
no pooling layer: strides instead). Writes ``reports/bench/sanafe_vs_chip.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from snnpipe.hw_targets.chip import get_chip
from snnpipe.hw_targets.fit import fit_graph, get_fit_chip
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.hw_targets.loihi.sanafe_bridge import graph_job, run_sanafe
from snnpipe.models import create_model, ir
from snnpipe.models.tracer import trace

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "sanafe_vs_chip.json"


def chip_energy_j(answer: dict, chip) -> dict[str, float]:
    """snnpipe's chip-model energy (module docstring) of SANA-FE's counts, J: nominal, min, max."""
    fired, updates = answer["neurons_fired"], answer["neurons_updated"]
    base = (answer["spikes"] * chip.synop_pj + fired * (chip.neuron_active_pj + chip.spike_pj)
            + (updates - fired) * chip.neuron_inactive_pj)
    low, high = base + answer["packets_sent"] * chip.hop_min_pj, base + answer["packets_sent"] * chip.hop_max_pj
    return {"nominal": (low + high) / 2 * 1e-12, "min": low * 1e-12, "max": high * 1e-12}


def conv_chain() -> ir.Graph:
    rng = np.random.default_rng(0)
    nodes = {"input": ir.Input((1, 28, 28)),
             "conv1": ir.Conv2d(rng.normal(0, 0.5, (8, 1, 3, 3)), stride=2), "lif1": ir.IF(1.0),
             "conv2": ir.Conv2d(rng.normal(0, 0.3, (16, 8, 3, 3))), "lif2": ir.IF(1.0), "flat": ir.Flatten(),
             "fc": ir.Affine(rng.normal(0, 0.1, (10, 16 * 11 * 11))), "lif3": ir.IF(1.0), "output": ir.Output((10,))}
    order = list(nodes)
    return ir.Graph(nodes, list(zip(order, order[1:])))


def student() -> ir.Graph:
    torch.manual_seed(0)
    return trace(fold_batchnorm(create_model("mlp", input_shape=(1, 8, 8), hidden=(128, 64))).eval(), (1, 8, 8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    loihi = get_chip("loihi")
    rows = {}
    jobs = {"dvs_gesture (SANA-FE's validation network)": {"job": "dvs_gesture", "steps": args.steps}}
    for name, graph in (("student (mlp 128-64)", student()), ("conv chain 1x28x28", conv_chain())):
        placement = fit_graph(graph, get_fit_chip("loihi")).placement
        inputs = math.prod(graph.shapes()[graph.input])
        cores = [math.ceil(inputs / loihi.neurons_per_core)] + [len(c) for c in placement.values()]
        bias = np.random.default_rng(1).uniform(0, 0.5, graph.shapes()[graph.input])
        jobs[name] = graph_job(graph, bias, args.steps, cores)
    for name, job in jobs.items():
        answer = run_sanafe(job)
        ours = chip_energy_j(answer, loihi)
        sanafe = answer["energy_j"]["total"]
        rows[name] = {
            "steps": args.steps, "cores": answer["cores"], "neurons": answer["neurons"],
            "counts": {k: answer[k] for k in ("spikes", "neurons_updated", "neurons_fired", "packets_sent")},
            "sanafe_energy_per_step_uj": sanafe / args.steps * 1e6,
            "sanafe_energy_by_part_uj": {k: v / args.steps * 1e6 for k, v in answer["energy_j"].items()},
            "chip_model_energy_per_step_uj": {k: v / args.steps * 1e6 for k, v in ours.items()},
            "sanafe_over_chip_model": sanafe / ours["nominal"] if ours["nominal"] else None,
            "sanafe_latency_per_step_us": answer["time_per_step_s"] * 1e6,
        }
        r = rows[name]
        print(f"{name}: SANA-FE {r['sanafe_energy_per_step_uj']:.4g} uJ/step, snnpipe chip model "
              f"{r['chip_model_energy_per_step_uj']['nominal']:.4g} uJ/step on the same counts "
              f"(ratio {r['sanafe_over_chip_model']:.3g}); SANA-FE latency {r['sanafe_latency_per_step_us']:.3g} us/step")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"chip": "loihi", "chip_step_s_loihi2": get_chip("loihi2").step_s, "rows": rows},
                              indent=1) + "\n")


if __name__ == "__main__":
    main()
