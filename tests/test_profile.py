"""Profile: op counts worked out by hand, golden numbers, NeuroBench on three zoo models, a user's own
snnTorch loop, the reports, the firing-rate gate and bad input."""

import json
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from snnpipe.models import create_model
from snnpipe.models.neurons import CubaLIF, ExecutionMode, NeuronParams
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import Dataset, load_dataset
from snnpipe.pipeline.profile import Profile, ProfileError, firing_rate_gate, parse_fraction, profile
from snnpipe.pipeline.train import train


def _steps(model, x):
    """A time loop: the model applied to every timestep of x (T, B, ...)."""
    return torch.stack([model(x_t) for x_t in x]).flatten(2).mean(0)


# --- counts by hand -------------------------------------------------------------------------------

def test_dense_layer_with_two_inputs_by_hand():
    # weights [[0.5, 0], [0.2, -0.3], [0, 0.7]]: input 0 reaches outputs 0 and 1, input 1 reaches 1 and 2
    layer = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 0.0], [0.2, -0.3], [0.0, 0.7]]))
    spikes = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])  # (T=2, B=1, 2)
    p = profile(layer, spikes, run=_steps, spiking=True)
    fc = p.layer("Linear")
    # t1: one spike x fan-out 2 = 2 ACs; t2: two spikes x 2 = 4 ACs
    assert fc.acs_per_step == [2.0, 4.0] and fc.acs == 6.0 and fc.macs == 0.0
    assert fc.dense == 2 * 3 * 2  # NeuroBench's Dense: 2 steps x 3 outputs x 2 inputs
    assert p.totals.compute_energy_uj == pytest.approx(6 * 0.9e-6)
    analog = torch.tensor([[[0.5, 0.0]], [[0.5, -2.0]]])  # graded input: MACs
    fc = profile(layer, analog, run=_steps, spiking=True).layer("Linear")
    assert fc.acs == 0.0 and fc.macs_per_step == [6.0, 6.0]  # 3 outputs x fan-in 2, every step
    assert fc.effective_macs == 2.0 + 4.0  # NeuroBench: nonzero inputs x their fan-out


def _conv_acs(conv, x):
    return profile(conv, x.reshape(1, 1, *x.shape), run=_steps, spiking=True).layer("Conv2d")


def test_3x3_conv_with_padding_is_exact_at_the_borders():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    # 3x3 input: a corner pixel reaches 4 outputs, an edge pixel 6, the centre 9
    # all ones: 4*4 + 4*6 + 1*9 = 49 ACs; SPEC's dense MACs count the padded window: 9 outputs x 9 = 81
    ones = _conv_acs(conv, torch.ones(1, 3, 3))
    assert (ones.acs, ones.dense) == (49.0, 49.0)
    corner, edge = torch.zeros(1, 3, 3), torch.zeros(1, 3, 3)
    corner[0, 0, 0], edge[0, 0, 1] = 1, 1
    assert (_conv_acs(conv, corner).acs, _conv_acs(conv, edge).acs) == (4.0, 6.0)
    assert _conv_acs(conv, torch.full((1, 3, 3), 0.5)).macs == 81.0
    # without the kernel's centre every pixel loses the output at its own position: 49 - 9 = 40
    with torch.no_grad():
        conv.weight[0, 0, 1, 1] = 0
    assert _conv_acs(conv, torch.ones(1, 3, 3)).acs == 40.0
    # stride 2 on 4x4 (output 2x2): rows 0..3 are reached by 1, 2, 1, 1 output rows (row 3 only by
    # the window centred on row 2), likewise columns: (1+2+1+1)^2 = 25; dense MACs 4 x 9 = 36
    strided = nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False)
    nn.init.constant_(strided.weight, 1.0)
    assert _conv_acs(strided, torch.ones(1, 4, 4)).acs == 25.0
    assert _conv_acs(strided, torch.full((1, 4, 4), 0.5)).macs == 36.0


