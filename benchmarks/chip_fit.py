"""Three networks on every chip: does each fit, and what one inference costs; one network that fails
each chip, with the vendor's tool beside.

    nice python benchmarks/chip_fit.py [--samples 300]

Networks (seeded weights, torch.manual_seed(0), unless a trained checkpoint is given: a fit depends
on shapes only, the energy on the activity that real test inputs drive through the weights):

- ``student``: the default recipe's student, ``mlp`` hidden [128, 64] on digits (1x8x8), T = 8,
  rate-coded, the recipe's own settings;
- ``fm-resnet``: the zoo's Fashion-MNIST residual network, ``resnet`` on 1x28x28 (a residual add
  is several edges into one neuron node), T = 4, rate-coded;
- ``sinabs-nir``: a conv net built in Sinabs and written by Sinabs' own NIR writer
  (``sinabs.nir.to_nir``), imported by snnpipe's NIR importer (in memory: nir 1.0.8 cannot write
  the graph Sinabs gives, a bias of None), on Fashion-MNIST, T = 4, rate-coded;

each profiled on the first ``--samples`` test images of its data set (digits' or Fashion-MNIST's),
and priced on every chip by `snnpipe.pipeline.fit.chip_cost` from those counts: energy per inference
with its range over the chip file's published values, latency (T x the chip's time per step), and
what the chip's vendor publishes no figure for (not charged: a lower bound; or not priced at all).

The committed report's weights are trained (its header says how far); to redo it:

    snnpipe train --dataset digits --model mlp --model-arg "hidden=[128,64]" -T 8 --encoding rate \\
        --epochs 15 -o runs/chip_fit/student                                        # 5 s
    snnpipe train --dataset fashion-mnist --model resnet -T 4 --encoding rate --epochs 3 \\
        --test-samples 1000 -o runs/chip_fit/fm-resnet                              # 4 min
    python benchmarks/chip_fit.py --save-seeded runs/chip_fit/seeded
    snnpipe train --init runs/chip_fit/seeded/sinabs-nir.pt --dataset fashion-mnist -T 4 --encoding rate \\
        --epochs 3 --test-samples 1000 -o runs/chip_fit/sinabs-nir                  # 2 min
    nice python benchmarks/chip_fit.py --samples 300 --student runs/chip_fit/student/checkpoint.pt \\
        --fm-resnet runs/chip_fit/fm-resnet/checkpoint.pt --sinabs-nir runs/chip_fit/sinabs-nir/checkpoint.pt

Per chip a network made to fail it. Where the vendor's tool runs here without hardware, its verdict
is beside ours: Sinabs 2.0.3's ``DynapcnnNetwork.memory_summary`` and ``get_valid_mapping``
(Speck), Rockpool 3.1.0's Xylo ``mapper`` (with ``samna`` stubbed: both import it, neither needs
it for this: `snnpipe.hw_targets.fit.samna_stub`), and the Loihi 2 compiler's partition of PilotNet
as lava-dl's benchmark notebook printed it (``pilotnet_snn/benchmark.ipynb``; no Loihi 2 compiler is
public). Writes ``reports/bench/chip_fit.json``, ``.md`` and ``.png`` (the figure: per network and
chip, the cores used or the first failing resource; and the energy per inference per chip).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snnpipe.hw_targets.chip import CHIPS
from snnpipe.hw_targets.fit import DEFAULT_CHIPS, fit
from snnpipe.hw_targets.fit.samna_stub import SamnaStub
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.models import create_model, ir
from snnpipe.models.params import NeuronParams
from snnpipe.models.tracer import trace
from snnpipe.pipeline.checkpoint import Checkpoint, DataSpec
from snnpipe.pipeline.fit import chip_cost

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "chip_fit"


def zoo(name: str, dataset: str, timesteps: int, **kwargs) -> tuple[ir.Graph, Checkpoint]:
    """A zoo network with seeded weights: its folded, traced graph and its checkpoint (rate-coded)."""
    from snnpipe.pipeline.data import load_dataset

    spec = load_dataset(dataset).spec
    shape = tuple(spec.input_shape)
    torch.manual_seed(0)
    model = create_model(name, input_shape=shape, **kwargs)
    ckpt = Checkpoint(name, kwargs, True, NeuronParams(), timesteps, "rate", spec,
                      {k: v.detach().clone() for k, v in model.state_dict().items()}, [])
    return trace(fold_batchnorm(model).eval(), shape), ckpt


def sinabs_conv(channels: int = 8):
    import sinabs.layers as sl

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, channels, 3, bias=False), sl.IAFSqueeze(batch_size=1), sl.SumPool2d(2),
                         nn.Conv2d(channels, 16, 3, bias=False), sl.IAFSqueeze(batch_size=1), nn.Flatten(),
                         nn.Linear(16 * 11 * 11, 10, bias=False), sl.IAFSqueeze(batch_size=1))


def sinabs_nir(timesteps: int = 4) -> tuple[ir.Graph, Checkpoint]:
    """Sinabs' conv net through its own NIR writer and snnpipe's importer: the graph, and a checkpoint
    of the imported network on Fashion-MNIST (as `snnpipe.pipeline.importer.nir_checkpoint` makes it)."""
    from sinabs.nir import to_nir

    from snnpipe.hw_targets.nir import from_nir

    # dt = 1 per step: Sinabs runs NIR's IF (dv/dt = R I) in discrete steps, v += R I (its own from_nir
    # takes no dt); at snnpipe's default dt (1e-4 s) each step adds 1e-4 R I and no neuron ever fires
    network = from_nir(to_nir(sinabs_conv(), torch.randn(1, 1, 28, 28)), dt=1.0)
    model = network.build()
    spec = DataSpec("fashion-mnist", network.input_shape, network.num_classes, (0.0,), (1.0,))
    ckpt = Checkpoint(network.model_name, network.model_args, True, network.neuron, timesteps, "rate", spec,
                      {k: v.detach().clone() for k, v in model.state_dict().items()}, [])
    return network.graph, ckpt


def chain(shape, *layers) -> ir.Graph:
    nodes, edges, last, out = {"input": ir.Input(shape)}, [], "input", tuple(shape)
    for name, node in layers:
        nodes[name], last, out = node, name, node.output_shape(out)
        edges.append((list(nodes)[-2], name))
    return ir.Graph({**nodes, "output": ir.Output(out)}, edges + [(last, "output")])


def dense(n_in, n_out):
    return ir.Affine(np.zeros((n_out, n_in)))


def conv(c_in, c_out, k, **kw):
    return ir.Conv2d(np.zeros((c_out, c_in, k, k)), **kw)


#: The networks' flags for trained checkpoints, in the order of `main`'s networks.
TRAINED = ("student", "fm-resnet", "sinabs-nir")

#: chip -> (what it is, the network made to fail it)
FAILING = {
    "loihi2": ("64->64 conv 3x3, padded, on 64x256 (one column of 4096 neurons a core)",
               lambda: chain((64, 64, 256), ("conv", conv(64, 64, 3, padding=1)), ("lif", ir.IF(1.0)))),
    "loihi": ("a dense layer of 5000 inputs",
              lambda: chain((5000,), ("fc", dense(5000, 10)), ("lif", ir.IF(1.0)))),
    "speck": ("64->128 conv 5x5",
              lambda: chain((64, 16, 16), ("conv", conv(64, 128, 5)), ("lif", ir.IF(1.0)))),
    "xylo": ("4-1001-3 MLP",
             lambda: chain((4,), ("fc1", dense(4, 1001)), ("lif1", ir.IF(1.0)), ("fc2", dense(1001, 3)),
                           ("lif2", ir.IF(1.0)))),
    "akida": ("a conv on a 4-channel image",
              lambda: chain((4, 8, 8), ("conv", conv(4, 16, 3)), ("lif", ir.IF(1.0)))),
    "spinnaker2": ("64->64 conv 3x3 on 64x64",
                   lambda: chain((64, 64, 64), ("conv", conv(64, 64, 3, padding=1)), ("lif", ir.IF(1.0)))),
}


#: The Loihi 2 compiler's cores per layer for lava-dl's PilotNet LIF (pilotnet_snn/benchmark.ipynb).
PILOTNET_COMPILER = [25, 13, 3, 3, 2, 12, 1, 1, 1]


def pilotnet() -> ir.Graph:
    return chain((3, 66, 200), ("conv1", conv(3, 24, 3, stride=2)), ("lif1", ir.IF(1.0)),
                 ("conv2", conv(24, 36, 3, stride=2)), ("lif2", ir.IF(1.0)),
                 ("conv3", conv(36, 48, 3, stride=2)), ("lif3", ir.IF(1.0)),
                 ("conv4", conv(48, 64, 3, stride=(2, 1), padding=(1, 0))), ("lif4", ir.IF(1.0)),
                 ("conv5", conv(64, 64, 3)), ("lif5", ir.IF(1.0)), ("flat", ir.Flatten()),
                 ("fc1", dense(2560, 100)), ("lif6", ir.IF(1.0)), ("fc2", dense(100, 50)), ("lif7", ir.IF(1.0)),
                 ("fc3", dense(50, 10)), ("lif8", ir.IF(1.0)), ("fc4", dense(10, 1)), ("lif9", ir.IF(1.0)))


def sinabs_verdict(model, shape) -> dict:
    from sinabs.backend.dynapcnn import DynapcnnNetwork
    from sinabs.backend.dynapcnn.chips.dynapcnn import DynapcnnConfigBuilder
    from sinabs.backend.dynapcnn.mapping import get_valid_mapping

    network = DynapcnnNetwork(model, input_shape=shape, discretize=False)
    memory = {k: [int(v) for v in values] for k, values in network.memory_summary().items()}
    try:
        mapping = get_valid_mapping(network, DynapcnnConfigBuilder.get_constraints())
        return {"fits": True, "cores": [core for _, core in mapping], "memory": memory}
    except ValueError as err:
        return {"fits": False, "error": str(err), "memory": memory}


def rockpool_verdict(sizes) -> dict:
    from rockpool.devices.xylo.syns61201 import DRCError, mapper
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch

    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [LinearTorch((n_in, n_out)), LIFTorch(n_out)]
    try:
        spec = mapper(Sequential(*layers).as_graph())
    except DRCError as err:
        return {"fits": False, "error": f"{err} ({err.__cause__})" if err.__cause__ else str(err)}
    return {"fits": True, "input_channels": spec["weights_in"].shape[0], "hidden_neurons": spec["weights_rec"].shape[0],
            "output_neurons": spec["weights_out"].shape[1]}


def activity(profile) -> dict:
    """What a profile counted per inference: the synaptic events that drive the energy models."""
    from snnpipe.pipeline.profile.schema import NeuronProfile, SynapseProfile

    synapses = [l for l in profile.layers if isinstance(l, SynapseProfile)]
    neurons = [l for l in profile.layers if isinstance(l, NeuronProfile)]
    return {"samples": profile.samples, "timesteps": profile.timesteps,
            "synaptic_ops": sum(l.acs + l.macs for l in synapses), "input_events": sum(l.input_events for l in synapses),
            "neuron_updates": sum(n.neuron_updates for n in neurons), "spikes": sum(n.spikes for n in neurons),
            "firing_rate": profile.totals.firing_rate}


def cost_cell(cost: dict) -> str:
    """One chip's energy and latency per inference, as the fit table writes them."""
    if not cost["priced"]:
        return "not priced"
    bound = ">= " if cost["lower_bound"] else ""
    energy = f"{bound}{cost['energy_uj']:.3g} uJ ({cost['min_uj']:.3g} to {cost['max_uj']:.3g})"
    if cost["latency_s"] is None:
        return energy + "; latency -"
    low, high = cost["latency_min_s"] * 1e3, cost["latency_max_s"] * 1e3
    span = f" ({low:.3g} to {high:.3g})" if low != high else ""
    return energy + f"; {cost['latency_s'] * 1e3:.3g} ms{span}"


