"""Loihi export without Lava: the simulator against committed Lava runs (golden files), the fixed-point
arithmetic by hand, the quantizer, the netx file, quantization-aware training, the command and bad input.

Lava itself (the oracle on freshly trained models) runs in tests/test_loihi_lava.py (marker ``lava``).
"""

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from snnpipe.hw_targets.loihi import fixed_point as fx
from snnpipe.hw_targets.loihi.graph_file import read_loihi
from snnpipe.hw_targets.loihi.lava_bridge import LavaUnavailableError, find_python310, lava_python
from snnpipe.hw_targets.loihi.netx import NetxError, read_netx, write_netx
from snnpipe.hw_targets.loihi.network import CubaNeuron, LoihiLayer, LoihiNetwork, readout_neuron
from snnpipe.hw_targets.loihi.qat import apply_quantization
from snnpipe.hw_targets.loihi.quantize import WeightOverflowError, block_exponent, quantize_model
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator
from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets import UnsupportedLayerError
from snnpipe.models import SpikingModel, create_model
from snnpipe.models.neurons import CubaLIF, NeuronParams
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import Dataset, DataSpec, load_dataset
from snnpipe.pipeline.train import train

GOLDEN = Path(__file__).parent / "golden" / "loihi"


# --- the simulator against Lava's own runs, committed ---------------------------------------------

@pytest.mark.parametrize("name", ["tiny.net", "edge_conv.net", "edge_dense.net", "lavadl.net", "residual_identity.graph",
                                  "residual_projection.graph", "graded_input.graph"])
def test_simulator_reproduces_lavas_golden_runs_bit_for_bit(name):
    # tests/golden/loihi/make_golden.py ran these files in Lava's Loihi2SimCfg(select_tag="fixed_pt"):
    # netx files through lava-dl's netx, graph files through lava_runner.py's process graph
    graph, attrs = read_loihi(GOLDEN / f"{name}.h5")
    name = name.split(".")[0]
    want = np.load(GOLDEN / f"{name}.npz")
    x = torch.from_numpy(want["x"]).float()
    got = LoihiSimulator(graph).run(x, record_spikes=True, record_state=True)
    for i in range(len(graph.nodes)):
        for key, ours in (("spikes", got.spikes[i]), ("u", got.current[i]), ("v", got.voltage[i])):
            np.testing.assert_array_equal(ours.transpose(0, 1).numpy(), want[f"{key}_{i}"], err_msg=f"{name} {key}_{i}")
    counters = got.counters
    if name in ("tiny", "residual_identity", "residual_projection", "graded_input"):
        assert all(c.spikes > 0 for c in counters[:-1])  # every spiking layer spikes: not silent networks
    if name == "edge_conv":  # the 24-bit conv accumulator and the current both wrapped, and v saturated
        assert counters[0].accumulator_wraps and counters[0].current_wraps and counters[0].voltage_saturations
    if name == "edge_dense":
        assert counters[0].current_wraps and counters[0].voltage_saturations
    if name.startswith("residual"):  # a block's two branches, the shortcut through a relay
        assert [len(n.connections) for n in graph.nodes] == [1, 1, 1, 2, 1] and graph.nodes[2].relay
    if name == "graded_input":  # 8-bit integers, some clipped at 127
        assert graph.input_bits == 8 and attrs["encoding"] == "direct"
        assert graph.quantize_input(x).max() == 127 and len(graph.quantize_input(x).unique()) > 100


# --- fixed point by hand ------------------------------------------------------------------------------

def _one_neuron(weight_file: int, neuron: CubaNeuron) -> LoihiNetwork:
    return LoihiNetwork((1,), [LoihiLayer("n", "dense", (1,), (1,), np.array([[weight_file]]), None, neuron)])


