"""Profiling models of the other frameworks: SpikingJelly (single- and multi-step), Norse (cells and
sequences), Sinabs (squeezed and (B, T, ...) layers, integer spike counts).

Oracles: the snnTorch twin of the same weights through the project's own counter (SpikingJelly's LIF
with ``decay_input=False`` and hard reset is snnTorch's ``Leaky(beta=0.5, reset_mechanism="zero")``),
a replay of every synaptic layer on the inputs it really received with 0/1 weights (sum of the
outputs = spike events x fan-out), and arithmetic by hand.

SpikingJelly and Norse are installed with ``pip install --no-deps`` (their requirement on torchvision
would replace torch 2.13 with a CUDA build); Sinabs 2.0.3 installs with its dependencies.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnpipe.pipeline.profile import ProfileError, profile_module


def _prune(net: nn.Module, scale: float) -> None:
    """Larger weights (so that every layer spikes) and exact zeros (so that fan-out is not the kernel size)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(scale)
                m.weight[m.weight.abs() < 0.3 * m.weight.abs().mean()] = 0


class _Replay:
    """Independent oracle: records what every Linear / Conv2d received and every neuron layer emitted,
    then counts ACs as ``sum(op(x, W != 0))`` on the recorded 0/1 inputs, per sample."""

    def __init__(self, net: nn.Module, neuron_types: tuple[type, ...]):
        self.inputs, self.spikes, self.handles = {}, {}, []
        for name, m in net.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                self.handles.append(m.register_forward_hook(
                    lambda m, i, o, n=name: self.inputs.setdefault(n, []).append((m, i[0].clone()))))
            elif isinstance(m, neuron_types):
                self.handles.append(m.register_forward_hook(
                    lambda m, i, o, n=name: self.spikes.setdefault(n, []).append((o[0] if isinstance(o, tuple) else o).clone())))

    def acs(self, name: str, batch: int) -> float:
        total = 0.0
        for m, x in self.inputs[name]:
            assert bool(((x == 0) | (x == 1)).all())  # spikes: every input event costs its fan-out
            w = (m.weight != 0).to(x.dtype)
            y = F.linear(x, w) if isinstance(m, nn.Linear) else m._conv_forward(x, w, None)
            total += float(y.sum())
        return total / batch

    def spike_count(self, name: str, batch: int) -> float:
        return float(sum(s.sum() for s in self.spikes[name])) / batch

    def close(self):
        for h in self.handles:
            h.remove()


# --- SpikingJelly -----------------------------------------------------------------------------------

def _spikingjelly_net(layer, neuron):
    lif = lambda: neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0)  # noqa: E731
    return nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, bias=False), lif(), layer.AvgPool2d(2),
        layer.Conv2d(4, 8, 3, padding=1, bias=False), lif(), layer.Flatten(),
        layer.Linear(8 * 4 * 4, 10, bias=False), lif())


def _snntorch_twin(net: nn.Module) -> nn.Module:
    snn = pytest.importorskip("snntorch")
    leaky = lambda: snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", init_hidden=True)  # noqa: E731
    twin = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), leaky(), nn.AvgPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1, bias=False), leaky(), nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10, bias=False), leaky())
    missing, unexpected = twin.load_state_dict(net.state_dict(), strict=False)
    assert not unexpected and all(k.split(".")[1] in ("threshold", "graded_spikes_factor", "reset_mechanism_val", "beta") for k in missing)
    return twin