def main() -> None:
    from snnpipe.pipeline.profile import profile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=300, help="test images profiled per network")
    for flag in TRAINED:
        parser.add_argument(f"--{flag}", metavar="CKPT", help=f"a trained checkpoint of {flag} (default: seeded weights)")
    parser.add_argument("--save-seeded", metavar="DIR", help="write the three seeded checkpoints there (to train them "
                                                             "with snnpipe train --init) and stop")
    args = parser.parse_args()
    sys.meta_path.insert(0, SamnaStub())
    torch.set_num_threads(1)
    networks = {"student (mlp 128-64, digits)": zoo("mlp", "digits", 8, hidden=(128, 64)),
                "fm-resnet (resnet, Fashion-MNIST)": zoo("resnet", "fashion-mnist", 4),
                "sinabs-nir (Sinabs to_nir conv net)": sinabs_nir()}
    if args.save_seeded:
        Path(args.save_seeded).mkdir(parents=True, exist_ok=True)
        for (graph, ckpt), flag in zip(networks.values(), TRAINED):
            print(ckpt.save(Path(args.save_seeded) / f"{flag}.pt"))
        return
    weights = {}
    for (name, (graph, ckpt)), flag in zip(list(networks.items()), TRAINED):
        path = getattr(args, flag.replace("-", "_"))
        if path is None:
            weights[name] = "seeded (torch.manual_seed(0)), not trained"
            continue
        trained = Checkpoint.load(path)
        shapes = lambda c: (c.model_name, {k: tuple(v.shape) for k, v in c.state_dict.items()})  # noqa: E731
        if shapes(trained) != shapes(ckpt):
            sys.exit(f"--{flag} {path}: its {trained.model_name}'s weights are not those of the network {name}")
        history = trained.history[-1] if trained.history else {}
        weights[name] = (f"trained ({history.get('stage', '?')}, {history.get('epochs', '?')} epochs on "
                         f"{history.get('dataset', '?')}, T = {trained.timesteps}, {trained.encoding}-coded; test accuracy "
                         f"{history.get('test_acc', float('nan')):.2%}; the commands: this script's docstring)")
        networks[name] = graph, trained
    rows, costs, activities = {}, {}, {}
    for name, (graph, ckpt) in networks.items():
        fitted = fit(graph, DEFAULT_CHIPS)
        rows[name] = [r.to_dict() for r in fitted]
        counted = profile(ckpt, samples=args.samples)
        activities[name] = activity(counted)
        costs[name] = {r.chip: chip_cost(counted, r.chip, chips=r.chips) for r in fitted}
        print(f"{name}: {activities[name]}", flush=True)
    failing = {}
    for chip, (what, build) in FAILING.items():
        [result] = fit(build(), [chip])
        failing[chip] = {"network": what, **result.to_dict()}
    from sinabs.layers import IAFSqueeze

    oracles = {"speck: sinabs-nir": sinabs_verdict(sinabs_conv(), (1, 28, 28)),
               "speck: " + FAILING["speck"][0]: sinabs_verdict(
                   nn.Sequential(nn.Conv2d(64, 128, 5, bias=False), IAFSqueeze(batch_size=1)), (64, 16, 16))}
    [ours] = fit(pilotnet(), ["loihi2"])
    oracles["loihi2: PilotNet LIF (Loihi 2 compiler, lava-dl notebook)"] = {
        "compiler_cores": PILOTNET_COMPILER, "ours": [len(c) for c in ours.placement.values()]}
    try:
        oracles["xylo: " + FAILING["xylo"][0]] = rockpool_verdict((4, 1001, 3))
        oracles["xylo: 4-6-5-3 MLP"] = rockpool_verdict((4, 6, 5, 3))
    except ImportError as err:
        oracles["xylo"] = {"error": f"Rockpool not importable here ({err})"}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(
        {"weights": weights, "samples": args.samples, "networks": rows, "activity": activities, "costs": costs,
         "failing": failing, "vendor_oracles": oracles}, indent=1, default=str) + "\n")
    lines = [f"Energy from the activity of the first {args.samples} test images of each network's data set (digits; "
             f"Fashion-MNIST), rate-coded (`{' '.join(['python', *sys.argv])}`). The fit depends on the shapes "
             "only; the energy on the weights:", "", *(f"- {name}: {how}" for name, how in weights.items()), "",
             "| network | " + " | ".join(DEFAULT_CHIPS) + " |", "|---|" + "---|" * len(DEFAULT_CHIPS)]
    for name, results in rows.items():
        cells = [f"fits, {r['cores']} cores" if r["fits"] else
                 f"no: {r['failure']['resource']} ({r['failure']['layer']}"
                 + (", not run)" if r["failure"]["limit"] == 0 else f", {r['failure']['factor']:.4g}x)")
                 for r in results]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Energy per inference (min to max over the published values); latency (T x the chip's time per step). "
              "`>=`: an energy the vendor publishes no figure for is not charged (a lower bound); `not priced`: no "
              "figure at all. A chip's cost is computed where the network does not fit it too.", "",
              "| network | T | spikes / inference | synaptic ops / inference | " + " | ".join(DEFAULT_CHIPS) + " |",
              "|---|---:|---:|---:|" + "---|" * len(DEFAULT_CHIPS)]
    for name, chip_costs in costs.items():
        a = activities[name]
        lines.append(f"| {name} | {a['timesteps']} | {a['spikes']:.4g} | {a['synaptic_ops']:.4g} | "
                     + " | ".join(cost_cell(chip_costs[chip]) for chip in DEFAULT_CHIPS) + " |")
    lines += ["", "| chip | what is charged, and its sources | not charged (no published figure) |", "|---|---|---|"]
    for chip in DEFAULT_CHIPS:
        c = CHIPS[chip]
        charged = "; ".join(f"{k} = {c.bounds(k)[0]:g}" + (f" [{c.bounds(k)[1]:g}, {c.bounds(k)[2]:g}]"
                                                           if c.bounds(k)[1] != c.bounds(k)[2] else "")
                            + f": {c.sources[k]}" for k in ("synop_pj", "neuron_active_pj", "neuron_inactive_pj",
                                                            "spike_pj", "hop_min_pj", "hop_max_pj", "static_w",
                                                            "step_s") if c.bounds(k))
        lines.append(f"| {chip} | {charged or 'nothing: not priced'} | {', '.join(c.not_given()) or '-'} |")
    lines += ["", "| chip | failing network | first failing resource | what to change |", "|---|---|---|---|"]
    for chip, row in failing.items():
        f = row["failure"]
        lines.append(f"| {chip} | {row['network']} | {f['resource']} of {f['layer']}: {f['use']:g} of {f['limit']:g} "
                     f"({f['factor']:.4g}x) | {f['change']} |")
    lines += ["", "| vendor tool | verdict |", "|---|---|"]
    lines += [f"| {name} | {json.dumps(verdict, default=str)} |" for name, verdict in oracles.items()]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    figure(rows, costs)
    print("\n".join(lines))