def test_one_neuron_by_hand():
    # file weight 100: a_in = 100 per input spike, u gets 100 << 6 = 6400. iDecay 2048: u keeps
    # 4096 - 2048 = 2048/4096 (half); vDecay 1024: v keeps 3072/4096. Threshold 200 << 6 = 12800.
    # Input spikes at steps 0 and 1 reach the neuron one step later (Lava's synaptic delay):
    #   step 0: u 0,                 v 0
    #   step 1: u 6400,              v 6400
    #   step 2: u 3200 + 6400 = 9600, v 4800 + 9600 = 14400 > 12800: spike, v = 0
    #   step 3: u 4800,              v 4800
    #   step 4: u 2400,              v 3600 + 2400 = 6000
    net = _one_neuron(100, CubaNeuron(2048, 1024, 200))
    x = torch.tensor([1.0, 1.0, 0.0]).reshape(3, 1, 1)
    run = LoihiSimulator(net).run(x, steps=5, record_spikes=True, record_state=True)
    assert run.current[0].flatten().tolist() == [0, 6400, 9600, 4800, 2400]
    assert run.voltage[0].flatten().tolist() == [0, 6400, 0, 4800, 6000]
    assert run.spikes[0].flatten().tolist() == [0, 0, 1, 0, 0]
    # the threshold is strict: at 225 << 6 = 14400, step 2's v = 14400 does not spike; step 3 then has
    # v = 14400 x 3/4 + 4800 = 15600 and spikes
    equal = LoihiSimulator(_one_neuron(100, CubaNeuron(2048, 1024, 225))).run(x, steps=5, record_spikes=True)
    assert equal.spikes[0].flatten().tolist() == [0, 0, 0, 1, 0]


def test_decays_round_toward_zero_and_the_current_decay_is_offset_by_one():
    # file weights [-2, 2], the first input spikes once: u = -2 << 6 = -128. iDecay 1 means Lava's du = 0,
    # which still decays by 1/4096 (du + 1): rtz(-128 * 4095 / 4096) = -rtz(127.97) = -127 (floor: -128)
    net = LoihiNetwork((2,), [LoihiLayer("n", "dense", (2,), (1,), np.array([[-2, 2]]), None, CubaNeuron(1, 0, 1000))])
    run = LoihiSimulator(net).run(torch.tensor([[[1.0, 0.0]]]), steps=3, record_state=True)
    assert run.current[0].flatten().tolist() == [0, -128, -127]
    assert run.voltage[0].flatten().tolist() == [0, -128, -255]  # vDecay 0: v keeps all of itself
    assert fx.quantize_current_decay(1.0) == 4096 and fx.quantize_voltage_decay(0.5) == 2048
    with pytest.raises(ValueError, match="4095"):
        fx.quantize_voltage_decay(1.0)


def test_the_readout_integrates_its_input_and_bias():
    # readout: iDecay 4096 (u = a_in), vDecay 0, never spikes; bias 3 is added at every step (<< 6)
    # two input spikes x weight 10, over 4 steps: v = (0 + 3) + (10 + 3) + (10 + 3) + 3 = 32, << 6 = 2048
    net = LoihiNetwork((1,), [LoihiLayer("r", "dense", (1,), (1,), np.array([[10]]), np.array([3]), readout_neuron())])
    run = LoihiSimulator(net).run(torch.ones(2, 1, 1), steps=4)
    assert run.output.tolist() == [[32 << 6]]


def test_dense_weights_reach_lava_as_written():
    # netx's optimize_weight_bits then Lava's clip and truncate: mixed-sign even weights arrive unchanged
    fmt = fx.dense_synapse_format(np.array([[2, 4], [6, -8]]))
    assert fmt.exact and fmt.sign_mode == "mixed"
    assert (fmt.weights >> -fmt.weight_exp).tolist() == [[2, 4], [6, -8]]
    # largest weight 0 and negatives: netx is in mixed mode with 127 / 0 = inf, so the scale is
    # -128 / -3 -> 2**5, plus the sign bit: << 6; odd weights leave no spare bit, 8 - 6 + 1 = 3 bits
    # (lava-dl 0.6.0's optimize_weight_bits gives [[0, -128], [-192, 0]], 3 bits, exponent -6)
    fmt = fx.dense_synapse_format(np.array([[0, -2], [-3, 0]]))
    assert (fmt.weights.tolist(), fmt.num_weight_bits, fmt.weight_exp, fmt.sign_mode) == (
        [[0, -128], [-192, 0]], 3, -6, "mixed")
    assert fmt.exact
    # all-inhibitory -256: Lava clips it to -255 (the golden edge_conv file checks this against Lava)
    assert not fx.dense_synapse_format(np.array([[-256, -2]])).exact


# --- the quantizer --------------------------------------------------------------------------------

def _model(blocks: dict, input_shape=(1, 2, 1)) -> SpikingModel:
    model = SpikingModel(nn.ModuleDict(blocks), spiking=True)
    model.input_shape, model.num_classes = input_shape, 2
    return model.eval()


