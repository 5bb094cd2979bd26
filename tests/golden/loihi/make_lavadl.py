"""Regenerate ``lavadl.net.h5``: a netx file written by lava-dl's own ``export_hdf5``, and what Lava
computes on it (``lavadl.npz``).

Runs in the Lava environment (Python 3.10, lava-dl 0.6.0), from the repository::

    ~/.cache/snnpipe-lava/bin/python tests/golden/loihi/make_lavadl.py

The network is built from lava-dl's slayer blocks, as a lava-dl user builds one, with weights set
by hand so that its spikes can be derived by hand (``tests/test_profile_deployed.py`` does):

- ``cuba.Input`` without neuron parameters: the spikes go straight into the next layer;
- ``cuba.Conv``, 1 -> 2 channels, 2x2 kernel, on a 1x3x3 input: channel 0 all taps weight 1.0 (file
  64), channel 1 only the top-left tap, 2.0 (file 128);
- ``cuba.Flatten``;
- ``cuba.Dense``, 8 -> 2: output 0 reads channel 1's (0, 0) with 2.0 (file 128) and its (1, 1) with 1.0
  (file 64), output 1 reads every neuron of channel 0 with 1.0 (file 64).

Every neuron: ``current_decay`` 1 (iDecay 4096: u is the step's input), ``voltage_decay`` 0 (v
integrates), threshold 1.5625 (vThMant 100: a neuron spikes when v > 100 << 6).

The blocks are exported the way lava-dl's tutorials do (``Network.export_hdf5``: one group per
block under ``layer/``). ``lavadl.npz`` holds the input ``x`` (T, N, 1, 3, 3) and, per layer i,
Lava's ``spikes_i``, ``u_i``, ``v_i`` (N, steps, *shape) from ``lava_runner.py`` (netx under
``Loihi2SimCfg(select_tag="fixed_pt")``).
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch
from lava.lib.dl import slayer

HERE = Path(__file__).resolve().parent
RUNNER = HERE.parents[2] / "hw_targets" / "loihi" / "lava_runner.py"
TIMESTEPS = 4
NEURON = {"threshold": 100 / 64, "current_decay": 1.0, "voltage_decay": 0.0, "requires_grad": False}


def network() -> torch.nn.ModuleList:
    blocks = torch.nn.ModuleList([
        slayer.block.cuba.Input(None, delay_shift=False),  # slayer steps a neuron-less Input only without the shift
        slayer.block.cuba.Conv(NEURON, 1, 2, 2),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(NEURON, 8, 2),
    ])
    with torch.no_grad():
        conv = blocks[1].synapse.weight  # (out, in, kh, kw, 1)
        conv.zero_()
        conv[0] = 1.0
        conv[1, 0, 0, 0] = 2.0
        dense = blocks[3].synapse.weight  # (out, in, 1, 1, 1); in = (channel, row, column) flattened
        dense.zero_()
        dense[0, 4] = 2.0
        dense[0, 7] = 1.0
        dense[1, 0:4] = 1.0
        x = torch.zeros(1, 1, 3, 3, TIMESTEPS)  # a forward pass gives the blocks their shapes
        for block in blocks:
            x = block(x)
    return blocks


def inputs() -> np.ndarray:
    """(T, N, 1, 3, 3): every pixel at step 0; the centre pixel at every step."""
    x = np.zeros((TIMESTEPS, 2, 1, 3, 3), dtype=np.int32)
    x[0, 0] = 1
    x[:, 1, 0, 1, 1] = 1
    return x


def main() -> None:
    path = HERE / "lavadl.net.h5"
    with h5py.File(path, "w") as handle:
        layers = handle.create_group("layer")
        for i, block in enumerate(network()):
            block.export_hdf5(layers.create_group(f"{i}"))
    x = inputs()
    steps = TIMESTEPS + 2  # one step of delay per layer (conv, dense)
    padded = np.zeros((x.shape[1], steps, *x.shape[2:]), dtype=np.int32)
    padded[:, :TIMESTEPS] = np.swapaxes(x, 0, 1)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", x=padded)
        subprocess.run([sys.executable, str(RUNNER), str(path), str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.npz"),
                        "--state=all"], check=True, cwd=tmp)
        with np.load(Path(tmp) / "out.npz") as out:
            arrays = {key: out[key] for key in out.files if key.split("_")[0] in ("spikes", "u", "v")}
    np.savez_compressed(HERE / "lavadl.npz", x=x, **arrays)
    print(f"wrote {path} and lavadl.npz: spikes per layer {[int(arrays[f'spikes_{i}'].sum()) for i in range(2)]}")


if __name__ == "__main__":
    main()