def test_average_pooling_of_spikes_folds_into_the_next_layer():
    # 2x2 average pooling of a 4x4 spike map, then Linear(4 -> 2) with weights [[1,0,1,0],[1,1,0,0]]:
    # pooled pixels 0..3 reach 2, 1, 1, 0 outputs. Spikes per window: 3, 1, 2, 4.
    # Folded (as on Loihi), every spike is an event: ACs = 3*2 + 1*1 + 2*1 + 4*0 = 9.
    # NeuroBench sees pooled values 0.75, 0.25, 0.5, 1 (not all in {0, 1}): Effective_MACs =
    # 4 nonzero inputs x fan-out = 2 + 1 + 1 + 0 = 4.
    fc = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 0, 1, 0], [1, 1, 0, 0]]))
    model = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), fc)
    spikes = torch.tensor([[1.0, 1, 0, 1], [0, 1, 0, 0], [1, 0, 1, 1], [0, 1, 1, 1]]).reshape(1, 1, 1, 4, 4)
    layer = profile(model, spikes, run=_steps, spiking=True).layer("2")
    assert (layer.acs, layer.macs, layer.effective_macs, layer.effective_acs) == (9.0, 0.0, 4.0, 0.0)
    # only the first window full: pooled [1, 0, 0, 0] is binary to NeuroBench (1 input x fan-out 2 ACs);
    # folded, its 4 spikes each reach 2 outputs: 8 ACs
    full = torch.zeros(1, 1, 1, 4, 4)
    full[..., :2, :2] = 1
    layer = profile(model, full, run=_steps, spiking=True).layer("2")
    assert (layer.acs, layer.effective_acs, layer.effective_macs) == (8.0, 2.0, 0.0)


def test_sum_pooling_of_spikes_is_binary_only_where_no_window_holds_two():
    # the same Linear after a 2x2 sum pooling (divisor 1): the values are the spike counts 3, 1, 2, 4.
    # Folded: the same 9 ACs. NeuroBench: 3, 2 and 4 are not spikes, so 4 nonzero inputs x their
    # fan-out are Effective_MACs, 2 + 1 + 1 + 0 = 4 (not 3*2 + 1 + 2, not ACs).
    fc = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 0, 1, 0], [1, 1, 0, 0]]))
    model = nn.Sequential(nn.AvgPool2d(2, divisor_override=1), nn.Flatten(), fc)
    spikes = torch.tensor([[1.0, 1, 0, 1], [0, 1, 0, 0], [1, 0, 1, 1], [0, 1, 1, 1]]).reshape(1, 1, 1, 4, 4)
    layer = profile(model, spikes, run=_steps, spiking=True).layer("2")
    assert (layer.acs, layer.macs, layer.effective_macs, layer.effective_acs) == (9.0, 0.0, 4.0, 0.0)
    # one spike in windows 0 and 2: values 1, 0, 1, 0 are spikes: 2 + 1 = 3 Effective_ACs, 3 ACs
    single = torch.zeros(1, 1, 1, 4, 4)
    single[..., 0, 0] = single[..., 2, 1] = 1
    layer = profile(model, single, run=_steps, spiking=True).layer("2")
    assert (layer.acs, layer.effective_acs, layer.effective_macs) == (3.0, 3.0, 0.0)


def test_pooling_windows_of_other_sizes_are_counted_exactly():
    # 3x3 average pooling, stride 1, padding 1 without the padding in the divisor, of a 3x3 map: the
    # windows hold 4 (corners), 6 (edges) and 9 pixels (centre), divisors that are not powers of two
    # (1/9 is not exact in binary), and they overlap. Linear(9 -> 1) of ones: with the pooling folded in
    # (as on Loihi) every pixel reaches the one output through one synapse, so a spike in the centre
    # (in all 9 windows) is 1 AC, not 9, and one event (pooled values 1/4, 1/6, 1/9: NeuroBench sees 9
    # nonzero inputs, 9 Effective_MACs); a corner spike (in 4 windows) is 1 AC too.
    fc = nn.Linear(9, 1, bias=False)
    nn.init.constant_(fc.weight, 1.0)
    pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def run(m, x):
        return torch.stack([m(pool(x_t).flatten(1)) for x_t in x]).mean(0)

    x = torch.zeros(2, 1, 1, 3, 3)
    x[0, ..., 1, 1] = x[1, ..., 0, 0] = 1
    layer = profile(fc, x, run=run, spiking=True).layer("Linear")
    assert (layer.acs_per_step, layer.effective_macs, layer.input_events) == ([1.0, 1.0], 13.0, 2.0)
    # one 3x3 window (divisor 9, no overlap), 3 steps of 64 samples: the count is the integer it is,
    # whatever the float sums of k/9 round to
    fc = nn.Linear(1, 1, bias=False)
    pool = nn.AvgPool2d(3)
    x = torch.rand(3, 64, 1, 3, 3, generator=torch.Generator().manual_seed(0)).lt(0.4).float()
    layer = profile(fc, x, run=run, spiking=True).layer("Linear")
    assert layer.acs == layer.input_events == float(x.sum()) / 64