def test_block_exponent_mantissas_and_threshold_by_hand():
    # largest |w| = 1.0: e = -6 (127 x 2^-6 = 1.98 >= 1; 2^-7 would give 0.99); mantissas w / 2^-6;
    # the file holds them << 1, so one weight unit is 2^-7 and the threshold 1.0 is vThMant 128
    assert block_exponent(1.0) == -6 and block_exponent(127.0) == 0 and block_exponent(127.5) == 1
    fc = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, -0.5], [0.25, 0.004]]))
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    model = _model({"hidden": nn.Sequential(nn.Flatten(), fc, CubaLIF(NeuronParams(threshold=1.0))), "head": nn.Sequential(head)})
    q = quantize_model(model, (1, 2, 1), timesteps=4)
    layer, stats = q.network.layers[0], q.layers[0]
    assert layer.weight.tolist() == [[128, -64], [32, 0]]  # 0.004 / 2^-6 = 0.256 rounds to 0
    assert (stats.weight_exp, stats.weights_zeroed, stats.weights_clipped) == (-6, 1, 0)
    assert layer.neuron == CubaNeuron(4096, 2048, 128) and layer.flatten
    assert q.network.layers[1].neuron.readout


def test_average_pooling_folds_into_the_next_conv_exactly():
    # pooling (2, 2) then a 3x3 conv with padding 1 is one 6x6 conv of stride 2 and padding 2 on the
    # unpooled spikes; checked here on random spikes in float64, independently of the exporter's own check
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    model = _model({
        "b1": nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), CubaLIF(), nn.AvgPool2d(2)),
        "b2": nn.Sequential(conv, CubaLIF()),
        "head": nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)),
    }, input_shape=(1, 8, 8))
    q = quantize_model(model, (1, 8, 8), timesteps=4)
    layer = q.network.layers[1]
    assert (layer.kernel_size, layer.stride, layer.padding, layer.in_shape) == ((6, 6), (2, 2), (2, 2), (2, 8, 8))
    assert q.layers[1].pools_folded == ["blocks.b1.2"]
    spikes = (torch.rand(5, 2, 8, 8) < 0.4).double()
    unit = 2.0 ** (q.layers[1].weight_exp - 1)
    folded = F.conv2d(spikes, torch.from_numpy(layer.weight).double() * unit, None, 2, 2)
    # the reference: pool, then the 3x3 conv with its weights on the 8-bit grid. The fold divides the
    # weights by 4, a power of two: the same mantissas at an exponent 2 higher
    step = 2.0 ** (q.layers[1].weight_exp + 2)
    reference = F.conv2d(F.avg_pool2d(spikes, 2), torch.round(conv.weight.double() / step) * step, None, 1, 1)
    torch.testing.assert_close(folded, reference, rtol=0, atol=1e-12)


def test_netx_file_round_trip(tmp_path):
    net, _ = read_netx(GOLDEN / "tiny.net.h5")
    write_netx(net, tmp_path / "again.net.h5", {"timesteps": 8})
    back, attrs = read_netx(tmp_path / "again.net.h5")
    assert attrs["timesteps"] == 8 and back.input_shape == net.input_shape
    for a, b in zip(net.layers, back.layers):
        assert (a.name, a.kind, a.in_shape, a.out_shape, a.neuron, a.flatten, a.stride, a.padding, a.dilation, a.groups) == \
               (b.name, b.kind, b.in_shape, b.out_shape, b.neuron, b.flatten, b.stride, b.padding, b.dilation, b.groups)
        assert np.array_equal(a.weight, b.weight) and (a.bias is None) == (b.bias is None)
    with pytest.raises(NetxError, match="does not exist"):
        read_netx(tmp_path / "none.h5")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(offset=st.integers(0, 37511), mask=st.integers(0, 255))
@example(offset=0, mask=0xFF)  # not HDF5: OSError before
@example(offset=9000, mask=0)  # cut short
def test_a_damaged_netx_file_reads_or_is_one_netx_error(tmp_path_factory, offset, mask):
    # a byte of the golden file flipped (mask 0: the file cut at offset): either a network that runs,
    # or one line; before, h5py's KeyError, RuntimeError, OSError and numpy's TypeError came through
    data = (GOLDEN / "tiny.net.h5").read_bytes()
    damaged = data[:offset] if not mask else data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1:]
    path = tmp_path_factory.mktemp("netx") / "m.net.h5"
    path.write_bytes(damaged)
    try:
        net, _ = read_netx(path)
    except NetxError as err:
        assert "\n" not in str(err) and str(path) in str(err)
    else:
        LoihiSimulator(net).run(torch.zeros(1, 1, *net.input_shape))


