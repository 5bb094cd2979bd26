"""SANA-FE's Loihi energy and latency beside snnpipe's ``chip`` model, on the same networks and inputs.

    nice python benchmarks/sanafe_vs_chip.py [--images 3] [--student CKPT --fm-resnet CKPT --sinabs-nir CKPT]

SANA-FE (calibrated against Loihi silicon: within 12 % energy, 25 % latency; see
``benchmarks/sanafe_validation.py``) runs each network on its Loihi architecture file. The networks
are those of ``benchmarks/chip_fit.py`` (its builders and checkpoints: seeded weights, or the
trained checkpoints its report used, given as ``--student`` etc.), each quantized by snnpipe's Loihi
export (`quantize_model`: integer weights and thresholds, relays on a residual's shortcut, a pool
folded into the next synapse) and mapped onto SANA-FE from that export's typed graph
(`LoihiGraph.to_ir`, `sanafe_job.graph_job`):

- ``student``: the default recipe's student, ``mlp`` hidden [128, 64] on digits (1x8x8), T = 8;
- ``fm-resnet``: the zoo's ``resnet`` on Fashion-MNIST (1x28x28), residual adds, T = 4;
- ``sinabs-nir``: the Sinabs conv net written by Sinabs' NIR writer (``sinabs.nir.to_nir``) and read
  by snnpipe's NIR importer (dt 1), on Fashion-MNIST, T = 4.

Inputs: the first ``--images`` test images of digits and Fashion-MNIST, rate-coded (``rate``,
seeded by the image's index) over each checkpoint's T; each runs ``T + depth`` steps (Loihi's
timing). Per image, snnpipe's
fixed-point simulator (`LoihiSimulator`, Lava's arithmetic) and SANA-FE run the same spikes, and
the spikes of every neuron group at every step are compared; snnpipe's ``chip`` model
(`pipeline.profile.estimators.chip`, the ``loihi`` chip file: Davies et al. 2018, Table 2) prices
snnpipe's own counts (`count_deployed`, `pipeline.fit.chip_cost`). Per network, per inference: both
energies, the ratio, both by term, both sets of counts, and SANA-FE's latency (the ``loihi`` chip
file has no time per step, so the chip model gives none; the ``loihi2`` file's is shown for scale).
The terms pair up as:

    SANA-FE synapse  events x 35.5 pJ                    chip compute       synaptic ops x 23.6 pJ
    SANA-FE soma     every neuron every step x 51.2 pJ   chip neuron_state  every neuron every step:
                     (access) + updated x 21.6 pJ                           81 pJ active (fired),
                     + fired x 69.3 pJ                                      52 pJ idle
    SANA-FE network  packets x 111 pJ + hops x 3-4.2 pJ  chip addressing    spikes x 1.7 pJ + input
                                                                            events x cores x hops x 3-4 pJ

(``sanafe/examples/loihi.yaml``; SANA-FE updates a neuron that has input, a bias or v != 0, and
charges every mapped neuron's access each step; its input neurons cost nothing.) The synaptic
events are the same count in both (the test of the counts); the energies differ in the constants
of SANA-FE's calibrated file against Davies et al.'s Table 2, and in SANA-FE's 111 pJ per spike
packet sent, which Table 2 prices as 1.7 pJ within a tile.

SANA-FE's own DVS gesture network (its validation) is the last row, priced by the chip model on
SANA-FE's counts (snnpipe does not run it). Writes ``reports/bench/sanafe_vs_chip.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from chip_fit import TRAINED, sinabs_nir, zoo  # noqa: E402 - the networks of the fit benchmark

from snnpipe.hw_targets.chip import get_chip  # noqa: E402
from snnpipe.hw_targets.loihi.quantize import quantize_model  # noqa: E402
from snnpipe.hw_targets.loihi.sanafe_bridge import run_sanafe  # noqa: E402
from snnpipe.hw_targets.loihi.sanafe_job import graph_job  # noqa: E402
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator  # noqa: E402
from snnpipe.pipeline.checkpoint import Checkpoint  # noqa: E402
from snnpipe.pipeline.data import load_dataset  # noqa: E402
from snnpipe.pipeline.encoding import encode  # noqa: E402
from snnpipe.pipeline.fit import chip_cost  # noqa: E402
from snnpipe.pipeline.profile.deployed_counts import count_deployed  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "sanafe_vs_chip"
#: SANA-FE's part -> the chip model's terms it corresponds to (module docstring).
PAIRS = {"synapse": ("compute",), "soma": ("neuron_state",), "network": ("addressing",), "dendrite": (),
         "static": ("static",)}


def chip_energy_j(answer: dict, chip) -> dict[str, float]:
    """The chip model's formula on SANA-FE's counts (DVS gesture, which snnpipe does not run), J:
    ``events synop + fired (active + spike) + (updated - fired) inactive + packets x 1 hop``."""
    fired, updates = answer["neurons_fired"], answer["neurons_updated"]
    base = (answer["spikes"] * chip.synop_pj + fired * (chip.neuron_active_pj + chip.spike_pj)
            + (updates - fired) * chip.neuron_inactive_pj)
    low, high = base + answer["packets_sent"] * chip.hop_min_pj, base + answer["packets_sent"] * chip.hop_max_pj
    return {"nominal": (low + high) / 2 * 1e-12, "min": low * 1e-12, "max": high * 1e-12}


def compare(ckpt: Checkpoint, images: torch.Tensor) -> dict:
    """Quantize ``ckpt`` as the Loihi export does, run each image in snnpipe's simulator and in
    SANA-FE, price snnpipe's counts with the chip model."""
    timesteps = ckpt.timesteps
    loihi = quantize_model(ckpt.build_model().eval(), tuple(ckpt.data.input_shape), timesteps).graph
    model = loihi.to_ir()
    steps = loihi.steps_for(timesteps)
    simulator = LoihiSimulator(loihi)
    sanafe, chip, equal, groups = [], [], [], {}
    for k, image in enumerate(images):
        x = encode(image[None], "rate", timesteps, (0.0,), (1.0,), torch.Generator().manual_seed(k))
        ours = simulator.run(x, record_spikes=True)
        job = graph_job(model, steps, spikes=x[:, 0].numpy())
        answer = run_sanafe(job)
        sanafe.append(answer)
        same = True
        for node, spikes in zip(loihi.nodes, ours.spikes):
            per_step = spikes.reshape(steps, -1).sum(1).tolist()
            name = f"{node.name}.neurons" if not node.neuron.readout else "output"
            theirs = answer["group_spikes"][name]
            same &= per_step == theirs
            totals = groups.setdefault(name, {"snnpipe": 0, "sanafe": 0})
            totals["snnpipe"] += sum(per_step) / len(images)
            totals["sanafe"] += sum(theirs) / len(images)
        equal.append(same)
        counted = count_deployed(loihi, x, timesteps, energy_model="chip", chip="loihi")
        chip.append({**counted.to_dict(), "cost": chip_cost(counted, "loihi")})
    mean = lambda values: float(np.mean(values))  # noqa: E731
    terms = {t: mean([c["estimates"]["snn"]["terms"][t] for c in chip]) * 1e-6 for t in chip[0]["estimates"]["snn"]["terms"]}
    parts = {p: mean([a["energy_j"][p] for a in sanafe]) * 1e6 for p in sanafe[0]["energy_j"]}
    ours_total = mean([c["cost"]["energy_uj"] for c in chip])
    step_s = get_chip("loihi2").step_s
    return {
        "timesteps": timesteps, "steps": steps, "images": len(images),
        "groups": [g["name"] for g in job["groups"]], "neurons": answer["neurons"], "sanafe_cores": answer["cores"],
        "synapses": int(sum(len(c["weight"]) for c in job["connections"])),
        "spikes_equal_per_group_and_step": equal, "spikes_per_group": groups,
        "counts_per_inference": {
            "synaptic_events": {"sanafe": mean([a["spikes"] for a in sanafe]),
                                "snnpipe": mean([c["totals"]["acs"] + c["totals"]["macs"] for c in chip])},
            "neuron_updates": {"sanafe (updated: input, or v != 0)": mean([a["neurons_updated"] for a in sanafe]),
                               "snnpipe (every neuron every step)": mean([c["totals"]["neuron_updates"] for c in chip])},
            "spikes": {"sanafe (input neurons included)": mean([a["neurons_fired"] for a in sanafe]),
                       "snnpipe": mean([c["totals"]["spikes"] for c in chip])},
            "packets": {"sanafe": mean([a["packets_sent"] for a in sanafe])}},
        "sanafe_energy_uj": parts["total"], "sanafe_energy_by_part_uj": parts,
        "chip_model_energy_uj": ours_total, "chip_model_energy_by_term_uj": terms,
        "sanafe_over_chip_model": parts["total"] / ours_total if ours_total else None,
        "difference_by_term_uj": {f"{part} - {' + '.join(pair) or '(none)'}":
                                  parts.get(part, 0.0) - sum(terms.get(t, 0.0) for t in pair) for part, pair in PAIRS.items()},
        "sanafe_latency_us": mean([a["sim_time"] for a in sanafe]) * 1e6,
        "chip_model_energy_range_uj": [mean([c["cost"]["min_uj"] for c in chip]), mean([c["cost"]["max_uj"] for c in chip])],
        "chip_model_latency_us": chip[0]["cost"]["latency_s"], "chip_model_not_charged": chip[0]["cost"]["not_charged"],
        "loihi2_file_latency_us": step_s * steps * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    for flag in TRAINED:
        parser.add_argument(f"--{flag}", metavar="CKPT", help=f"a trained checkpoint of {flag} (default: seeded weights)")
    parser.add_argument("--dvs-steps", type=int, default=100)
    args = parser.parse_args()
    digits = load_dataset("digits").test_x[:args.images]
    fashion = load_dataset("fashion-mnist").test_x[:args.images]
    networks = {"student (mlp 128-64, digits)": (zoo("mlp", "digits", 8, hidden=(128, 64)), digits),
                "fm-resnet (resnet, Fashion-MNIST)": (zoo("resnet", "fashion-mnist", 4), fashion),
                "sinabs-nir (Sinabs to_nir conv net, Fashion-MNIST)": (sinabs_nir(), fashion)}
    rows = {}
    for ((name, ((_, ckpt), images)), flag) in zip(networks.items(), TRAINED):
        path = getattr(args, flag.replace("-", "_"))
        ckpt = Checkpoint.load(path) if path else ckpt
        history = ckpt.history[-1] if path and ckpt.history else {}
        weights = (f"trained ({history.get('stage', '?')}, {history.get('epochs', '?')} epochs on "
                   f"{history.get('dataset', '?')}, T = {ckpt.timesteps}; test accuracy "
                   f"{history.get('test_acc', float('nan')):.2%})" if path else "seeded (torch.manual_seed(0)), not trained")
        rows[name] = {"weights": weights, **compare(ckpt, images)}
    answer = run_sanafe({"job": "dvs_gesture", "steps": args.dvs_steps})
    ours = chip_energy_j(answer, get_chip("loihi"))
    rows["dvs_gesture (SANA-FE's validation network; chip model on SANA-FE's counts)"] = {
        "steps": args.dvs_steps, "neurons": answer["neurons"], "sanafe_cores": answer["cores"],
        "counts": {k: answer[k] for k in ("spikes", "neurons_updated", "neurons_fired", "packets_sent")},
        "sanafe_energy_uj": answer["energy_j"]["total"] * 1e6,
        "sanafe_energy_by_part_uj": {k: v * 1e6 for k, v in answer["energy_j"].items()},
        "chip_model_energy_uj": ours["nominal"] * 1e6, "chip_model_range_uj": [ours["min"] * 1e6, ours["max"] * 1e6],
        "sanafe_over_chip_model": answer["energy_j"]["total"] / ours["nominal"],
        "sanafe_latency_us": answer["sim_time"] * 1e6}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps({"chip": "loihi", "rows": rows}, indent=1) + "\n")
    OUT.with_suffix(".md").write_text(table(rows))
    print(table(rows))


