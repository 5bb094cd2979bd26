"""The deployed network, profiled: a Loihi file run in the bit-accurate simulator, its fixed-point spikes
and synaptic operations counted by hand on networks of a few neurons, against Lava's committed run of a
file lava-dl's own ``export_hdf5`` wrote, against the simulator on an export, beside the float model,
and bad input. Lava itself runs in the ``lava``-marked test at the end."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snnpipe.hw_targets.loihi.lava_bridge import lava_input, lava_python, run_lava
from snnpipe.hw_targets.loihi.netx import read_netx, write_netx
from snnpipe.hw_targets.loihi.network import CubaNeuron, LoihiLayer, LoihiNetwork, readout_neuron
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator
from snnpipe.models import create_model
from snnpipe.models.neurons import NeuronParams
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.data import DataSpec
from snnpipe.pipeline.energy_report import figure_name, report_unit
from snnpipe.pipeline.export import encoded_test_batches
from snnpipe.pipeline.profile import Profile
from snnpipe.pipeline.profile.deployed import profile_deployed
from snnpipe.pipeline.profile.deployed_counts import count_deployed
from snnpipe.pipeline.profile.deployed_data import read_deployed

GOLDEN = Path(__file__).parent / "golden" / "loihi"


# --- counts by hand ---------------------------------------------------------------------------------

def test_a_hand_built_netx_file_is_profiled_as_worked_out_by_hand(tmp_path):
    # fc: 3 inputs -> 2 neurons, file weights [[100, 100, 0], [-50, 80, 0]]; u = a_in (iDecay 4096),
    # v integrates (vDecay 0), spikes where v > 150 << 6. out: a readout of fc, weights [[40, 20]].
    # Input x[0] = [1, 1, 1], x[1] = [1, 0, 0], x[2] = [0, 1, 0]; fc receives x[t] at step t + 1,
    # the readout fc's spikes one step later: 3 + 2 = 5 steps.
    #   fc0: step 1 v = 200 > 150 spike; step 2 v = 100; step 3 v = 200 spike        -> steps 1, 3
    #   fc1: step 1 v = 30; step 2 v = -20; step 3 v = 60                            -> no spike
    # ACs of fc (a spike costs its nonzero weights): input 0 and 1 reach 2 neurons, input 2 none;
    # step 0: 2 + 2 + 0, step 1: 2, step 2: 2 -> 8. ACs of out: fc0 reaches 1 output, at steps 1 and 3.
    fc = LoihiLayer("fc", "dense", (3,), (2,), np.array([[100, 100, 0], [-50, 80, 0]]), None, CubaNeuron(4096, 0, 150))
    out = LoihiLayer("out", "dense", (2,), (1,), np.array([[40, 20]]), None, readout_neuron())
    path = tmp_path / "hand.net.h5"
    write_netx(LoihiNetwork((3,), [fc, out]), path, {"timesteps": 3, "encoding": "rate"})
    graph, _ = read_deployed(path)
    x = torch.tensor([[1.0, 1, 1], [1, 0, 0], [0, 1, 0]]).reshape(3, 1, 3)
    p = count_deployed(graph, x)
    assert p.timesteps == 5 and p.samples == 1 and p.spiking
    assert [(layer.name, layer.module) for layer in p.layers] == [
        ("fc", "Dense"), ("fc.neuron", "LIF"), ("out", "Dense"), ("out.neuron", "LIF (readout)")]
    syn, neurons, readout, readout_neurons = p.layers
    assert syn.acs_per_step == [4, 2, 2, 0, 0] and syn.acs == 8 and syn.macs == 0
    assert neurons.spikes == 2 and neurons.rate_per_step == [0, 0.5, 0, 0.5, 0]
    assert neurons.neurons == 2 and neurons.state_size == 4 and neurons.neuron_updates == 10
    assert neurons.firing_rate == pytest.approx(2 / 10)
    assert readout.acs_per_step == [0, 1, 0, 1, 0] and readout_neurons.spikes == 0
    assert readout_neurons.neuron_updates == 5
    assert p.totals.acs == 10 and p.totals.spikes == 2 and p.totals.neuron_updates == 15
    assert p.totals.dense == 5 * (3 * 2 + 2 * 1)  # NeuroBench's dense: every weight at every step


def test_the_hand_built_file_is_priced_by_the_memory_model_as_worked_out_by_hand(tmp_path):
    # The file of the test above, two samples: the input above and one of zeros; int8 (add 0.03 pJ,
    # mult 0.2, MAC 0.23; 24-bit state), address arithmetic INT32 (add 0.1 pJ). Per inference (mean):
    # fc: 4 ACs, 2.5 input events, fan-out 2 (its outputs); out: 1 AC, 1 event (fc0's spikes), fan-out 1;
    # fc.neuron 2 neurons x 5 steps, 2 state variables, 1 spike; out.neuron 1 x 5, 2 state variables.
    #   compute    = (4 + 1) ACs x 0.03 + (10 x 2 + 5 x 2) x 0.23 + 1 spike x 0.03     = 7.08 pJ
    #   addressing = (2.5 x 2 + 1 x 1) x 0.1                                           = 0.6 pJ
    # The ANN-INT8 baseline (the same layers once, densely: 3 x 2 + 2 x 1 MACs; inputs + outputs
    # read 3 + 2 and 2 + 1): compute 8 x 0.23 = 1.84, addressing 8 x 0.1 = 0.8.
    # Standard error over two samples: |e0 - e1| / 2, e0 - e1 the activity of sample 0 alone (8 + 2
    # ACs, 5 + 2 events, 2 spikes) priced; acc(S): one 64-bit access to S bytes.
    from snnpipe.hw_targets.memory import HOROWITZ_45NM

    fc = LoihiLayer("fc", "dense", (3,), (2,), np.array([[100, 100, 0], [-50, 80, 0]]), None, CubaNeuron(4096, 0, 150))
    out = LoihiLayer("out", "dense", (2,), (1,), np.array([[40, 20]]), None, readout_neuron())
    path = tmp_path / "hand.net.h5"
    write_netx(LoihiNetwork((3,), [fc, out]), path, {"timesteps": 3, "encoding": "rate"})
    graph, _ = read_deployed(path)
    x = torch.zeros(3, 2, 3)
    x[:, 0] = torch.tensor([[1.0, 1, 1], [1, 0, 0], [0, 1, 0]])
    p = count_deployed(graph, x, energy_model="memory")
    syn = p.layers[0]
    assert (syn.weights, syn.biases, syn.fan_in, syn.kernel, syn.kernel_fanout) == (6, 0, 3, 0, 2)
    assert (syn.inputs, syn.outputs, syn.dense_macs, syn.input_events) == (3, 2, 6, 2.5)
    snn, ann = p.estimates["snn"], p.estimates["ann-int8"]
    assert (p.energy_model, snn.precision) == ("memory", "int8")
    assert snn.terms["compute"] == pytest.approx(7.08) and snn.terms["addressing"] == pytest.approx(0.6)
    assert ann.terms["compute"] == pytest.approx(1.84) and ann.terms["addressing"] == pytest.approx(0.8)
    acc = HOROWITZ_45NM.access_pj
    fifo = acc(1000 * 4)
    activity = ((8 + 2 + 2) * 0.03 + (5 * 2 + 2 * 1) * 0.1                         # compute, addressing
                + 10 * 8 / 64 * acc(6) + 2 * 1 * 8 / 64 * acc(2)                     # weights fetched
                + (5 + 2 + 2) * 32 / 64 * fifo                                       # events in, spikes out
                + 2 * 10 * 24 / 64 * acc(2 * 3) + 2 * 2 * 24 / 64 * acc(1 * 3))      # targets' potentials
    assert snn.stderr_pj == pytest.approx(activity / 2)
    total = next(b for b in p.break_even if b.layer == "total")
    assert set(total.baselines) == {"ann-fp32", "ann-int8", "qann-2bit"}


def test_a_file_lava_dl_wrote_is_profiled_as_lava_ran_it_and_as_worked_out_by_hand():
    # tests/golden/loihi/make_lavadl.py: slayer's Input (no neuron), Conv 1 -> 2 (2x2 kernel on 1x3x3),
    # Flatten, Dense 8 -> 2, exported by lava-dl's export_hdf5 and run by Lava (lavadl.npz). Every neuron
    # has u = a_in and an integrating v, threshold 100 << 6.
    # Sample 0: every pixel at step 0. Conv channel 0 (all taps 64): 256 -> 4 spikes at step 1; channel 1
    #   (top-left tap 128): 4 spikes at step 1. Dense output 0 (128 from ch1 (0,0), 64 from ch1 (1,1)):
    #   192 at step 2, a spike; output 1 (64 from each of channel 0): 256, a spike.
    # Sample 1: the centre pixel at steps 0..3. Channel 0 gets 64 per step: spikes at steps 2 and 4 (4 x 2);
    #   channel 1 only at (1,1), 128: steps 1..4 (4). Output 0: 64 per step from ch1 (1,1), spikes at 3 and 5;
    #   output 1: 256 at steps 3 and 5. Spikes: conv (8 + 12) / 2 = 10, dense (2 + 4) / 2 = 3.
    # Fan-out of a pixel into the conv: channel 0 windows (corner 1, edge 2, centre 4) + channel 1's one tap
    # for the top-left 2x2 pixels: 20 for all nine, 5 for the centre. Conv ACs: step 0 (20 + 5) / 2, steps
    # 1..3 5 / 2 each: 20. Into the dense: channel 0 neurons 1, ch1 (0,0) and (1,1) 1, ch1 (0,1), (1,0) 0:
    #   sample 0 at step 1: 4 + 1 + 1 = 6; sample 1: step 1: 1, steps 2 and 4: 4 + 1, step 3: 1 -> 12. 9 in all.
    graph, attrs = read_deployed(GOLDEN / "lavadl.net.h5")
    assert attrs == {} and [node.name for node in graph.nodes] == ["layer/1", "layer/3"]  # lava-dl writes no names
    lava = np.load(GOLDEN / "lavadl.npz")
    p = count_deployed(graph, torch.from_numpy(lava["x"]).float())
    conv, conv_neurons, dense, dense_neurons = p.layers
    assert (conv.module, dense.module) == ("Conv", "Dense") and p.samples == 2 and p.timesteps == 6
    assert conv.acs_per_step == [12.5, 2.5, 2.5, 2.5, 0, 0] and conv.acs == 20
    assert dense.acs_per_step == [0, 3.5, 2.5, 0.5, 2.5, 0] and dense.acs == 9
    assert (conv_neurons.spikes, dense_neurons.spikes) == (10, 3)
    assert conv_neurons.firing_rate == pytest.approx(10 / (8 * 6)) and dense_neurons.firing_rate == pytest.approx(3 / 12)
    for layer, i in ((conv_neurons, 0), (dense_neurons, 1)):  # Lava's own spikes, step by step
        spikes = lava[f"spikes_{i}"]  # (N, steps, ...)
        per_step = spikes.reshape(*spikes.shape[:2], -1).sum(axis=(0, 2)) / spikes.shape[0] / layer.neurons
        assert layer.rate_per_step == pytest.approx(per_step.tolist())


# --- an export, alone and beside its checkpoint --------------------------------------------------

def _checkpoint(tmp_path: Path, encoding: str = "rate") -> Path:
    """A digits MLP 64-16-10 with seeded weights, scaled so that the hidden layer spikes."""
    torch.manual_seed(3)
    model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(16,))
    state = {k: v * 4 if k.endswith("weight") else v for k, v in model.state_dict().items()}
    spec = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
    path = tmp_path / "run" / "checkpoint.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    Checkpoint("mlp", {"hidden": (16,)}, True, NeuronParams(), 4, encoding, spec, state, []).save(path)
    return path


def _export(checkpoint: Path, samples: int = 48) -> Path:
    result = CliRunner().invoke(cli, ["export", str(checkpoint), "--target", "loihi", "--samples", str(samples),
                                      "--max-drop", "100"])
    assert result.exit_code == 0, result.output
    return checkpoint.parent / "export" / "mlp.net.h5"


def test_an_exported_file_is_profiled_alone_as_the_simulator_runs_it_and_beside_its_checkpoint(tmp_path):
    ckpt = _checkpoint(tmp_path)
    path = _export(ckpt)
    _, attrs = read_netx(path)
    assert (attrs["dataset"], attrs["data_seed"], attrs["timesteps"], attrs["encoding"]) == ("digits", 0, 4, "rate")
    alone = CliRunner().invoke(cli, ["profile", str(path), "--samples", "48", "--out", str(tmp_path / "alone"), "--json",
                                     "--energy-model", "memory"])
    assert alone.exit_code == 0, alone.output
    written = json.loads((tmp_path / "alone" / "profile.json").read_text())
    p = Profile.from_dict(written)
    assert written["schema"] == "snnpipe.profile/2" and p.energy_model == "memory"
    assert json.loads(alone.output)["energy"]["snn_energy_memory_int8_uj"] == pytest.approx(p.estimates["snn"].total_uj)
    assert p.dataset == "digits" and p.encoding == "rate" and p.samples == 48 and p.timesteps == 4 + 2
    assert p.delay_steps == 2
    # the oracle: the simulator on the checkpoint's own encoded test set, its spikes summed by layer
    net, _ = read_netx(path)
    spikes, correct = np.zeros(2), 0
    for x, y in encoded_test_batches(Checkpoint.load(ckpt), samples=48)():
        run = LoihiSimulator(net).run(x, record_spikes=True)
        spikes += [int(s.sum()) for s in run.spikes]
        correct += int((run.predictions() == y).sum())
    assert [layer.name for layer in p.neuron_layers] == ["blocks.hidden1.1.neuron", "blocks.head.0.neuron"]
    assert [layer.spikes for layer in p.neuron_layers] == pytest.approx((spikes / 48).tolist())
    assert spikes[0] > 0 and spikes[1] == 0  # the hidden layer spikes; the readout integrates
    assert p.accuracy == pytest.approx(correct / 48)
    assert json.loads(alone.output)["acs"] == pytest.approx(p.totals.acs)

    beside = CliRunner().invoke(cli, ["profile", str(ckpt), "--deployed", str(path), "--samples", "48",
                                      "--out", str(tmp_path / "beside"), "--energy-model", "memory"])
    assert beside.exit_code == 0, beside.output
    assert "deployed.md" in beside.output
    folder = tmp_path / "beside"
    written = json.loads((folder / "deployed.json").read_text())
    deployed = Profile.from_dict(written)
    assert written["schema"] == "snnpipe.profile/2"
    assert [vars(layer) for layer in deployed.layers] == [vars(layer) for layer in p.layers]  # the same input spikes
    assert deployed.estimates == p.estimates and deployed.break_even == p.break_even  # priced alike
    table = (folder / "deployed.md").read_text()
    float_snn = Profile.from_dict(json.loads((folder / "profile.json").read_text())).estimates["snn"]
    unit = report_unit(Profile.from_dict(json.loads((folder / "profile.json").read_text())))
    energy = next(line for line in table.splitlines() if line.startswith(f"| {figure_name(float_snn)} |"))
    assert f"({unit[0]} per inference" in table
    assert f"| {float_snn.total_pj / unit[1]:.4g} +/- " in energy and f"| {p.estimates['snn'].total_pj / unit[1]:.4g} +/- " in energy
    hidden = next(line for line in table.splitlines() if line.startswith("| neurons of blocks.hidden1.1 "))
    float_profile = Profile.from_dict(json.loads((folder / "profile.json").read_text()))
    assert f"| {p.neuron_layers[0].firing_rate:.4f} |" in hidden
    assert f"| {float_profile.layer('blocks.hidden1.2').firing_rate:.4f} |" in hidden
    assert "| blocks.hidden1.1 |" in table and "| neurons of blocks.head.0 | 10 | - | 0 |" in table
    again = CliRunner().invoke(cli, ["profile", str(ckpt), "--samples", "48", "--out", str(folder), "--force"])
    assert again.exit_code == 0, again.output  # a report with the deployed files is replaced whole
    assert not (folder / "deployed.md").exists()


def test_the_energy_gate_gates_a_deployed_profile(tmp_path):
    # a deployed profile against its own baseline passes; against one whose SNN energy was 20% lower in
    # every layer and in total, it fails at 5% (exit 1), each row at +25%
    path = _export(_checkpoint(tmp_path), samples=16)
    base = tmp_path / "baseline.json"
    args = ["profile", str(path), "--samples", "16", "--energy-model", "memory", "--json"]
    made = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a"), "--baseline", str(base), "--update-baseline"])
    assert made.exit_code == 0, made.output
    same = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b"), "--baseline", str(base),
                                    "--max-energy-increase", "5%"])
    assert same.exit_code == 0 and json.loads(same.output)["energy_gate"]["passed"], same.output
    data = json.loads(base.read_text())
    snn = data["estimates"]["snn"]
    snn["total_pj"] *= 0.8
    for layer in snn["layers"].values():
        layer["total"] *= 0.8
    base.write_text(json.dumps(data))
    lower = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "c"), "--baseline", str(base),
                                     "--max-energy-increase", "5%"])
    assert lower.exit_code == 1, lower.output
    rows = json.loads(lower.output.splitlines()[0])["energy_gate"]["rows"]
    assert [row["change"] for row in rows if row["baseline"]] == pytest.approx([0.25] * sum(1 for r in rows if r["baseline"]))


def test_a_direct_coded_export_takes_its_graded_input(tmp_path):
    # a direct-coded model deploys as a Loihi graph with graded input: its first layer's input is not
    # spikes, so the profile counts MACs there (at the T steps that carry input), ACs after
    ckpt = _checkpoint(tmp_path, encoding="direct")
    path = _export(ckpt)
    p = profile_deployed(path, samples=16)
    first, _, second, _ = p.layers
    assert first.macs_per_step == [16 * 64] * 4 + [0, 0] and first.acs == 0
    assert second.macs == 0


# --- bad input --------------------------------------------------------------------------------------

def _one_line_error(result, *words):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


def _edited(tmp_path: Path, name: str, edit) -> Path:
    path = tmp_path / f"{name}.net.h5"
    shutil.copy(GOLDEN / "lavadl.net.h5", path)
    with h5py.File(path, "r+") as handle:
        edit(handle)
    return path


def _retype(group, kind: str) -> None:
    del group["type"]
    group.create_dataset("type", (1,), "S10", [kind.encode()])


def test_bad_files_and_missing_data_are_one_line_exit_2_and_write_nothing(tmp_path):
    ckpt = _checkpoint(tmp_path)
    exported = _export(ckpt, samples=8)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    foreign = tmp_path / "other.h5"
    with h5py.File(foreign, "w") as handle:
        handle.create_dataset("x", data=np.arange(3))
    golden = str(GOLDEN / "lavadl.net.h5")
    direct = _checkpoint(tmp_path / "direct", encoding="direct")
    cases = {
        "missing": ([str(tmp_path / "nowhere.net.h5")], ("nowhere.net.h5", "does not exist")),
        "corrupt": ([str(corrupt)], ("corrupt.h5", "Loihi file")),
        "not netx": ([str(foreign)], ("other.h5", "Loihi file")),
        "pooling": ([str(_edited(tmp_path, "pool", lambda h: _retype(h["layer/2"], "pool")))],
                    ("layer/2", "'pool'", "input, flatten, dense and conv layers")),
        "sigma-delta": ([str(_edited(tmp_path, "sdnn", lambda h: (h["layer/3/neuron"].pop("type"),
                                                                    h["layer/3/neuron"].create_dataset("type", data="SDNN"))))],
                        ("layer/3", "'SDNN'")),
        "input neuron": ([str(_edited(tmp_path, "input", lambda h: h.copy(h["layer/1/neuron"], h["layer/0"], "neuron")))],
                         ("layer/0", "input layer with its own neuron")),
        "delays": ([str(_edited(tmp_path, "delay", lambda h: h["layer/3"].create_dataset("delay", data=np.ones(2))))],
                   ("layer/3", "delays")),
        "no data": ([golden], ("lavadl.net.h5", "--dataset, --encoding, --timesteps")),
        "no encoding": ([golden, "--dataset", "digits"], ("--encoding, --timesteps",)),
        "wrong shape": ([golden, "--dataset", "digits", "--encoding", "rate", "-T", "4"], ("1x3x3", "1x8x8", "--dataset")),
        "analog into spikes": ([str(exported), "--encoding", "direct"], ("takes spikes", "--encoding rate or latency")),
        "file beside a file": ([str(exported), "--deployed", golden], ("--deployed", "give the checkpoint first")),
        "encoding of a checkpoint": ([str(ckpt), "--encoding", "rate"], ("--encoding", "Loihi file")),
        "another checkpoint's file": ([str(direct), "--deployed", str(exported)], ("exported for rate encoding", "direct")),
        "deployed missing": ([str(ckpt), "--deployed", str(tmp_path / "none.net.h5")], ("none.net.h5", "does not exist")),
        "bad timesteps": ([golden, "-T", "0"], ("--timesteps 0",)),
    }
    for case, (args, words) in cases.items():
        out = tmp_path / "reports" / case.replace(" ", "-")
        result = CliRunner().invoke(cli, ["profile", *args, "--samples", "8", "--out", str(out)])
        _one_line_error(result, *words)
        assert not out.exists(), case


# --- Lava ----------------------------------------------------------------------------------------------

@pytest.mark.lava
def test_the_deployed_profile_counts_the_spikes_lava_computes(tmp_path):
    # the export run by Lava itself on the first 8 test inputs: every layer's spikes at every step
    ckpt = _checkpoint(tmp_path)
    path = _export(ckpt, samples=8)
    p = profile_deployed(path, samples=8)
    graph, _ = read_deployed(path)
    x = next(iter(encoded_test_batches(Checkpoint.load(ckpt), samples=8)()))[0]
    lava = run_lava(path, lava_input(x, graph.steps_for(x.shape[0])), lava_python())
    for layer, spikes in zip(p.neuron_layers, lava.spikes):
        per_step = spikes.reshape(*spikes.shape[:2], -1).sum(axis=(0, 2)) / 8 / layer.neurons
        assert layer.rate_per_step == pytest.approx(per_step.tolist())
    assert p.neuron_layers[0].spikes > 0


def _mlp_checkpoint(folder: Path, hidden: tuple[int, ...]) -> Path:
    torch.manual_seed(3)
    model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=hidden)
    spec = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
    path = folder / "run" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    Checkpoint("mlp", {"hidden": hidden}, True, NeuronParams(), 4, "rate", spec, model.state_dict(), []).save(path)
    return path


@pytest.mark.parametrize("other,differs", [((24,), "neurons of blocks.hidden1.1 has 24 neurons there and 16 in the "
                                                   "checkpoint"),
                                          ((16, 16), "holds blocks.hidden2.0, which the checkpoint has not")],
                         ids=["wider", "deeper"])
def test_a_deployed_file_of_another_network_is_refused_beside_a_checkpoint(tmp_path, other, differs):
    # the side-by-side report would set two unrelated networks' counts against each other
    ckpt = _mlp_checkpoint(tmp_path / "a", (16,))
    foreign = _export(_mlp_checkpoint(tmp_path / "b", other), samples=16)
    result = CliRunner().invoke(cli, ["profile", str(ckpt), "--deployed", str(foreign), "--samples", "16", "--out",
                                      str(tmp_path / "r")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert differs in result.output and "give the Loihi file exported from this checkpoint" in result.output
    assert not (tmp_path / "r").exists()
    own = _export(ckpt, samples=16)
    assert CliRunner().invoke(cli, ["profile", str(ckpt), "--deployed", str(own), "--samples", "16", "--out",
                                    str(tmp_path / "r")]).exit_code == 0