@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_a_netx_read_that_crashes_or_hangs_the_hdf5_library_is_one_netx_error(monkeypatch, fault):
    # what a damaged global heap does to HDF5 (tests/test_nir_fuzz.py pins such NIR files), stood in
    # for by the reading function: it runs in a forked child, so this process sees one line
    import snnpipe.hw_targets.loihi.netx as netx

    def crash(path):
        os.kill(os.getpid(), signal.SIGSEGV)

    def hang(path):
        time.sleep(60)

    monkeypatch.setattr(netx, "_read_netx", crash if fault == "crash" else hang)
    monkeypatch.setattr(netx, "READ_TIMEOUT", 1.0)
    reason = "crashed the HDF5 library \\(signal 11\\)" if fault == "crash" else "did not finish in 1 s"
    with pytest.raises(NetxError, match=f"tiny.net.h5 is a damaged netx file: reading it {reason}") as err:
        read_netx(GOLDEN / "tiny.net.h5")
    assert "\n" not in str(err.value)


def test_unsupported_layers_name_their_path():
    # issue 24: an imported graph is traced as any model is, and exports: fc1 + lif1, then lif2 sums fc2
    # of lif1 and lif1 itself (both one step after lif1: no relay), then the readout
    imported = create_model("graph", input_shape=(1, 8, 8)).eval()
    assert [len(n.connections) for n in quantize_model(imported, (1, 8, 8), 4).graph.nodes] == [1, 2, 1]
    pooled = _model({"b": nn.Sequential(nn.Conv2d(1, 2, 3), CubaLIF(), nn.MaxPool2d(2)),
                     "head": nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 2))}, input_shape=(1, 8, 8))
    # the graph has no max pooling, and no target that reads it (NIR neither) has: no --target nir hint
    with pytest.raises(UnsupportedLayerError, match=r"blocks\.b\.2 \(MaxPool2d\).*average pooling"):
        quantize_model(pooled, (1, 8, 8), 4)
    refractory = create_model("mlp", input_shape=(1, 8, 8), neuron=NeuronParams(refractory_steps=1)).eval()
    with pytest.raises(UnsupportedLayerError, match="refractory"):
        quantize_model(refractory, (1, 8, 8), 4)


def test_weights_too_large_for_the_threshold_overflow():
    model = create_model("mlp", input_shape=(1, 8, 8)).eval()
    with torch.no_grad():
        model.blocks.hidden1[1].weight.mul_(1e4)
    with pytest.raises(WeightOverflowError, match="overflow"):
        quantize_model(model, (1, 8, 8), 4)


# --- quantization-aware training ------------------------------------------------------------------

def test_qat_forward_uses_exactly_the_exported_weights():
    torch.manual_seed(0)
    model = create_model("convnet", input_shape=(1, 8, 8), channels=(4, 8), hidden=16)
    model.train()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        model(torch.rand(2, 16, 1, 8, 8) * 3)
    model.eval()
    apply_quantization(model, "loihi")
    quantized = quantize_model(model, (1, 8, 8), 4)
    x = torch.rand(16, 1, 8, 8).lt(0.5).float()
    conv, bn = model.blocks.block1[0], model.blocks.block1[1]  # the first conv and its BatchNorm
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    exported = torch.from_numpy(quantized.network.layers[0].weight).float() * 2.0 ** (quantized.layers[0].weight_exp - 1)
    with torch.no_grad():  # what the trained conv computes, times the BatchNorm scale, is the file's conv
        torch.testing.assert_close(conv(x) * scale.view(1, -1, 1, 1), F.conv2d(x, exported, None, 1, 1),
                                   rtol=1e-5, atol=1e-5)
    head = model.blocks.head[4]  # the readout: no BatchNorm, exponent from its weights alone
    exported = torch.from_numpy(quantized.network.layers[-1].weight).float() * 2.0 ** (quantized.layers[-1].weight_exp - 1)
    h = torch.rand(5, 16).lt(0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(head(h) - head.bias, h @ exported.t(), rtol=1e-5, atol=1e-6)


def test_loihi_timing_from_scratch_with_batchnorm_is_refused_with_the_fix(tmp_path):
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:64], data.train_y[:64], data.test_x[:16], data.test_y[:16])
    config = TrainConfig(model="convnet", model_args={"channels": (4, 8), "hidden": 16}, epochs=1, timesteps=2,
                         encoding="rate", quantize="loihi", out=str(tmp_path / "run"))
    with pytest.raises(SnnpipeError, match="delay_shift=false"):
        train(config, dataset=small, progress=False)
    first = train(TrainConfig(**{**vars(config), "model_args": {**config.model_args, "delay_shift": False}}),
                  dataset=small, progress=False)
    then = TrainConfig(**{**vars(config), "init": str(first.path), "out": str(tmp_path / "then")})
    assert train(then, dataset=small, progress=False).model_args["delay_shift"] is True