def test_spikingjelly_conv_net_single_and_multi_step_equals_its_snntorch_twin():
    pytest.importorskip("spikingjelly")
    from snntorch.utils import reset
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(0)
    net = _spikingjelly_net(layer, neuron)
    _prune(net, 8.0)
    twin = _snntorch_twin(net)
    x = torch.rand(4, 3, 1, 8, 8).lt(0.5).float()

    def single_step(model, x):
        functional.reset_net(model)
        return torch.stack([model(x_t) for x_t in x]).mean(0)

    def multi_step(model, x):  # the whole (T, B, ...) sequence in one call of every layer
        functional.reset_net(model)
        return model(x).mean(0)

    def twin_loop(model, x):
        reset(model)
        return torch.stack([model(x_t) for x_t in x]).mean(0)

    expected = profile_module(twin, x, run=twin_loop)
    single = profile_module(net, x, run=single_step)
    functional.set_step_mode(net, "m")
    multi = profile_module(net, x, run=multi_step)
    assert all(layer.spikes > 0 for layer in expected.neuron_layers)  # every layer spikes: no comparison of zeros
    for got in (single, multi):
        assert got.spiking and [layer.name for layer in got.layers] == [layer.name for layer in expected.layers]
        for ours, theirs in zip(got.layers, expected.layers):
            mine = {k: v for k, v in vars(ours).items() if k != "module"}
            assert mine == {k: v for k, v in vars(theirs).items() if k != "module"}, ours.name
        assert got.totals == expected.totals
    # the twin itself against the replay oracle: ACs of the first conv (rate input, no pooling)
    oracle = _Replay(twin, (type(twin[1]),))
    twin_loop(twin, x)
    oracle.close()
    assert expected.layer("0").acs == pytest.approx(oracle.acs("0", 3)) and expected.layer("0").acs > 0
    assert (single.layer("1").neurons, single.layer("1").state_size) == (4 * 8 * 8, 4 * 8 * 8)  # v only


# --- Norse ------------------------------------------------------------------------------------------

class _NorseNet(nn.Module):
    def __init__(self, cell: type):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(6, 8, bias=False), cell()
        self.fc2, self.lif2 = nn.Linear(8, 4, bias=False), cell()


def _norse_cells(model, x):
    s1 = s2 = None
    out = []
    for x_t in x:
        z1, s1 = model.lif1(model.fc1(x_t), s1)
        z2, s2 = model.lif2(model.fc2(z1), s2)
        out.append(z2)
    return torch.stack(out).mean(0)


def _norse_sequence(model, x):  # every layer once on the whole (T, B, ...) sequence
    z1, _ = model.lif1(model.fc1(x))
    z2, _ = model.lif2(model.fc2(z1))
    return z2.mean(0)


def test_norse_cells_and_sequences_equal_a_replay_of_their_spikes():
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    x = torch.rand(20, 3, 6).lt(0.5).float()
    cells = _NorseNet(norse.LIFCell)
    _prune(cells, 40.0)
    sequence = _NorseNet(norse.LIF)
    sequence.load_state_dict(cells.state_dict())
    oracle = _Replay(cells, (norse.LIFCell,))
    p = profile_module(cells, x, run=_norse_cells)
    oracle.close()
    for fc in ("fc1", "fc2"):
        assert p.layer(fc).acs == pytest.approx(oracle.acs(fc, 3)) and p.layer(fc).macs == 0
    for lif in ("lif1", "lif2"):
        assert p.layer(lif).spikes == pytest.approx(oracle.spike_count(lif, 3)) and p.layer(lif).spikes > 0
    # LIFFeedForwardState(v, i): two state variables per neuron
    assert (p.layer("lif1").neurons, p.layer("lif1").state_size) == (8, 16) and p.spiking
    seq = profile_module(sequence, x, run=_norse_sequence)
    assert [layer.module for layer in seq.layers] == ["Linear", "LIF", "Linear", "LIF"]
    for ours, cell in zip(seq.layers, p.layers):  # the same counts, step by step
        assert {**vars(ours), "module": ""} == {**vars(cell), "module": ""}
    box = profile_module(_NorseNet(norse.LIFBoxCell), x, run=_norse_cells)
    assert box.layer("lif1").state_size == 8  # LIFBoxFeedForwardState(v)


