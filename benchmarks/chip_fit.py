"""Three networks on every chip, and one network that fails each chip, with the vendor's tool beside.

    python benchmarks/chip_fit.py

Networks (seeded weights: a fit depends on shapes, not on training):

- ``student``: the default recipe's student, ``mlp`` hidden [128, 64] on digits (1x8x8);
- ``fm-resnet``: the zoo's Fashion-MNIST residual network, ``resnet`` on 1x28x28 (a residual add
  is several edges into one neuron node);
- ``sinabs-nir``: a conv net built in Sinabs and written by Sinabs' own NIR writer
  (``sinabs.nir.to_nir``), imported by snnpipe's NIR importer (in memory: nir 1.0.8 cannot write
  the graph Sinabs gives, a bias of None);

and per chip a network made to fail it. Where the vendor's tool runs here without hardware, its
verdict is beside ours: Sinabs 2.0.3's ``DynapcnnNetwork.memory_summary`` and ``get_valid_mapping``
(Speck), Rockpool 3.1.0's Xylo ``mapper`` (with ``samna`` stubbed: both import it, neither needs
it for this), and the Loihi 2 compiler's partition of PilotNet as lava-dl's benchmark notebook
printed it (``pilotnet_snn/benchmark.ipynb``; no Loihi 2 compiler is public). Writes ``reports/bench/chip_fit.json``, ``.md`` and ``.png`` (the figure: per network
and chip, the cores used, or the first failing resource's factor).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn

from snnpipe.hw_targets.fit import DEFAULT_CHIPS, fit
from snnpipe.hw_targets.folding import fold_batchnorm
from snnpipe.models import create_model, ir
from snnpipe.models.tracer import trace

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "chip_fit"


class _SamnaStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``samna`` for the vendor tools' pure-Python parts (the installed one downloads on import)."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("samna", "samnagui"):
            return importlib.util.spec_from_loader(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda attr: mock.MagicMock(name=attr)
        return module

    def exec_module(self, module):
        pass


def zoo(name: str, shape, **kwargs) -> ir.Graph:
    torch.manual_seed(0)
    model = fold_batchnorm(create_model(name, input_shape=shape, **kwargs)).eval()
    return trace(model, shape)


def sinabs_conv(channels: int = 8):
    import sinabs.layers as sl

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, channels, 3, bias=False), sl.IAFSqueeze(batch_size=1), sl.SumPool2d(2),
                         nn.Conv2d(channels, 16, 3, bias=False), sl.IAFSqueeze(batch_size=1), nn.Flatten(),
                         nn.Linear(16 * 11 * 11, 10, bias=False), sl.IAFSqueeze(batch_size=1))


def sinabs_nir() -> ir.Graph:
    from sinabs.nir import to_nir

    from snnpipe.hw_targets.nir import from_nir

    return from_nir(to_nir(sinabs_conv(), torch.randn(1, 1, 28, 28))).graph


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


def main() -> None:
    sys.meta_path.insert(0, _SamnaStub())
    networks = {"student (mlp 128-64, digits)": zoo("mlp", (1, 8, 8), hidden=(128, 64)),
                "fm-resnet (resnet, Fashion-MNIST)": zoo("resnet", (1, 28, 28)),
                "sinabs-nir (Sinabs to_nir conv net)": sinabs_nir()}
    rows = {name: [r.to_dict() for r in fit(graph, DEFAULT_CHIPS)] for name, graph in networks.items()}
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
    OUT.with_suffix(".json").write_text(json.dumps({"networks": rows, "failing": failing, "vendor_oracles": oracles},
                                                   indent=1, default=str) + "\n")
    lines = ["| network | " + " | ".join(DEFAULT_CHIPS) + " |", "|---|" + "---|" * len(DEFAULT_CHIPS)]
    for name, results in rows.items():
        cells = [f"fits, {r['cores']} cores" if r["fits"] else
                 f"no: {r['failure']['resource']} ({r['failure']['layer']}"
                 + (", not run)" if r["failure"]["limit"] == 0 else f", {r['failure']['factor']:.4g}x)")
                 for r in results]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| chip | failing network | first failing resource | what to change |", "|---|---|---|---|"]
    for chip, row in failing.items():
        f = row["failure"]
        lines.append(f"| {chip} | {row['network']} | {f['resource']} of {f['layer']}: {f['use']:g} of {f['limit']:g} "
                     f"({f['factor']:.4g}x) | {f['change']} |")
    lines += ["", "| vendor tool | verdict |", "|---|---|"]
    lines += [f"| {name} | {json.dumps(verdict, default=str)} |" for name, verdict in oracles.items()]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    figure(rows)
    print("\n".join(lines))


def figure(rows: dict[str, list[dict]]) -> None:
    """Networks x chips: green with the cores used where it fits, red with the resource where not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, ax = plt.subplots(figsize=(1.9 * len(DEFAULT_CHIPS), 0.9 * len(names) + 1.0))
    for y, name in enumerate(names):
        for x, r in enumerate(rows[name]):
            ok = r["fits"]
            ax.add_patch(plt.Rectangle((x, y), 0.96, 0.9, color="#9bd49b" if ok else "#f2a7a7"))
            text = f"{r['cores']} cores" if ok else f"{r['failure']['resource']}\n{r['failure']['layer'][-24:]}"
            ax.text(x + 0.48, y + 0.45, text, ha="center", va="center", fontsize=7)
    ax.set_xlim(0, len(DEFAULT_CHIPS))
    ax.set_ylim(0, len(names))
    ax.set_xticks([x + 0.48 for x in range(len(DEFAULT_CHIPS))], DEFAULT_CHIPS)
    ax.set_yticks([y + 0.45 for y in range(len(names))], names, fontsize=8)
    ax.invert_yaxis()
    ax.set_title("snnpipe fit: fits (cores used) or the first failing resource")
    fig.tight_layout()
    fig.savefig(OUT.with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