def test_overlapping_pooling_counts_each_synapse_a_spike_reaches_once():
    # 1 channel 4x4 -> AvgPool2d(3, stride 1): four overlapping 3x3 windows (r, c), r, c in {0, 1},
    # window (r, c) holding rows r..r+2 and columns c..c+2 -> Conv2d(1 -> 2, 2x2) on the 2x2 pooled
    # map: output channel 0 reads all four pooled pixels, channel 1 only pooled (0, 0). Folded (as the
    # Loihi export folds it), a pixel reaches channel 0 if it is in any window, channel 1 if it is in
    # window (0, 0): each such output once, however many windows lead there.
    # Step 1, spikes at (0, 0) (window (0, 0) only), (1, 1) (all four), (3, 3) (window (1, 1) only):
    #   channel 0: 3 spikes x 1; channel 1: (0, 0) and (1, 1) -> 5 ACs, 3 events.
    #   (Per window instead: pooled (0, 0) holds 2 spikes x fan-out 2, (0, 1) and (1, 0) 1 x 1, (1, 1)
    #   2 x 1 = 8 ACs, 6 events, as many ACs as the dense 2 outputs x 4 fan-in.)
    # Step 2, all 16 pixels: channel 0 16, channel 1 the 9 of window (0, 0): 25 ACs, 16 events.
    conv = nn.Conv2d(1, 2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[1.0, 0.0], [0.0, 0.0]]]]))
    model = nn.Sequential(nn.AvgPool2d(3, stride=1), conv, CubaLIF(NeuronParams()))
    x = torch.zeros(2, 1, 1, 4, 4)
    x[0, 0, 0, 0, 0] = x[0, 0, 0, 1, 1] = x[0, 0, 0, 3, 3] = 1
    x[1] = 1
    layer = profile(model, x, run=_steps).layer("1")
    assert (layer.acs_per_step, layer.input_events) == ([5.0, 25.0], 19.0)
    # NeuroBench's counts see the pooled map as it is: step 1 values 2/9, 1/9, 1/9, 2/9 (not binary:
    # 4 nonzero inputs, fan-outs 2, 1, 1, 1 -> 5 Effective_MACs), step 2 all 1 (5 Effective_ACs)
    assert (layer.effective_macs, layer.effective_acs) == (5.0, 5.0)


