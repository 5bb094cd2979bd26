"""Constructs of a user's own time loop that the profiler once miscounted without a word: each is
counted right (numbers by hand, or the same model written the way that was always counted right)
or refused with one `ProfileError` line that names the layer."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnpipe.models.neurons import CubaLIF, NeuronParams
from snnpipe.pipeline.profile import ProfileError, profile_module

snn = pytest.importorskip("snntorch")


def _leaky(**kw):
    return snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", **kw)


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --- 1. a readout applied once after the time loop ---------------------------------------------------

class _Readout(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif, self.out = nn.Linear(2, 2, bias=False), _leaky(), nn.Linear(2, 3, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(2 * torch.eye(2))
            self.out.weight.fill_(1.0)


def test_a_readout_after_the_time_loop_is_counted_once():
    def rate_readout(net, x):
        mem, total = net.lif.init_leaky(), 0
        for x_t in x:
            spk, mem = net.lif(net.fc(x_t), mem)
            total = total + spk
        return net.out(total / len(x))  # once, on the firing rate

    x = torch.tensor([[[1.0, 1.0]], [[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]]])  # (T=4, B=1, 2)
    p = profile_module(_Readout(), x, run=rate_readout)
    # the rates (3/4... not 0/1) are analog: 3 outputs x fan-in 2 = 6 MACs, once per inference (not x T = 24),
    # at the last step
    assert p.layer("out").macs_per_step == [0.0, 0.0, 0.0, 6.0] and p.layer("out").acs == 0
    # fc reads the input spikes at every step: (2 + 1 + 0 + 1) spikes x fan-out 1
    assert p.layer("fc").acs_per_step == [2.0, 1.0, 0.0, 1.0]

    def in_the_middle(net, x):  # once, between the steps of the loop: neither a static input nor a readout
        mem = net.lif.init_leaky()
        for t, x_t in enumerate(x):
            spk, mem = net.lif(net.fc(x_t), mem)
            if t == 1:
                net.out(spk)
        return torch.zeros(x.shape[1], 3)

    with pytest.raises(ProfileError, match="layer out ran 1 times") as err:
        profile_module(_Readout(), x, run=in_the_middle)
    assert "readout after it" in _one_line(err)


# --- 2. one call on the whole (T, B, F) sequence when T == B -------------------------------------------

class _Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(2, 3, bias=False), CubaLIF(NeuronParams(threshold=0.1))
        with torch.no_grad():  # input 0 reaches outputs 0 and 1, input 1 reaches 1 and 2: fan-out 2 each
            self.fc.weight.copy_(torch.tensor([[0.5, 0.0], [0.2, -0.3], [0.0, 0.7]]))


def test_one_call_on_the_whole_sequence_is_split_into_its_steps_even_when_t_equals_b():
    def whole(net, x):
        currents = net.fc(x)  # (T, B, 3) at once
        return torch.stack([net.lif(c) for c in currents]).mean(0)

    def flat(net, x):
        currents = net.fc(x.flatten(0, 1)).unflatten(0, x.shape[:2])  # (T*B, 2) at once, time-major
        return torch.stack([net.lif(c) for c in currents]).mean(0)

    def halves(net, x):  # the sequence in two parts of one step each: (1, B, 2), (1, B, 2)
        currents = torch.cat([net.fc(x[:1]), net.fc(x[1:])])
        return torch.stack([net.lif(c) for c in currents]).mean(0)

    def stepwise(net, x):
        return torch.stack([net.lif(net.fc(x_t)) for x_t in x]).mean(0)

    x = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [1.0, 0.0]]])  # (T=2, B=2, 2)
    # per sample: t1 spikes 1 + 2 = 3 x fan-out 2 / B = 3 ACs; t2 1 spike x 2 / 2 = 1 (not x T: 8)
    for run in (whole, flat, halves, stepwise):
        fc = profile_module(_Sequence(), x, run=run).layer("fc")
        assert (fc.acs_per_step, fc.macs) == ([3.0, 1.0], 0.0), run.__name__


# --- 3. a B = 1 loop that drops the batch axis ---------------------------------------------------------

class _ConvPool(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.lif = nn.Conv2d(1, 2, 3, padding=1, bias=False), _leaky(init_hidden=True)
        self.pool, self.fc = nn.AvgPool2d(2), nn.Linear(2 * 2 * 2, 3, bias=False)
        with torch.no_grad():
            self.conv.weight.mul_(4)


def test_a_loop_without_the_batch_axis_counts_as_the_batched_loop():
    from snntorch.utils import reset

    def unbatched(net, x):  # x (T, 1, 1, 4, 4): every step (1, 4, 4), no batch axis
        reset(net)
        return torch.stack([net.fc(net.pool(net.lif(net.conv(x_t))).flatten()) for x_t in x[:, 0]]).mean(0, keepdim=True)

    def batched(net, x):
        reset(net)
        return torch.stack([net.fc(net.pool(net.lif(net.conv(x_t))).flatten(1)) for x_t in x]).mean(0)

    x = torch.rand(6, 1, 1, 4, 4, generator=torch.Generator().manual_seed(1)).lt(0.5).float()
    net = _ConvPool()
    got, expected = profile_module(net, x, run=unbatched), profile_module(net, x, run=batched)
    lif = got.layer("lif")
    assert lif.neurons == 2 * 4 * 4 and lif.spikes > 0 and all(r <= 1 for r in lif.rate_per_step)  # C x H x W
    assert got.layer("fc").acs > 0 and got.layer("fc").macs == 0  # the pooling of spikes still folds
    assert got.layers == expected.layers and got.totals == expected.totals
    # data movement: T x 2 x 32 neurons x 32 bit + 1 bit per spike
    assert got.totals.movement_bits == 6 * 2 * 32 * 32 + lif.spikes


# --- 4. functional average pooling ---------------------------------------------------------------------

@pytest.mark.parametrize("pool", [lambda s: F.avg_pool2d(s, 2), lambda s: F.adaptive_avg_pool2d(s, (2, 2)),
                                  nn.AvgPool2d(2)])
def test_functional_average_pooling_of_spikes_folds_like_the_module(pool):
    # the numbers of test_average_pooling_of_spikes_folds_into_the_next_layer: 2x2 pooling of a 4x4
    # spike map, windows holding 3, 1, 2, 4 spikes; Linear(4 -> 2) fan-outs 2, 1, 1, 0:
    # ACs = 3*2 + 1*1 + 2*1 + 4*0 = 9; NeuroBench sees 0.75, 0.25, 0.5, 1: 2 + 1 + 1 + 0 = 4 Effective_MACs
    fc = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 0, 1, 0], [1, 1, 0, 0]]))
    spikes = torch.tensor([[1.0, 1, 0, 1], [0, 1, 0, 0], [1, 0, 1, 1], [0, 1, 1, 1]]).reshape(1, 1, 1, 4, 4)
    p = profile_module(fc, spikes, run=lambda m, x: torch.stack([m(pool(x_t).flatten(1)) for x_t in x]).mean(0),
                       spiking=True)
    layer = p.layer("Linear")
    assert (layer.acs, layer.macs, layer.effective_macs, layer.effective_acs) == (9.0, 0.0, 4.0, 0.0)


# --- 5. spikes scaled in place --------------------------------------------------------------------------

class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.lif, self.fc2 = nn.Linear(2, 2, bias=False), _leaky(), nn.Linear(2, 3, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(2 * torch.eye(2))
            self.fc2.weight.fill_(1.0)


@pytest.mark.parametrize("scale", [None, 0.5])
def test_spikes_scaled_in_place_are_no_longer_spikes(scale):
    def run(net, x):
        mem, out = net.lif.init_leaky(), []
        for x_t in x:
            spk, mem = net.lif(net.fc1(x_t), mem)
            if scale is not None:
                spk.mul_(scale)
            out.append(net.fc2(spk))
        return torch.stack(out).mean(0)

    # currents t1 [2, 2], t2 [2, 0] -> spikes [1, 1], [1, 0] (the membrane resets to 0 after a spike)
    x = torch.tensor([[[1.0, 1.0]], [[1.0, 0.0]]])
    fc2 = profile_module(_Scaled(), x, run=run).layer("fc2")
    if scale is None:  # 3 spikes x fan-out 3
        assert (fc2.acs_per_step, fc2.macs) == ([6.0, 3.0], 0.0)
    else:  # values 0.5 are graded: 3 outputs x fan-in 2 = 6 MACs a step; NeuroBench: 2 x 3 + 1 x 3 nonzero
        assert (fc2.acs, fc2.macs_per_step, fc2.effective_macs) == (0.0, [6.0, 6.0], 9.0)


# --- 6. layers beyond Linear and Conv, modules and functions ---------------------------------------------

def _steps(model, x):
    return torch.stack([model(x_t) for x_t in x]).flatten(2).mean(0)


def test_transposed_and_1d_convolutions_by_hand():
    up = nn.ConvTranspose2d(1, 1, 2, bias=False)
    nn.init.constant_(up.weight, 1.0)
    # 2x2 -> 3x3: every input pixel reaches 4 outputs; 4 spikes x 4 = 16 ACs. Analog input: every
    # input element meets the whole kernel, 4 x 4 = 16 MACs
    layer = profile_module(up, torch.ones(1, 1, 1, 2, 2), run=_steps, spiking=True).layer("ConvTranspose2d")
    assert (layer.acs, layer.dense, layer.module) == (16.0, 16.0, "ConvTranspose2d")
    assert profile_module(up, torch.full((1, 1, 1, 2, 2), 0.5), run=_steps, spiking=True).layer("ConvTranspose2d").macs == 16.0
    with torch.no_grad():
        up.weight[0, 0, 0, 0] = 0  # every pixel loses one output: 4 x 3 = 12
    assert profile_module(up, torch.ones(1, 1, 1, 2, 2), run=_steps, spiking=True).layer("ConvTranspose2d").acs == 12.0
    conv1d = nn.Conv1d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv1d.weight, 1.0)
    # length 4, padded kernel 3: the ends reach 2 outputs, the middle 3: 2 + 3 + 3 + 2 = 10; analog 4 x 3 = 12
    assert profile_module(conv1d, torch.ones(1, 1, 1, 4), run=_steps, spiking=True).layer("Conv1d").acs == 10.0
    assert profile_module(conv1d, torch.full((1, 1, 1, 4), 0.5), run=_steps, spiking=True).layer("Conv1d").macs == 12.0


class _Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[0.5, 0.0], [0.2, -0.3], [0.0, 0.7]]))  # fan-out 2, 2
        self.kernel = nn.Parameter(torch.ones(1, 1, 3, 3))

    def forward(self, x):
        return F.linear(x, self.w)


def test_functional_linear_and_conv_are_counted_under_their_weights_name():
    net = _Functional()
    spikes = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])  # t1: 1 spike x 2; t2: 2 spikes x 2
    layer = profile_module(net, spikes, run=_steps, spiking=True).layer("w")
    assert (layer.module, layer.acs_per_step) == ("F.linear", [2.0, 4.0])
    # a padded 3x3 kernel of ones on a 3x3 map of ones: 4 corners x 4 + 4 edges x 6 + 9 = 49
    conv = profile_module(net, torch.ones(1, 1, 1, 3, 3), run=lambda m, x: _steps(
        lambda s: F.conv2d(s, m.kernel, padding=1), x), spiking=True).layer("kernel")
    assert (conv.module, conv.acs) == ("F.conv2d", 49.0)
    # a weight computed in the loop is named after the module that computes it
    masked = profile_module(net, spikes, run=lambda m, x: _steps(lambda s: F.linear(s, m.w * (m.w > 0)), x),
                            spiking=True).layer("_Functional.linear")
    # without the negative weight input 1 reaches output 2 alone: t1 1 spike x 2, t2 2 + 1
    assert masked.acs_per_step == [2.0, 3.0]


class _Gain(nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(2, 3))

    def forward(self, x):
        return x * self.gain


@pytest.mark.parametrize("model,run,message", [
    (_Functional(), lambda m, x: _steps(lambda s: s @ m.w.t(), x),
     "_Functional calls matmul on the weight w, which the profiler does not count"),
    (nn.LSTM(2, 3), lambda m, x: m(x)[0].mean(0), "LSTM calls lstm on the weight weight_ih_l0"),
    (nn.Sequential(nn.Linear(2, 3), nn.Embedding(4, 3)), lambda m, x: m[1](torch.zeros(x.shape[1], dtype=torch.long)),
     "1 calls embedding on the weight 1.weight"),
    (nn.Sequential(nn.Linear(2, 3), _Gain()), _steps, "layer 1 (_Gain) has weights (gain) that the profiler does not count"),
])
def test_weights_the_profiler_does_not_count_are_one_error(model, run, message):
    with pytest.raises(ProfileError) as err:
        profile_module(model, torch.ones(2, 2, 2), run=run)
    assert _one_line(err).startswith(message)


class _TwoPools(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 2, 3, padding=1)
        self.l1, self.l2 = CubaLIF(NeuronParams(threshold=0.1)), CubaLIF(NeuronParams(threshold=0.1))
        self.f1, self.f2 = nn.Linear(2 * 4 * 4, 3), nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):  # both poolings run before either result is read
        a, b = F.avg_pool2d(self.l1(self.c1(x)), 2), F.avg_pool2d(self.l2(self.c2(x)), 2)
        return self.f1(a.flatten(1)) + self.f2(b.flatten(1))


def test_two_functional_poolings_in_one_forward_pass_both_fold():
    # oracle: the recorded spikes, sum-pooled (spikes per window), through 0/1 weights
    torch.manual_seed(0)
    net, spikes = _TwoPools(), {"l1": [], "l2": []}
    hooks = [getattr(net, n).register_forward_hook(lambda m, i, o, n=n: spikes[n].append(o)) for n in spikes]
    x = torch.rand(3, 2, 1, 8, 8).lt(0.5).float()
    p = profile_module(net, x, run=lambda m, x: torch.stack([m(x_t) for x_t in x]).mean(0))
    for h in hooks:
        h.remove()
    for fc, lif in (("f1", "l1"), ("f2", "l2")):
        weight = (getattr(net, fc).weight != 0).float()
        events = sum(float(F.linear(F.avg_pool2d(s, 2, divisor_override=1).flatten(1), weight).sum()) for s in spikes[lif])
        assert p.layer(fc).acs == pytest.approx(events / 2) and events > 0 and p.layer(fc).macs == 0


# --- 7. weight normalization: a weight computed from parameters before each call ------------------------

@pytest.mark.parametrize("weight_norm", [nn.utils.parametrizations.weight_norm, nn.utils.weight_norm,
                                         nn.utils.parametrizations.spectral_norm, nn.utils.spectral_norm])
def test_a_weight_normalized_layer_counts_as_the_plain_layer_of_its_effective_weight(weight_norm):
    linear = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))  # fan-out 1, 0, 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the old nn.utils.weight_norm is deprecated
        normalized = nn.Sequential(weight_norm(linear))
    spikes = torch.tensor([[[1.0, 1.0, 0.0]], [[1.0, 1.0, 1.0]]])  # t1: 1 + 0; t2: 1 + 0 + 2
    layer = profile_module(normalized, spikes, run=_steps, spiking=True).layer("0")
    assert layer.acs_per_step == [1.0, 3.0] and layer.macs == 0
    assert profile_module(normalized, spikes / 2, run=_steps, spiking=True).layer("0").macs == 12.0  # 2 x 3 x 2
    # a conv the same: its counts equal those of a plain conv holding g v / |v|
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight[0, 0, 1] = 0
    plain = nn.Conv2d(1, 2, 3, padding=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        conv = nn.Sequential(weight_norm(conv))
    x = torch.rand(3, 2, 1, 5, 5).lt(0.4).float()
    with torch.no_grad():
        conv.eval()(x[0])  # the old spectral_norm holds its W / sigma only after a forward (eval: as profiled)
        plain.load_state_dict({"weight": conv[0].weight, "bias": conv[0].bias})
    plain = nn.Sequential(plain)
    got = vars(profile_module(conv, x, run=_steps, spiking=True).layer("0"))
    expected = vars(profile_module(plain, x, run=_steps, spiking=True).layer("0"))
    assert got.pop("module") in ("Conv2d", "ParametrizedConv2d") and expected.pop("module") == "Conv2d"
    assert got == expected and expected["acs"] > 0


class _NormalizedMatmul(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3, 2))

    def forward(self, x):
        return x @ self.w.t()


def test_a_parametrized_weight_used_outside_a_counted_op_is_refused():
    net = nn.utils.parametrizations.weight_norm(_NormalizedMatmul(), "w")
    with pytest.raises(ProfileError) as err:
        profile_module(net, torch.ones(2, 2, 2), run=_steps)
    assert _one_line(err).startswith("layer Parametrized_NormalizedMatmul (Parametrized_NormalizedMatmul) has weights (w) "
                                     "that the profiler does not count")


# --- per-sample value test: counts do not depend on which samples share a batch ------------------------

class _SpikeSum(nn.Module):
    """Two spiking layers of the same input (fc1 passes it, fc2 swaps its two elements; a Leaky with
    beta 0 spikes where its input is above 0.5), and a readout of their sum s1 + s2 (0, 1 or 2)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)
        self.out = nn.Linear(2, 3, bias=False)
        self.lif1, self.lif2 = (snn.Leaky(beta=0.0, threshold=0.5, reset_mechanism="zero") for _ in range(2))
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(2))
            self.fc2.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
            self.out.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]]))  # fan-out 3 and 1