def figure(rows: dict[str, list[dict]], costs: dict[str, dict[str, dict]]) -> None:
    """Left: networks x chips, green with the cores used where it fits, red with the resource where not.
    Right: energy per inference per chip and network (log scale), whiskers over the published range,
    hollow where it is a lower bound, none where the chip is not priced."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, (ax, energy) = plt.subplots(1, 2, figsize=(1.9 * len(DEFAULT_CHIPS) + 7, 0.9 * len(names) + 2.2),
                                     gridspec_kw={"width_ratios": [1.9 * len(DEFAULT_CHIPS), 7]})
    for y, name in enumerate(names):
        for x, r in enumerate(rows[name]):
            ok = r["fits"]
            ax.add_patch(plt.Rectangle((x, y), 0.96, 0.9, color="#9bd49b" if ok else "#f2a7a7"))
            text = f"{r['cores']} cores" if ok else f"{r['failure']['resource']}\n{r['failure']['layer'][-24:]}"
            ax.text(x + 0.48, y + 0.45, text, ha="center", va="center", fontsize=7)
    ax.set_xlim(0, len(DEFAULT_CHIPS))
    ax.set_ylim(0, len(names))
    ax.set_xticks([x + 0.48 for x in range(len(DEFAULT_CHIPS))], DEFAULT_CHIPS)
    ax.set_yticks([y + 0.45 for y in range(len(names))], [n.split(" (")[0] for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_title("fits (cores used) or the first failing resource")

    width = 0.8 / len(names)
    labelled = set()
    for i, name in enumerate(names):
        for x, chip in enumerate(DEFAULT_CHIPS):
            cost = costs[name][chip]
            at = x - 0.4 + width * (i + 0.5)
            if not cost["priced"]:
                continue
            value = cost["energy_uj"]
            if value <= 0:
                energy.text(at, 0.03, "0", ha="center", va="bottom", fontsize=7, transform=energy.get_xaxis_transform())
                continue
            energy.bar(at, value, width=width * 0.9, color=f"C{i}", fill=not cost["lower_bound"], edgecolor=f"C{i}",
                       label=None if name in labelled else name.split(" (")[0])
            labelled.add(name)
            energy.errorbar(at, value, yerr=[[value - cost["min_uj"]], [cost["max_uj"] - value]],
                            color="black", capsize=2, linewidth=0.8)
    for x, chip in enumerate(DEFAULT_CHIPS):
        if not any(costs[name][chip]["priced"] for name in names):
            energy.text(x, 0.03, "not\npriced", ha="center", va="bottom", fontsize=7, color="dimgray",
                        transform=energy.get_xaxis_transform())
    energy.set_yscale("log")
    priced = [c for chip_costs in costs.values() for c in chip_costs.values() if c["priced"] and c["energy_uj"] > 0]
    energy.set_ylim(min(c["min_uj"] for c in priced) / 20, max(c["max_uj"] for c in priced) * 3)
    energy.set_xticks(range(len(DEFAULT_CHIPS)), DEFAULT_CHIPS, fontsize=8)
    energy.set_xlim(-0.6, len(DEFAULT_CHIPS) - 0.4)
    energy.set_ylabel("energy per inference (uJ, log)")
    energy.set_title("energy per inference (hollow: a lower bound)")
    energy.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT.with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