def test_overlapping_pooling_equals_a_replay_of_each_spike():
    # an independent count: each spike alone through the pooling and the conv's nonzero pattern,
    # counting the outputs it reaches; a padded 3x3 conv of 2 -> 4 channels, one weight zeroed
    conv = nn.Conv2d(2, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight[1, 0, 1, 1] = 0.0
    pool = nn.AvgPool2d(3, stride=1)
    model = nn.Sequential(pool, conv, CubaLIF(NeuronParams()))
    x = torch.rand(2, 3, 2, 7, 7, generator=torch.Generator().manual_seed(1)).lt(0.3).float()
    layer = profile(model, x, run=_steps).layer("1")
    pattern = (conv.weight != 0).double()
    replayed = 0
    for spike in x.flatten(0, 1).nonzero():
        one = torch.zeros(1, 2, 7, 7, dtype=torch.float64)
        one[0, spike[1], spike[2], spike[3]] = 1
        replayed += int((nn.functional.conv2d(pool(one), pattern, None, 1, 1) != 0).sum())
    assert layer.acs == pytest.approx(replayed / 3, rel=1e-12) and layer.input_events == float(x.sum()) / 3


def test_a_count_beyond_float32_is_exact():
    # Conv1d with a kernel of 4097 ones over 8193 spikes: 4097 outputs, each sums 4097 inputs, so
    # 4097^2 = 16785409 ACs: odd and above 2^24, not a float32 (which would give 16785408)
    conv = nn.Conv1d(1, 1, 4097, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    layer = profile(conv, torch.ones(1, 1, 1, 8193), run=_steps, spiking=True).layer("Conv1d")
    assert layer.acs == 4097 ** 2 == 16785409


def test_the_profiler_leaves_no_mode_behind_even_when_a_neuron_fails():
    # neuron layers run with the interception off (they hold no synapse); it is back on after each,
    # and nothing is left on torch's stack after the profile, nor after a failing forward pass
    model = create_model("convnet", neuron=NeuronParams(threshold=0.05))
    x = torch.rand(2, 3, 1, 28, 28, generator=torch.Generator().manual_seed(0)).lt(0.3).float()
    p = profile(model, x)
    assert min(p.layer(f"blocks.{n}").acs for n in ("block2.0", "head.1", "head.4")) > 0
    assert torch._C._len_torch_function_stack() == 0

    def broken(module, inputs, output):
        raise RuntimeError("neuron failed")

    lif = model.blocks.block2[2]
    handle = lif.register_forward_hook(broken)
    with pytest.raises(ProfileError, match="neuron failed"):
        profile(model, x)
    handle.remove()
    assert torch._C._len_torch_function_stack() == 0
    assert profile(model, x).layers == p.layers


def test_folded_pooling_in_a_zoo_convnet_equals_a_replay_on_spike_counts():
    # independently: record the spikes before each pooling, sum-pool them (spikes per window) and
    # replay the next layer on those counts with 0/1 weights: every output of the replay counts the
    # spike events that reach it
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = create_model("convnet", input_shape=(1, 12, 12), channels=(4, 8), hidden=16,
                         neuron=NeuronParams(threshold=0.2)).eval()
    x = torch.rand(3, 2, 1, 12, 12).lt(0.6).float()
    spikes = {"block1": [], "block2": []}
    hooks = [model.blocks[b][2].register_forward_hook(lambda m, i, o, b=b: spikes[b].append(o)) for b in spikes]
    p = profile(model, x)
    for h in hooks:
        h.remove()
    conv2, fc1 = model.blocks.block2[0], model.blocks.head[1]
    counts = lambda s: F.avg_pool2d(s, 2, divisor_override=1)  # noqa: E731
    conv2_acs = sum(float(F.conv2d(counts(s), (conv2.weight != 0).float(), padding=1).sum()) for s in spikes["block1"])
    fc1_acs = sum(float(F.linear(counts(s).flatten(1), (fc1.weight != 0).float()).sum()) for s in spikes["block2"])
    assert p.layer("blocks.block2.0").acs == pytest.approx(conv2_acs / 2) and conv2_acs > 0
    assert p.layer("blocks.head.1").acs == pytest.approx(fc1_acs / 2) and fc1_acs > 0
    for b in spikes:  # per sample, over the T steps
        assert p.layer(f"blocks.{b}.2").spikes == float(sum(s.sum() for s in spikes[b])) / 2


def test_a_neuron_that_does_not_count_its_steps_is_counted_by_the_profiler():
    # snnpipe neurons count each step's spikes and the profiler takes that count; in RECORD mode
    # (RateBP's pass) they do not, and a count left from an earlier run must not be taken instead
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(1, 4, 4), hidden=[8], neuron=NeuronParams(threshold=0.2)).eval()
    x = torch.rand(3, 2, 1, 4, 4).lt(0.6).float()
    expected = profile(model, x).layer("blocks.hidden1.2").spikes
    with torch.no_grad():
        model(torch.ones(3, 2, 1, 4, 4))  # leaves the count of another input's last step
    for neuron in model.neurons():
        neuron.mode = ExecutionMode.RECORD
    assert profile(model, x).layer("blocks.hidden1.2").spikes == expected > 0


# --- golden numbers ---------------------------------------------------------------------------------

def test_golden_resnet18_first_layer_macs_at_t2():
    torch.manual_seed(0)
    model = create_model("resnet18")  # 3x32x32
    x = torch.randn(1, 3, 32, 32).expand(2, 1, 3, 32, 32)  # direct encoding: the same image, T = 2
    p = profile(model, x)
    stem = p.layer("blocks.stem.0")
    assert stem.macs == 3 * 64 * 9 * 1024 * 2 == 3_538_944  # SPEC §5: 3x64x9 x 32x32 x T
    assert stem.macs_per_step == [1_769_472.0, 1_769_472.0] and stem.acs == 0
    assert p.layer("blocks.layer1.0.conv1").macs == 0 and p.layer("blocks.layer1.0.conv1").acs > 0


def test_a_static_input_is_counted_at_every_timestep():
    # the zoo runs its stem once for a stride-0 (direct) input; the counts equal T separate runs
    torch.manual_seed(0)
    model = create_model("convnet", input_shape=(1, 12, 12), channels=(4, 8), hidden=16)
    x = torch.rand(1, 3, 1, 12, 12).mul(3).expand(4, 3, 1, 12, 12)
    static, stepped = profile(model, x), profile(model, x.contiguous())
    for a, b in zip(static.layers, stepped.layers):
        assert a == b


# --- NeuroBench on three zoo models ------------------------------------------------------------------

def _neurobench(model, x):
    """NeuroBench 2.x's own metrics (its hooks, its binarized replay), on (B, T, ...) data."""
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models.torch_model import TorchModel

    class ZooModel(TorchModel):
        def __call__(self, batch):
            return self.net(batch.transpose(0, 1)).mean(0)

    wrapped = ZooModel(model)
    wrapped.add_activation_module(CubaLIF)
    wrapped.register_hooks()
    data = (x.transpose(0, 1), torch.zeros(x.shape[1]))
    with torch.no_grad():
        preds = wrapped(data[0])
    ops = SynapticOperations()(wrapped, preds, data)
    sparsity = ActivationSparsity()(wrapped, preds, data)
    wrapped.cleanup_hooks()
    return ops, sparsity


@pytest.mark.parametrize("name,kwargs,shape", [
    ("mlp", {"hidden": (32, 16)}, (1, 8, 8)),
    ("convnet", {"channels": (4, 8), "hidden": 16}, (1, 16, 16)),
    ("vgg11", {"width": 0.0625}, (3, 32, 32)),
])
def test_counts_equal_neurobench_on_zoo_models(name, kwargs, shape):
    torch.manual_seed(0)
    model = create_model(name, input_shape=shape, **kwargs).eval()
    with torch.no_grad():  # exact zero weights, so that fan-out is not just the kernel size
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight[m.weight.abs() < 0.3 * m.weight.abs().mean()] = 0
    # the first half of the batch direct-coded (analog, MACs at the first layer), the second rate-coded
    analog = torch.rand(1, 2, *shape).mul(4).expand(3, 2, *shape)
    spikes = torch.rand(3, 2, *shape).lt(0.5).float()
    for x, kind in ((analog.contiguous(), "Effective_MACs"), (spikes, "Effective_ACs")):
        ours = profile(model, x).totals
        theirs, sparsity = _neurobench(model, x)
        assert ours.effective_acs == pytest.approx(theirs["Effective_ACs"], rel=1e-6)
        assert ours.effective_macs == pytest.approx(theirs["Effective_MACs"], rel=1e-6)
        assert ours.dense == pytest.approx(theirs["Dense"], rel=1e-6)
        assert ours.activation_sparsity == pytest.approx(sparsity, rel=1e-9)
        assert theirs[kind] > 0 and 0 < sparsity < 1  # the comparison is not between zeros


# --- any model: a user's own snnTorch loop ------------------------------------------------------------

def test_a_users_own_snntorch_model_with_its_own_loop():
    snn = pytest.importorskip("snntorch")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = nn.Linear(4, 3, bias=False), snn.Leaky(beta=0.5, reset_mechanism="zero")
            self.fc2, self.lif2 = nn.Linear(3, 2, bias=False), snn.Synaptic(alpha=0.5, beta=0.5, reset_mechanism="zero")

    net = Net()
    with torch.no_grad():
        net.fc1.weight.fill_(0.6)  # every input reaches 3 hidden neurons
        net.fc2.weight.fill_(1.0)  # every hidden neuron reaches 2 outputs

    def loop(model, x):  # the user's own time loop, state reset per batch
        mem1 = model.lif1.init_leaky()
        syn2, mem2 = model.lif2.init_synaptic()
        out = []
        for x_t in x:
            spk1, mem1 = model.lif1(model.fc1(x_t), mem1)
            spk2, syn2, mem2 = model.lif2(model.fc2(spk1), syn2, mem2)
            out.append(spk2)
        return torch.stack(out).sum(0)

    x = torch.tensor([[[1.0, 1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]])
    p = profile(net, [(x, torch.tensor([1]))], timesteps=3, run=loop)
    # fc1 currents 1.2, 0.6, 0 -> lif1 membrane 1.2 (spike, reset), 0.6, 0.3: 3 spikes, all at t1
    # fc1 ACs = (2 + 1 + 0) input spikes x 3 = 9; fc2 ACs = 3 spikes x 2 = 6
    assert p.layer("fc1").acs_per_step == [6.0, 3.0, 0.0] and p.layer("fc2").acs == 6
    assert p.layer("lif1").spikes == 3 and p.layer("lif1").rate_per_step == [1.0, 0.0, 0.0]
    assert (p.layer("lif1").state_size, p.layer("lif2").state_size) == (3, 4)  # mem; syn and mem
    # both outputs see the same input (fc2 weights all 1): equal sums, argmax picks class 0, not the label 1
    assert p.spiking and p.samples == 1 and p.accuracy == 0.0
    assert profile(net, [(x, torch.tensor([0]))], timesteps=3, run=loop).accuracy == 1.0

    def twice(model, x):  # breaks the contract: lif1 runs twice per step
        mem = model.lif1.init_leaky()
        for x_t in x:
            _, mem = model.lif1(model.fc1(x_t), mem)
            _, mem = model.lif1(model.fc1(x_t), mem)
        return torch.zeros(x.shape[1], 2)

    with pytest.raises(ProfileError, match="one call per timestep"):
        profile(net, x, run=twice)


# --- the command: reports, gate, bad input -------------------------------------------------------------

@pytest.fixture
def digits_ckpt(tmp_path):
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:200], data.train_y[:200], data.test_x[:100], data.test_y[:100])
    config = TrainConfig(model="mlp", model_args={"hidden": (32,)}, epochs=2, timesteps=3, out=str(tmp_path / "run"), seed=0)
    return train(config, dataset=small, progress=False)


