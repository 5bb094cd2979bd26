"""Lava as the oracle: the project's simulator against Lava's ``Loihi2SimCfg(select_tag="fixed_pt")``
run of the written netx file, spike for spike in every layer, on models trained on digits and on
Fashion-MNIST. Needs the Lava environment (`lava_bridge.lava_python`: built on first use and cached
in ``~/.cache/snnpipe-lava``); CI runs these with ``pytest -m lava``."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snnpipe.hw_targets.loihi.lava_bridge import lava_input, lava_python, run_lava
from snnpipe.hw_targets.loihi.export import VERIFY_SAMPLES
from snnpipe.hw_targets.loihi.graph_file import read_loihi
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import Dataset, load_dataset
from snnpipe.pipeline.export import export, encoded_test_batches
from snnpipe.pipeline.train import train

pytestmark = pytest.mark.lava

GOLDEN = Path(__file__).parent / "golden" / "loihi"
TIMESTEPS = 32  # each input runs 32 steps (then the layers' delays drain)
INPUTS = 8


@pytest.fixture(scope="module")
def lava():
    return lava_python()


@pytest.mark.parametrize("name", ["tiny.net", "edge_conv.net", "edge_dense.net", "lavadl.net", "residual_identity.graph",
                                  "residual_projection.graph", "graded_input.graph"])
def test_lava_still_computes_the_golden_arrays(lava, name):
    # the graph files: an identity shortcut, a projection shortcut (each aligned by a relay), graded input
    path = GOLDEN / f"{name}.h5"
    want = np.load(GOLDEN / f"{name.split('.')[0]}.npz")
    graph, _ = read_loihi(path)
    x = graph.quantize_input(torch.from_numpy(want["x"]).float()).numpy()
    got = run_lava(path, lava_input(x, want["spikes_0"].shape[1]), lava, state="all")
    assert len(got.spikes) == len(graph.nodes)
    for i in range(len(graph.nodes)):
        np.testing.assert_array_equal(got.spikes[i], want[f"spikes_{i}"])
        np.testing.assert_array_equal(got.current[i], want[f"u_{i}"])
        np.testing.assert_array_equal(got.voltage[i], want[f"v_{i}"])


MODELS = {  # small widths: Lava simulates one sample at a time, slowly
    "mlp": ("mlp", {"hidden": (64, 32)}, "rate"),
    "convnet": ("convnet", {"channels": (4, 8), "hidden": 16}, "rate"),
    "vgg": ("vgg", {"width": 0.125}, "rate"),  # VGG-style: [conv + BN + LIF] x 2 + avgpool, twice, then FC
    "resnet": ("resnet", {"channels": (4, 8)}, "rate"),  # an identity and a projection block: a Loihi graph
    "convnet-direct": ("convnet", {"channels": (4, 8), "hidden": 16}, "direct"),  # graded input: a Loihi graph
}


@pytest.mark.parametrize("dataset", ["digits", "fashion-mnist"])
@pytest.mark.parametrize("case", list(MODELS))
def test_simulator_equals_lava_spike_for_spike_on_trained_models(tmp_path, lava, case, dataset):
    model, model_args, encoding = MODELS[case]
    data = load_dataset(dataset)
    small = Dataset(data.spec, data.train_x[:600], data.train_y[:600], data.test_x[:INPUTS], data.test_y[:INPUTS])
    # delay_shift off: from scratch, BatchNorm needs its statistics (see SpikingModel.delay_shift)
    config = TrainConfig(dataset=dataset, model=model, model_args={**model_args, "delay_shift": False}, epochs=2,
                         lr=5e-3, batch_size=32,
                         timesteps=8, encoding=encoding, seed=0, quantize="loihi", out=str(tmp_path / "run"))
    ckpt = train(config, dataset=small, progress=False)
    out = tmp_path / "m.net.h5"
    export(ckpt, "loihi", out=out, samples=INPUTS, timesteps=TIMESTEPS, max_drop=100.0)
    # independently of the exporter's own --verify: read the file back, run both on the same input
    graph, attrs = read_loihi(out)
    assert (attrs["format"] == "snnpipe.loihi.graph/1") == (case in ("resnet", "convnet-direct"))
    x, _ = next(iter(encoded_test_batches(ckpt, samples=INPUTS, timesteps=TIMESTEPS)()))
    assert x.shape[:2] == (TIMESTEPS, INPUTS)
    ours = LoihiSimulator(graph).run(x, record_spikes=True, record_state=True)
    steps = graph.steps_for(TIMESTEPS)
    theirs = run_lava(out, lava_input(graph.quantize_input(x), steps), lava, state="last")  # u, v of the readout only
    for i, node in enumerate(graph.nodes):
        np.testing.assert_array_equal(ours.spikes[i].transpose(0, 1).numpy(), theirs.spikes[i], err_msg=node.name)
        if not node.neuron.readout:  # the comparison is between networks that spike
            assert theirs.spikes[i].sum() > 0, node.name
    np.testing.assert_array_equal(ours.current[-1].transpose(0, 1).numpy(), theirs.current[-1])
    np.testing.assert_array_equal(ours.voltage[-1].transpose(0, 1).numpy(), theirs.voltage[-1])
    assert np.abs(theirs.voltage[-1]).max() > 0
    assert len(graph.nodes) >= 3 and theirs.spikes[0].shape[1] == steps  # one step per connection on the path


def test_export_verify_lava_from_the_command_line(tmp_path, lava):
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:400], data.train_y[:400], data.test_x[:64], data.test_y[:64])
    config = TrainConfig(model="mlp", model_args={"hidden": (32,)}, epochs=3, lr=5e-3, timesteps=8, encoding="rate",
                         seed=0, quantize="loihi", out=str(tmp_path / "run"))
    ckpt = train(config, dataset=small, progress=False)
    out = tmp_path / "m.net.h5"
    result = CliRunner().invoke(cli, ["export", str(ckpt.path), "--target", "loihi", "--out", str(out), "--samples", "64",
                                      "--timesteps", "32", "--verify", "lava", "--lava-python", str(lava), "--max-drop", "100"])
    assert result.exit_code == 0, result.output
    # the first --verify-samples inputs, 32 steps plus one per layer (hidden, readout)
    assert f"verified: lava: {VERIFY_SAMPLES} samples x {32 + 2} steps, every layer's spikes bit-exact" in result.output
    assert out.exists()
