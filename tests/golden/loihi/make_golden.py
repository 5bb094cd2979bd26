"""Regenerate the Loihi golden files: tiny netx networks and what Lava computes on them.

Needs the Lava environment (see `snnpipe.hw_targets.loihi.lava_bridge`); run from the repository:

    python tests/golden/loihi/make_golden.py

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
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from snnpipe.hw_targets import ExportRequest
from snnpipe.hw_targets.loihi.export import export_loihi
from snnpipe.hw_targets.loihi.lava_bridge import run_lava
from snnpipe.hw_targets.loihi.netx import write_netx
from snnpipe.hw_targets.loihi.network import CubaNeuron, LoihiLayer, LoihiNetwork, readout_neuron
from snnpipe.models import create_model

HERE = Path(__file__).resolve().parent
TIMESTEPS = 8

GOLDEN_LAYERS = [
    {"type": "conv2d", "name": "conv1", "in_channels": 1, "out_channels": 4, "kernel_size": [3, 3],
     "padding": [1, 2], "dilation": [1, 2], "bias": True},
    {"type": "cuba_lif", "name": "lif1", "current_decay": 0.25, "voltage_decay": 0.125, "threshold": 1.0},
    {"type": "avgpool2d", "name": "pool1", "kernel_size": [2, 2]},
    {"type": "conv2d", "name": "conv2", "in_channels": 4, "out_channels": 6, "kernel_size": [3, 2],
     "stride": [2, 1], "padding": [1, 0], "groups": 2, "bias": False},
    {"type": "cuba_lif", "name": "lif2", "current_decay": 1.0, "voltage_decay": 0.5, "threshold": 0.75},
    {"type": "flatten", "name": "flatten"},
    {"type": "linear", "name": "fc1", "in_features": 36, "out_features": 8, "bias": True},
    {"type": "cuba_lif", "name": "lif3", "current_decay": 0.75, "voltage_decay": 0.03, "threshold": 1.25},
    {"type": "linear", "name": "fc2", "in_features": 8, "out_features": 3, "bias": True},
]


def tiny_model():
    """The ``tiny`` model with its seeded weights (weights scaled so that every layer spikes)."""
    torch.manual_seed(7)
    model = create_model("sequential", input_shape=(1, 8, 8), num_classes=3, layers=GOLDEN_LAYERS).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.weight.mul_(3.0)
    return model


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
    python = sys.argv[1] if len(sys.argv) > 1 else None
    cases = {}
    path = HERE / "tiny.net.h5"
    export_loihi(ExportRequest(tiny_model(), (1, 8, 8), TIMESTEPS, "rate", path))
    path.chmod(0o644)
    cases["tiny"] = (path, (1, 8, 8), _input((1, 8, 8), 3, 0.5, 0), 4)
    for name, builder, rate in (("edge_conv", edge_conv, 0.9755), ("edge_dense", edge_dense, 0.9)):
        net = builder()
        path = HERE / f"{name}.net.h5"
        write_netx(net, path)
        cases[name] = (path, net.input_shape, _input(net.input_shape, 2, rate, 1), len(net.layers))
    for name, (path, shape, x, layers) in cases.items():
        steps = TIMESTEPS + layers
        padded = np.zeros((x.shape[1], steps, *shape), dtype=np.int8)
        padded[:, :TIMESTEPS] = x.transpose(0, 1).numpy()
        lava = run_lava(path, padded, python, state="all")
        arrays = {"x": x.numpy().astype(np.uint8)}
        for i in range(layers):
            arrays[f"spikes_{i}"], arrays[f"u_{i}"], arrays[f"v_{i}"] = lava.spikes[i], lava.current[i], lava.voltage[i]
        np.savez_compressed(HERE / f"{name}.npz", **arrays)
        print(name, {k: v.shape for k, v in arrays.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