def test_profile_command_writes_the_reports_and_the_ann_twin(tmp_path, digits_ckpt, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["profile", str(digits_ckpt.path), "--samples", "100", "--json"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "reports" / "run"  # the default: reports/<run name>/
    p = Profile.from_dict(json.loads((out / "profile.json").read_text()))
    assert p.schema == "snnpipe.profile/2" and (p.samples, p.timesteps, p.spiking) == (100, 3, True)
    assert Profile.from_dict(p.to_dict()) == p
    # the SNN's first layer reads analog input at every step: 64 x 32 x T=3 MACs; the twin's layers
    # are all dense MACs, once: 64 x 32 + 32 x 10
    assert p.totals.macs == 64 * 32 * 3 and p.ann.totals.macs == 64 * 32 + 32 * 10
    assert p.comparison["ann_over_snn_compute_energy_uj"] == pytest.approx(
        p.ann.totals.compute_energy_uj / p.totals.compute_energy_uj)
    assert json.loads(result.output)["firing_rate"] == p.totals.firing_rate
    assert "| hidden1.2 | CubaLIF | 32 | 64 |" in (out / "profile.md").read_text()
    assert (out / "profile.png").read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in (out / "profile.html").read_text()
    again = CliRunner().invoke(cli, ["profile", str(digits_ckpt.path), "--samples", "10"])
    assert again.exit_code == 2 and "--force" in again.output
    forced = CliRunner().invoke(cli, ["profile", str(digits_ckpt.path), "--samples", "10", "--force", "--quiet"])
    assert forced.exit_code == 0 and forced.output == ""


def test_gate_fails_for_more_activity_and_passes_for_the_same_model(tmp_path, digits_ckpt):
    base = tmp_path / "baseline.json"
    args = ["profile", str(digits_ckpt.path), "--samples", "100", "--baseline", str(base), "--quiet"]
    written = CliRunner().invoke(cli, [*args, "--update-baseline", "--out", str(tmp_path / "a")])
    assert written.exit_code == 0 and base.exists(), written.output
    same = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b"), "--max-increase", "5%"])
    assert same.exit_code == 0 and same.output == "", same.output
    hot = Checkpoint.load(digits_ckpt.path)
    hot.neuron = replace(hot.neuron, threshold=hot.neuron.threshold * 0.5)  # the same weights fire more
    hot.save(tmp_path / "hot.pt")
    result = CliRunner().invoke(cli, ["profile", str(tmp_path / "hot.pt"), "--samples", "100", "--baseline", str(base),
                                      "--out", str(tmp_path / "c"), "--quiet", "--max-increase", "0.05"])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "mean" in result.output and "hidden1.2" in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: firing rate rose by more than 5.0%")
    assert "Traceback" not in result.output


def test_update_baseline_replaces_a_baseline_and_nothing_else(tmp_path, digits_ckpt):
    # `--baseline notes.md --update-baseline` wrote the profile over the user's notes, exit 0
    notes, base = tmp_path / "notes.md", tmp_path / "baseline.json"
    notes.write_text("# my notes\n")
    args = ["profile", str(digits_ckpt.path), "--samples", "20", "--update-baseline", "--quiet"]
    refused = CliRunner().invoke(cli, [*args, "--baseline", str(notes), "--out", str(tmp_path / "a")])
    assert refused.exit_code == 2 and refused.output.count("\n") == 1, refused.output
    assert refused.output.startswith(f"Error: --update-baseline replaces a profile baseline; {notes} is none (")
    assert notes.read_text() == "# my notes\n" and not (tmp_path / "a").exists()
    for out in ("b", "c"):  # a new baseline, then that baseline replaced
        assert CliRunner().invoke(cli, [*args, "--baseline", str(base), "--out", str(tmp_path / out)]).exit_code == 0
    assert json.loads(base.read_text())["samples"] == 20


def test_gate_arithmetic():
    p = Profile.from_dict(json.loads(json.dumps(_tiny_profile().to_dict())))
    assert firing_rate_gate(p, p, 0.0).passed
    rate = p.layer("1").firing_rate
    hotter = replace(p, layers=[p.layers[0], replace(p.layer("1"), firing_rate=rate * 1.06)],
                     totals=replace(p.totals, firing_rate=p.totals.firing_rate * 1.04))
    verdict = firing_rate_gate(hotter, p, 0.05)  # the mean rose 4%, the layer 6%: fail
    assert not verdict.passed and [round(c, 6) for *_, c in verdict.rows] == [0.04, 0.06]
    assert firing_rate_gate(hotter, p, 0.07).passed
    assert parse_fraction("5%") == parse_fraction("0.05") == 0.05


def _tiny_profile() -> Profile:
    model = nn.Sequential(nn.Linear(2, 3), CubaLIF(NeuronParams(threshold=0.1)))
    torch.manual_seed(0)
    return profile(model, torch.rand(3, 4, 2), run=_steps)


def _write_cifar10(parent):
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": np.zeros((4, 3072), np.uint8) + np.arange(4, dtype=np.uint8)[:, None],
                         b"labels": [0, 1, 2, 3]}, handle)
    return parent


