"""Regenerate the Loihi golden files: tiny netx networks and what Lava computes on them.

Needs the Lava environment (see `snnpipe.hw_targets.loihi.lava_bridge`); run from the repository:

    python tests/golden/loihi/make_golden.py [LAVA_PYTHON] [--only=residual_identity,graded_input]

For each network it writes ``<name>.net.h5`` and ``<name>.npz``: the input spikes ``x`` (T, N, C, H, W)
and, for every layer i, Lava's ``spikes_i``, ``u_i`` and ``v_i`` (N, steps, *shape) from
``Loihi2SimCfg(select_tag="fixed_pt")``. The default tests check the simulator against these arrays;
``tests/test_loihi_lava.py`` checks that Lava still produces them.

- ``tiny``: a small exported model (`GOLDEN_LAYERS`, seeded weights): a dilated conv with bias, average
  pooling folded into a grouped, strided, non-square conv, flatten, dense, readout; a different
  current and voltage decay and threshold in every layer.
- ``edge_conv``: a conv whose 33,856-input sum wraps Lava's 24-bit conv accumulator and then the
  24-bit current, feeding an all-inhibitory dense layer (whose -256 weights Lava clips to -255) and
  an excitatory readout with small weights (a negative Loihi weight exponent) and a bias.
- ``edge_dense``: a dense layer of fan-in 600 whose current wraps both ways and whose voltage saturates.
- ``residual_identity`` and ``residual_projection``: Loihi graph files (``snnpipe.loihi.graph/1``) of a
  stem conv, one `BasicBlock` (an identity shortcut; a stride-2 1x1 projection to 3 channels) and a
  readout, exported by ``export_loihi``: two branches summed at the block's second neuron, a relay
  aligning the shortcut; decays 0.5 / 0.25, seeded weights.
- ``graded_input``: a direct-coded conv + dense + readout graph whose first layer takes 8-bit graded
  input (analog x in [-1, 2), its largest values clipped to 127).

``lavadl.net.h5`` (a file lava-dl's own ``export_hdf5`` wrote) and its ``lavadl.npz`` come from
``make_lavadl.py``, which runs in the Lava environment itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from snnpipe.hw_targets import ExportRequest
from snnpipe.hw_targets.loihi.export import export_loihi
from snnpipe.hw_targets.loihi.graph_file import read_graph
from snnpipe.hw_targets.loihi.lava_bridge import lava_input, run_lava
from snnpipe.hw_targets.loihi.netx import write_netx
from snnpipe.hw_targets.loihi.network import CubaNeuron, LoihiLayer, LoihiNetwork, readout_neuron
from snnpipe.models import SpikingModel, create_model
from snnpipe.models.layers import BasicBlock
from snnpipe.models.neurons import CubaLIF, NeuronParams

HERE = Path(__file__).resolve().parent
TIMESTEPS = 8

def _lif(current_decay: float, voltage_decay: float, threshold: float) -> dict:
    return {"type": "CubaLIF", "current_decay": current_decay, "voltage_decay": voltage_decay, "threshold": threshold}


def _weights(*shape: int) -> dict:
    return {"shape": list(shape)}  # left out: the model initializes them (seeded)


def chain(input_shape: tuple[int, ...], classes: int, nodes: dict[str, dict]) -> dict:
    """A chain of ``nodes`` as the graph data a ``sequential`` model takes (`snnpipe.models.ir`)."""
    names = ["input", *nodes, "output"]
    return {"nodes": {"input": {"type": "Input", "shape": list(input_shape)}, **nodes,
                      "output": {"type": "Output", "shape": [classes]}},
            "edges": [[a, b] for a, b in zip(names, names[1:])]}


GOLDEN_LAYERS = {
    "conv1": {"type": "Conv2d", "weight": _weights(4, 1, 3, 3), "bias": _weights(4), "padding": [1, 2], "dilation": [1, 2]},
    "lif1": _lif(0.25, 0.125, 1.0),
    "pool1": {"type": "AvgPool2d", "kernel_size": [2, 2]},
    "conv2": {"type": "Conv2d", "weight": _weights(6, 2, 3, 2), "stride": [2, 1], "padding": [1, 0], "groups": 2},
    "lif2": _lif(1.0, 0.5, 0.75),
    "flatten": {"type": "Flatten"},
    "fc1": {"type": "Affine", "weight": _weights(8, 36), "bias": _weights(8)},
    "lif3": _lif(0.75, 0.03, 1.25),
    "fc2": {"type": "Affine", "weight": _weights(3, 8), "bias": _weights(3)},
}


def _scaled(model: SpikingModel, factor: float) -> SpikingModel:
    """``model`` in eval mode with every conv and linear weight times ``factor`` (so that every layer spikes)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.weight.mul_(factor)
    return model.eval()


def tiny_model():
    """The ``tiny`` model with its seeded weights (weights scaled so that every layer spikes)."""
    torch.manual_seed(7)
    return _scaled(create_model("sequential", input_shape=(1, 8, 8), num_classes=3,
                                 graph=chain((1, 8, 8), 3, GOLDEN_LAYERS)), 3.0)


def residual_model(projection: bool) -> SpikingModel:
    """Stem conv + LIF, one BasicBlock (identity, or 2 -> 3 channels at stride 2), flatten, readout."""
    torch.manual_seed(11 + projection)
    params = NeuronParams(current_decay=0.5, voltage_decay=0.25, threshold=1.0)
    lif = lambda: CubaLIF(params)  # noqa: E731
    out, side = (3, 3) if projection else (2, 6)
    blocks = {
        "stem": torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1, bias=True), lif()),
        "block": torch.nn.Sequential(BasicBlock(2, out, 2 if projection else 1, lif)),
        "head": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(out * side * side, 3)),
    }
    model = SpikingModel(torch.nn.ModuleDict(blocks), spiking=True)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # statistics that are not the identity
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return _scaled(model, 3.0)