def test_delay_shift_runs_the_float_model_in_lavas_timing():
    # one linear layer (L = 1): T = 3 input steps run 4 steps; step 0 is the bias alone, step t
    # is W x[t-1] + b, as Lava's Dense delivers one step late while the neuron adds its bias every step
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(1, 2, 2), hidden=(), delay_shift=True).eval()
    head = model.blocks.head[1]
    x = torch.rand(3, 5, 1, 2, 2)
    with torch.no_grad():
        out = model(x)
        want = torch.stack([head(torch.zeros(5, 4))] + [head(x_t.flatten(1)) for x_t in x])
    assert out.shape == (4, 5, 10) and model.zoo_args == {"hidden": (), "delay_shift": True}
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(out[0], head.bias.expand(5, 10))
    # a second run starts from rest again: nothing of the last step is left in the delay
    with torch.no_grad():
        torch.testing.assert_close(model(x), want)


# --- the command -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_rate(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loihi")
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:400], data.train_y[:400], data.test_x[:64], data.test_y[:64])
    config = TrainConfig(model="mlp", model_args={"hidden": (32,)}, epochs=5, lr=5e-3, timesteps=8, encoding="rate",
                         out=str(tmp / "run"), seed=0, quantize="loihi")
    return train(config, dataset=small, progress=False)