def test_a_norse_recurrent_cell_counts_its_input_and_recurrent_weights():
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    cell = norse.LIFRecurrentCell(4, 3)
    with torch.no_grad():
        cell.input_weights.mul_(40)
        cell.recurrent_weights.mul_(40)
    # every input reaches the 3 neurons; without autapses (Norse's default) a neuron reaches the 2 others
    assert bool((cell.input_weights != 0).all()) and (cell.recurrent_weights != 0).sum(0).tolist() == [2, 2, 2]

    def run(model, x):
        state, out = None, []
        for x_t in x:
            z, state = model(x_t, state)
            out.append(z)
        return torch.stack(out).mean(0)

    x = torch.rand(10, 2, 4).lt(0.5).float()
    p = profile_module(cell, x, run=run)
    # input spikes x 3 per sample; every spike of step t-1 reaches the 2 other neurons at step t
    assert p.layer("input_weights").acs == 3 * float(x.sum()) / 2
    spikes = [rate * 3 for rate in p.layer("LIFRecurrentCell").rate_per_step]
    assert p.layer("recurrent_weights").acs_per_step == pytest.approx([0.0] + [2 * s for s in spikes[:-1]])
    assert sum(spikes) > 0 and p.layer("LIFRecurrentCell").state_size == 3 * 2  # v and i


# --- Sinabs -----------------------------------------------------------------------------------------

def test_sinabs_squeezed_conv_net_equals_a_replay_of_its_spikes():
    sl = pytest.importorskip("sinabs.layers")
    from sinabs.activation import SingleSpike

    torch.manual_seed(0)
    T, B = 5, 3
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=B, spike_fn=SingleSpike),
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 10, bias=False), sl.IAFSqueeze(batch_size=B, spike_fn=SingleSpike))
    _prune(net, 2.0)
    x = torch.rand(T, B, 1, 6, 6).lt(0.5).float()

    def run(model, x):  # Sinabs' layout: (B*T, ...), batch-major
        for m in model.modules():
            if isinstance(m, sl.StatefulLayer):
                m.reset_states()
        out = model(x.transpose(0, 1).flatten(0, 1))
        return out.unflatten(0, (B, T)).mean(1)

    oracle = _Replay(net, (sl.IAFSqueeze,))
    p = profile_module(net, x, run=run)
    oracle.close()
    for fc in ("0", "3"):
        assert p.layer(fc).acs == pytest.approx(oracle.acs(fc, B)) and p.layer(fc).acs > 0
    for lif in ("1", "4"):
        assert p.layer(lif).spikes == pytest.approx(oracle.spike_count(lif, B)) and p.layer(lif).spikes > 0
    assert p.layer("1").neurons == 4 * 6 * 6 and p.layer("1").state_size == 4 * 6 * 6  # v_mem
    # per step: the batch-major rows are split by step, as a loop over the steps would count them
    step_spikes = sum(float(s.unflatten(0, (B, T))[:, 0].sum()) for s in oracle.spikes["1"]) / B
    assert p.layer("1").rate_per_step[0] == pytest.approx(step_spikes / p.layer("1").neurons)


def test_sinabs_integer_spike_counts_are_events_by_hand():
    sl = pytest.importorskip("sinabs.layers")
    # x: t1 [1], t2 [0]; fc1 weights [2.5, 0.5] -> currents t1 [2.5, 0.5], t2 [0, 0]
    # IAF (threshold 1, MultiSpike, subtract): t1 v = [2.5, 0.5] -> 2 and 0 spikes, v = [0.5, 0.5]; t2 none
    # fc2 (2 -> 3, all ones): every spike reaches 3 outputs: 2 events x 3 = 6 ACs at t1, no MAC.
    # NeuroBench sees the value 2, not a spike: 1 nonzero input x fan-out 3 = 3 Effective_MACs.
    # spikes 2 per inference over 2 neurons x 2 steps: firing rate 0.5; one neuron update of the 4 is
    # active (emits anything): activation sparsity 1 - 1/4
    net = nn.Sequential(nn.Linear(1, 2, bias=False), sl.IAF(), nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[2.5], [0.5]]))
        net[2].weight.fill_(1.0)
    x = torch.tensor([[[1.0]], [[0.0]]])  # (T=2, B=1, 1)
    p = profile_module(net, x, run=lambda m, x: m(x.transpose(0, 1)).mean(1))  # Sinabs' (B, T, ...)
    assert p.layer("0").acs_per_step == [2.0, 0.0]
    assert p.layer("2").acs_per_step == [6.0, 0.0] and p.layer("2").macs == 0.0
    assert (p.layer("2").effective_macs, p.layer("2").effective_acs) == (3.0, 0.0)
    assert (p.layer("1").spikes, p.layer("1").firing_rate, p.layer("1").neurons) == (2.0, 0.5, 2)
    assert (p.layer("1").active_updates, p.totals.activation_sparsity) == (1.0, 0.75)