def table(rows: dict[str, dict]) -> str:
    """The JSON's rows as the report's markdown table."""
    lines = ["SANA-FE 2.2.9 (``loihi.yaml``) beside snnpipe's ``chip`` model (``loihi`` chip file) per inference "
             "(T + depth steps; the DVS row: its whole run); the last three columns are SANA-FE's part minus the "
             "chip model's term, uJ.", "",
             "| network | steps | spikes equal (per group, per step) | synaptic events (SANA-FE = snnpipe) | "
             "SANA-FE energy (uJ) | chip model (uJ) | SANA-FE / chip | SANA-FE latency (us) | synapse - compute | "
             "soma - neuron_state | network - addressing |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        diff = r.get("difference_by_term_uj", {})
        cells = [f"{diff[k]:.3g}" if k in diff else "" for k in
                 ("synapse - compute", "soma - neuron_state", "network - addressing")]
        equal = r.get("spikes_equal_per_group_and_step")
        events = r.get("counts_per_inference", {}).get("synaptic_events")
        lines.append(f"| {name} | {r['steps']} | {'' if equal is None else f'{sum(equal)}/{len(equal)} images'} | "
                     + (f"{events['sanafe']:.6g} = {events['snnpipe']:.6g}" if events else f"{r['counts']['spikes']}")
                     + f" | {r['sanafe_energy_uj']:.4g} | {r['chip_model_energy_uj']:.4g} | "
                     f"{r['sanafe_over_chip_model']:.3g} | {r['sanafe_latency_us']:.4g} | " + " | ".join(cells) + " |")
    lines += [""] + [f"- {name}: {r['weights']}" for name, r in rows.items() if "weights" in r]
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    main()