def graded_model() -> SpikingModel:
    torch.manual_seed(13)
    layers = {
        "conv1": {"type": "Conv2d", "weight": _weights(3, 1, 3, 3), "bias": _weights(3), "padding": [1, 1]},
        "lif1": _lif(0.5, 0.125, 1.0),
        "flatten": {"type": "Flatten"},
        "fc1": {"type": "Affine", "weight": _weights(6, 48), "bias": _weights(6)},
        "lif2": _lif(1.0, 0.25, 1.0),
        "fc2": {"type": "Affine", "weight": _weights(3, 6), "bias": _weights(3)},
    }
    return _scaled(create_model("sequential", input_shape=(1, 4, 4), num_classes=3, graph=chain((1, 4, 4), 3, layers)), 2.0)


def edge_conv() -> LoihiNetwork:
    rng = np.random.default_rng(3)
    conv = np.full((2, 64, 23, 23), 254, dtype=np.int64)
    conv[1] = rng.integers(-128, 128, (64, 23, 23)) * 2
    inhibitory = -2 * rng.integers(1, 129, (3, 2))
    inhibitory[0, 0] = -256
    readout = 2 * rng.integers(0, 6, (2, 3))
    return LoihiNetwork((64, 23, 23), [
        LoihiLayer("conv", "conv", (64, 23, 23), (2, 1, 1), conv, None, CubaNeuron(4096, 1024, 20000)),
        LoihiLayer("inhibitory", "dense", (2,), (3,), inhibitory, np.array([900, 1000, 1100]),
                   CubaNeuron(2048, 512, 50), flatten=True),
        LoihiLayer("readout", "dense", (3,), (2,), readout, np.array([3, -7]), readout_neuron()),
    ])


def edge_dense() -> LoihiNetwork:
    rng = np.random.default_rng(4)
    weight = np.zeros((4, 600), dtype=np.int64)
    weight[0], weight[1] = 254, -256
    weight[2] = 2 * rng.integers(-128, 128, 600)
    weight[3] = 2 * rng.integers(0, 128, 600)
    return LoihiNetwork((1, 20, 30), [
        LoihiLayer("wide", "dense", (600,), (4,), weight, np.array([0, 0, 5, -5]), CubaNeuron(1000, 3000, 131071),
                   flatten=True),
        LoihiLayer("readout", "dense", (4,), (2,), np.array([[254, -2, 0, 2], [-256, 4, 2, 0]]), None, readout_neuron()),
    ])


def _input(shape: tuple[int, ...], samples: int, rate: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(TIMESTEPS, samples, *shape, generator=generator) < rate).float()


def main() -> int:
    """``make_golden.py [LAVA_PYTHON] [--only NAME,NAME]``: every case, or the ones named."""
    args = [a for a in sys.argv[1:] if not a.startswith("--only")]
    only = next((a.split("=", 1)[1].split(",") for a in sys.argv[1:] if a.startswith("--only=")), None)
    python = args[0] if args else None
    cases = {}
    wanted = lambda name: only is None or name in only  # noqa: E731
    path = HERE / "tiny.net.h5"
    if wanted("tiny"):
        export_loihi(ExportRequest(tiny_model(), (1, 8, 8), TIMESTEPS, "rate", path))
        path.chmod(0o644)
        cases["tiny"] = (path, (1, 8, 8), _input((1, 8, 8), 3, 0.5, 0), 4)
    for name, builder, rate in (("edge_conv", edge_conv, 0.9755), ("edge_dense", edge_dense, 0.9)):
        if not wanted(name):
            continue
        net = builder()
        path = HERE / f"{name}.net.h5"
        write_netx(net, path)
        cases[name] = (path, net.input_shape, _input(net.input_shape, 2, rate, 1), len(net.layers))
    for name, model, shape, encoding in (("residual_identity", residual_model(False), (1, 6, 6), "rate"),
                                         ("residual_projection", residual_model(True), (1, 6, 6), "rate"),
                                         ("graded_input", graded_model(), (1, 4, 4), "direct")):
        if not wanted(name):
            continue
        path = HERE / f"{name}.graph.h5"
        result = export_loihi(ExportRequest(model, shape, TIMESTEPS, encoding, path))
        path.chmod(0o644)
        graph, _ = read_graph(path)
        if encoding == "direct":
            x = torch.rand(TIMESTEPS, 3, *shape, generator=torch.Generator().manual_seed(2)) * 3 - 1
        else:
            x = _input(shape, 3, 0.5, 2)
        print(name, result.report["format"], [n.name for n in graph.nodes])
        cases[name] = (path, shape, x, graph.steps_for(TIMESTEPS) - TIMESTEPS, graph)
    for name, (path, shape, x, layers, *graph) in cases.items():
        steps = TIMESTEPS + layers
        lava = run_lava(path, lava_input(graph[0].quantize_input(x) if graph else x, steps), python, state="all")
        arrays = {"x": x.numpy() if graph and graph[0].graded else x.numpy().astype(np.uint8)}
        for i in range(len(graph[0].nodes) if graph else layers):
            arrays[f"spikes_{i}"], arrays[f"u_{i}"], arrays[f"v_{i}"] = lava.spikes[i], lava.current[i], lava.voltage[i]
        np.savez_compressed(HERE / f"{name}.npz", **arrays)
        print(name, {k: v.shape for k, v in arrays.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