def test_a_sum_of_spikes_is_counted_as_sinabs_counts_are():
    # one rule for a value of 2: the net above's MultiSpike count [2, 0] at t1, and the same [2, 0] as
    # s1 + s2 of two single-spike IAFs (fc1 weights [1.5, 0.5]: each spikes [1, 0] at t1, none at t2):
    # both are 2 events x fan-out 3 = 6 ACs at t1, no MAC, and NeuroBench's 3 Effective_MACs
    sl = pytest.importorskip("sinabs.layers")
    from sinabs.activation import SingleSpike

    class Sum(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(1, 2, bias=False), nn.Linear(2, 3, bias=False)
            self.a, self.b = sl.IAF(spike_fn=SingleSpike), sl.IAF(spike_fn=SingleSpike)
            with torch.no_grad():
                self.fc1.weight.copy_(torch.tensor([[1.5], [0.5]]))
                self.fc2.weight.fill_(1.0)

        def forward(self, x):
            current = self.fc1(x)
            return self.fc2(self.a(current) + self.b(current))

    x = torch.tensor([[[1.0]], [[0.0]]])  # (T=2, B=1, 1)
    p = profile_module(Sum(), x, run=lambda m, x: m(x.transpose(0, 1)).mean(1))
    fc2 = p.layer("fc2")
    assert (fc2.acs_per_step, fc2.macs, fc2.input_events, fc2.effective_macs) == ([6.0, 0.0], 0.0, 2.0, 3.0)


def test_a_squeezed_layer_on_part_of_the_sequence_is_one_error():
    sl = pytest.importorskip("sinabs.layers")
    net = nn.Sequential(nn.Linear(4, 3), sl.IAFSqueeze(batch_size=2))
    x = torch.ones(3, 2, 4)  # (T=3, B=2): 6 rows
    with pytest.raises(ProfileError, match=r"^layer 0 ran 1 times \(2 steps\) in a batch of T=3 steps"):
        profile_module(net, x, run=lambda m, x: m(x.flatten(0, 1)[:4]))  # 2 of the 3 steps
    with pytest.raises(ProfileError, match=r"^layer 0 ran on 5 rows in a batch of B=2 samples and T=3 steps"):
        profile_module(net, x, run=lambda m, x: m(x.flatten(0, 1)[:5]))  # not whole steps


# --- a framework of your own ------------------------------------------------------------------------

class _Heaviside(nn.Module):
    """A neuron without state: a spike wherever the input exceeds 0.5."""

    def forward(self, x):
        return (x > 0.5).float()


def test_a_new_framework_is_one_entry():
    from snnpipe.pipeline.profile.frameworks import FRAMEWORKS, NeuronFramework, register_framework

    net = nn.Sequential(nn.Linear(2, 2, bias=False), _Heaviside(), nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[2].weight.fill_(1.0)
    x = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])  # spikes pass fc1 unchanged: t1 1 spike, t2 2
    run = lambda m, x: torch.stack([m(x_t) for x_t in x]).mean(0)  # noqa: E731
    unknown = profile_module(net, x, run=run)
    assert not unknown.spiking and [layer.name for layer in unknown.layers] == ["0", "2"]  # an ANN: MACs
    entry = NeuronFramework("heaviside-test", __name__, ("_Heaviside",), state_variables=lambda m, o: 0)
    register_framework(entry)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_framework(entry)
        p = profile_module(net, x, run=run)
        # every spike reaches the 3 outputs of fc2: t1 1 x 3, t2 2 x 3
        assert p.spiking and p.layer("1").spikes == 3.0 and p.layer("2").acs_per_step == [3.0, 6.0]
    finally:
        del FRAMEWORKS["heaviside-test"]