def _sum_loop(net, x):
    m1, m2, outs = net.lif1.init_leaky(), net.lif2.init_leaky(), []
    for x_t in x:
        s1, m1 = net.lif1(net.fc1(x_t), m1)
        s2, m2 = net.lif2(net.fc2(x_t), m2)
        outs.append(net.out(s1 + s2))
    return torch.stack(outs).mean(0)


def _per_inference(p):
    return {layer.name: (layer.acs, layer.macs, layer.input_events) for layer in p.synapses}


def test_a_sum_of_spikes_is_counted_per_sample_the_same_batched_or_alone():
    # sample A: [1, 1] then [1, 0]; sample B: [1, 0] then [0, 0] (T = 2). out reads s1 + s2 = x + swap(x):
    #   A: [2, 2] -> 2 + 2 events, 2 x 3 + 2 x 1 = 8 ACs; [1, 1] -> 2 events, 3 + 1 = 4 ACs
    #   B: [1, 1] -> 2 events, 4 ACs;                     [0, 0] -> nothing
    # a 2 is two spike events (as a 2 of Sinabs' spike counts is), not a reason to price the step as MACs:
    # per inference (8 + 4 + 4 + 0) / 2 = 8 ACs, (4 + 2 + 2) / 2 = 4 events, 0 MACs
    x = torch.tensor([[[1.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]])  # (T=2, B=2, 2)
    batched = profile_module(_SpikeSum(), x, run=_sum_loop)
    assert _per_inference(batched)["out"] == (8.0, 0.0, 4.0)
    alone = [_per_inference(profile_module(_SpikeSum(), x[:, i:i + 1], run=_sum_loop)) for i in range(2)]
    assert alone[0]["out"] == (12.0, 0.0, 6.0) and alone[1]["out"] == (4.0, 0.0, 2.0)
    for name, counts in _per_inference(batched).items():
        assert counts == tuple((a + b) / 2 for a, b in zip(alone[0][name], alone[1][name])), name


class _Direct(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3, bias=False)
        self.lif = snn.Leaky(beta=0.0, threshold=0.5, reset_mechanism="zero")
        with torch.no_grad():
            self.fc.weight.fill_(1.0)


def _direct_loop(net, x):
    mem, outs = net.lif.init_leaky(), []
    for x_t in x:
        spk, mem = net.lif(net.fc(x_t), mem)
        outs.append(spk)
    return torch.stack(outs).mean(0)


def test_the_network_input_is_spikes_or_graded_per_sample():
    # sample A analog [0.5, 1.0]: 3 outputs x fan-in 2 = 6 MACs a step; sample B spikes [1, 0]: one
    # spike x fan-out 3 = 3 ACs a step (T = 2); raw integers are not spike counts: C's [2, 0] is graded
    x = torch.tensor([[0.5, 1.0], [1.0, 0.0], [2.0, 0.0]]).expand(2, 3, 2)
    fc = profile_module(_Direct(), x, run=_direct_loop).layer("fc")
    assert (fc.acs, fc.macs, fc.input_events) == (3 * 2 / 3, 2 * 6 * 2 / 3, 2 / 3)
    alone = [profile_module(_Direct(), x[:, i:i + 1], run=_direct_loop).layer("fc") for i in range(3)]
    assert [(a.acs, a.macs) for a in alone] == [(0.0, 12.0), (6.0, 0.0), (0.0, 12.0)]