def test_bad_input_is_one_line_and_exit_2(tmp_path, digits_ckpt):
    wrong = Checkpoint.load(digits_ckpt.path)
    wrong.model_args = {"hidden": (64,)}  # the weights are of another model
    wrong.save(tmp_path / "wrong.pt")
    syntax = tmp_path / "syntax.toml"
    syntax.write_text('name = "x"\nac_pj = \n')
    value = tmp_path / "value.yaml"
    value.write_text("name: x\nac_pj: -1.0\nmac_pj: 1.0\n")
    cifar = _write_cifar10(tmp_path / "cifar")
    cases = {
        "another model": ["profile", str(tmp_path / "wrong.pt")],
        "data of the wrong shape": ["profile", str(digits_ckpt.path), "--dataset", "cifar10", "--data-dir", str(cifar)],
        "unknown target": ["profile", str(digits_ckpt.path), "--target", "tpu"],
        "malformed target file": ["profile", str(digits_ckpt.path), "--target-file", str(syntax)],
        "bad constant": ["profile", str(digits_ckpt.path), "--target-file", str(value)],
        "bad tolerance": ["profile", str(digits_ckpt.path), "--max-increase", "lots"],
        "missing baseline": ["profile", str(digits_ckpt.path), "--baseline", str(tmp_path / "none.json")],
    }
    for case, args in cases.items():
        result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / case), "--samples", "5"])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), (case, result.output)
    assert "3x32x32" in CliRunner().invoke(cli, [*cases["data of the wrong shape"], "--out", str(tmp_path / "x")]).output