def test_export_writes_the_file_and_a_report_that_its_own_simulation_confirms(tmp_path, digits_rate):
    out = tmp_path / "m.net.h5"
    result = CliRunner().invoke(cli, ["export", str(digits_rate.path), "--target", "loihi", "--out", str(out),
                                      "--samples", "64", "--max-drop", "100", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report == {**json.loads((tmp_path / "m.net.h5.report.json").read_text())}
    assert report["file_bytes"] == out.stat().st_size and report["test_samples"] == 64
    assert report["neurons"] == 32 + 10 and report["synapses"] == 64 * 32 + 32 * 10
    assert report["loihi2_cores"] == 2 and "Table 1" in report["core_limits_source"]
    layers = report["layers"]
    assert [l["name"] for l in layers] == ["blocks.hidden1.1", "blocks.head.0"] and layers[1]["readout"]
    assert all(-128 <= l["weight_mantissa_min"] and l["weight_mantissa_max"] <= 127 for l in layers)
    # independently: read the file back, run the simulator on the same encoded inputs, count correct
    from snnpipe.pipeline.export import encoded_test_batches

    net, attrs = read_netx(out)
    assert attrs["timesteps"] == 8 and attrs["encoding"] == "rate"
    correct = sum(int((LoihiSimulator(net).run(x).predictions() == y).sum()) for x, y in encoded_test_batches(digits_rate, samples=64)())
    assert report["accuracy_fixed_point"] == pytest.approx(correct / 64)
    again = CliRunner().invoke(cli, ["export", str(digits_rate.path), "--target", "loihi", "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def _one_line_error(result, *words):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


def _save(tmp_path, name, model, encoding="rate", **args) -> Path:
    spec = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
    path = tmp_path / f"{name}.pt"
    Checkpoint(name, args, True, NeuronParams(), 4, encoding, spec, model.state_dict(), []).save(path)
    return path


def test_bad_input_is_one_line_exit_2_and_leaves_no_file(tmp_path, digits_rate, monkeypatch):
    torch.manual_seed(0)
    refractory = tmp_path / "refractory.pt"  # Lava's LIF has no refractory period
    Checkpoint("mlp", {}, True, NeuronParams(refractory_steps=1), 4, "rate", DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,)),
               create_model("mlp", input_shape=(1, 8, 8)).state_dict(), []).save(refractory)
    direct = _save(tmp_path, "mlp", create_model("mlp", input_shape=(1, 8, 8)), encoding="direct")
    hot = Checkpoint.load(digits_rate.path)
    hot.state_dict = {k: v * 1e4 if k.endswith("weight") else v for k, v in hot.state_dict.items()}
    hot.save(tmp_path / "hot.pt")
    collapse = Checkpoint.load(digits_rate.path)  # one huge weight: the 8-bit grid zeroes all the others
    weight = collapse.state_dict["blocks.hidden1.1.weight"].clone()
    weight[0, 0] = 60.0
    collapse.state_dict = {**collapse.state_dict, "blocks.hidden1.1.weight": weight}
    collapse.save(tmp_path / "collapse.pt")
    monkeypatch.setenv("HOME", str(tmp_path))  # no Lava environment under ~/.cache
    monkeypatch.delenv("SNNPIPE_LAVA_PYTHON", raising=False)
    cases = {
        "refractory neurons": ([str(refractory)], ("blocks.hidden1.2 (CubaLIF)", "refractory_steps=1")),
        "graded input of 1 bit": ([str(direct), "--input-bits", "1"], ("--input-bits", "1 is not an integer >= 2 and <= 24")),
        "graded input bits for spikes": ([str(digits_rate.path), "--input-bits", "8"], ("--input-bits", "direct-coded")),
        "weights overflow": ([str(tmp_path / "hot.pt")], ("overflow",)),
        "accuracy collapse": ([str(tmp_path / "collapse.pt"), "--max-drop", "1"], ("--max-drop", "nothing was written")),
        "no lava": ([str(digits_rate.path), "--verify", "lava", "--lava-python", str(tmp_path / "nowhere" / "python")],
                    ("--lava-python", "lava-dl")),
        "unknown verifier": ([str(digits_rate.path), "--verify", "loihi-hw"], ("--verify",)),
        "bad max drop": ([str(digits_rate.path), "--max-drop", "-1"], ("--max-drop",)),
    }
    for case, (args, words) in cases.items():
        out = tmp_path / case / "m.net.h5"
        result = CliRunner().invoke(cli, ["export", *args, "--target", "loihi", "--out", str(out), "--samples", "64"])
        _one_line_error(result, *words)
        leftovers = list(out.parent.glob("*")) if out.parent.exists() else []
        assert leftovers == [], (case, leftovers)


def _fake_python(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "python3.10"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(0o755)
    return exe


def test_a_broken_python310_first_on_path_is_passed_over_for_one_that_runs(tmp_path, monkeypatch):
    # pyenv's shim when 3.10 is installed but not active: it exits 127
    shim = _fake_python(tmp_path / "shims", 'echo "pyenv: python3.10: command not found" >&2; exit 127')
    real = sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))
    if not real:
        pytest.skip("no pyenv Python 3.10 on this machine to find")
    # the real one reached through PATH too, after the shim, under another folder name
    working = _fake_python(tmp_path / "real", f'exec {real[-1]} "$@"')
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{working.parent}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    found, tried = find_python310()
    assert tried == [shim, working]
    assert found == working
    # pyenv's versions are candidates when nothing on PATH runs
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(real[-1].parents[3]))
    found, tried = find_python310()
    assert tried[0] == shim and found == real[-1]


def test_no_python310_that_runs_names_every_candidate_tried(tmp_path, monkeypatch):
    shim = _fake_python(tmp_path / "shims", "exit 127")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SNNPIPE_LAVA_PYTHON", raising=False)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    with pytest.raises(LavaUnavailableError, match=f"tried {shim}: none runs as Python 3.10"):
        lava_python()
    assert not (tmp_path / ".cache" / "snnpipe-lava").exists()


def test_no_lava_environment_and_no_python310_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SNNPIPE_LAVA_PYTHON", raising=False)
    with pytest.raises(LavaUnavailableError, match="Python 3.10"):
        lava_python(create=False)
    monkeypatch.setenv("SNNPIPE_LAVA_PYTHON", str(tmp_path / "python"))
    with pytest.raises(LavaUnavailableError, match="SNNPIPE_LAVA_PYTHON"):
        lava_python()