@pytest.mark.parametrize("args,message", [
    # each was ignored: the profile priced under ops on cmos45nm, or gated nothing, exit 0
    (["--chip", "loihi"], "--chip and --chip-file choose the chip of --energy-model chip; this profile prices under "
                          "'ops': add --energy-model chip, or leave them out"),
    (["--energy-model", "memory", "--chip", "loihi"], "this profile prices under 'memory'"),
    (["--max-increase", "10%"], "--max-increase is the tolerance of the gate against --baseline FILE: give one"),
])
def test_an_option_the_profile_would_ignore_is_refused(tmp_path, digits_ckpt, args, message):
    result = CliRunner().invoke(cli, ["profile", str(digits_ckpt.path), "--samples", "5", "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2 and result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert message in result.output and not (tmp_path / "r").exists()


def test_bad_data_from_python_is_a_profile_error(digits_ckpt):
    with pytest.raises(ProfileError, match="does not fit mlp"):
        profile(digits_ckpt, [(torch.zeros(3, 2, 1, 28, 28), torch.zeros(2))])
    with pytest.raises(ProfileError, match="cannot run on a batch of shape"):
        profile(digits_ckpt.build_model(), torch.zeros(3, 2, 1, 28, 28))
    with pytest.raises(ProfileError, match="not \\(T=3, B"):
        profile(digits_ckpt.build_model(), [torch.zeros(3, 2, 1, 8, 8), torch.zeros(4, 2, 1, 8, 8)])
    with pytest.raises(ProfileError, match="needs data"):
        profile(digits_ckpt.build_model())


def test_value_tests_see_every_value_past_the_first_ones():
    from snnpipe.pipeline.profile.counting import is_binary, is_zero_one

    spikes = torch.zeros(2, 5000)
    spikes[0, ::3] = 1
    late = spikes.clone()
    late[1, 4999] = 0.5  # past the first 4096 values, which decide alone only when they fail
    assert is_zero_one(spikes) and not is_zero_one(late) and not is_zero_one(torch.full((3,), float("nan")))
    assert is_zero_one(spikes.bool()) and is_zero_one(spikes.to(torch.uint8))
    assert not is_zero_one(torch.tensor([0, 2], dtype=torch.uint8))  # 2 - 4 wraps to 254, not 0
    signed = spikes.clone()
    signed[1, ::7] = -1
    assert bool(is_binary(signed)) and not bool(is_binary(late)) and not bool(is_binary(signed * 0.5))


def test_a_bfloat16_network_counts_past_its_precision():
    # 601 samples, each one spike in the top-left pixel of a 2x2 window: pooled 0.25 everywhere, one
    # nonzero input of fan-out 1 per sample. bfloat16 holds integers exactly only to 256: 601 would
    # round to 600 or 602, and the counts per inference would not be 1
    fc = nn.Linear(1, 1, bias=False).to(torch.bfloat16)
    nn.init.constant_(fc.weight, 1.0)
    spikes = torch.zeros(1, 601, 1, 2, 2, dtype=torch.bfloat16)
    spikes[..., 0, 0] = 1
    p = profile(nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), fc), spikes, run=_steps, spiking=True)
    layer = p.layer("2")
    assert (layer.acs, layer.effective_macs, layer.input_events) == (1.0, 1.0, 1.0)
