"""CUBA LIF dynamics, surrogates and the RateBP eligibility, on 1-200 neurons with hand-worked numbers."""

import math

import pytest
import torch

from snnpipe.errors import SnnpipeError
from snnpipe.models.neurons import (
    SURROGATES,
    CubaLIF,
    ExecutionMode,
    NeuronParams,
    cuba_lif_step,
    spike_fn,
)


def run(params: NeuronParams, inputs: list[float]):
    state, spikes, currents, voltages = None, [], [], []
    for value in inputs:
        s, state = cuba_lif_step(torch.tensor([value]), state, params)
        spikes.append(s.item())
        currents.append(state.current.item())
        voltages.append(state.voltage.item())
    return spikes, currents, voltages


def test_cuba_dynamics_by_hand():
    # a_u = 0.5, a_v = 0.25, theta = 1, I = 0.5, 0.5, 0.5, 0, 0
    # t0: u = 0.5,                v = 0.5                       no spike
    # t1: u = 0.25 + 0.5 = 0.75,  v = 0.375 + 0.75 = 1.125 > 1  spike, v -> 0
    # t2: u = 0.375 + 0.5 = 0.875, v = 0 + 0.875                no spike
    # t3: u = 0.4375,             v = 0.65625 + 0.4375 = 1.09375 spike, v -> 0
    # t4: u = 0.21875,            v = 0.21875
    params = NeuronParams(current_decay=0.5, voltage_decay=0.25, threshold=1.0)
    spikes, currents, voltages = run(params, [0.5, 0.5, 0.5, 0.0, 0.0])
    assert spikes == [0, 1, 0, 1, 0]
    assert currents == [0.5, 0.75, 0.875, 0.4375, 0.21875]
    assert voltages == [0.5, 0.0, 0.875, 0.0, 0.21875]


def test_threshold_is_strict_as_in_lava():
    spikes, _, voltages = run(NeuronParams(current_decay=1.0, threshold=1.0), [1.0, 1.0])
    # t0: v = 1.0 is not > 1 -> no spike; t1: v = 0.5 + 1.0 = 1.5 -> spike
    assert spikes == [0, 1]
    assert voltages == [1.0, 0.0]


def test_refractory_holds_voltage_while_current_integrates():
    # a_u = 0.5, a_v = 0 (no leak), theta = 1, R = 2, I = 2, 0, 0, 0, 0
    # t0: u = 2, v = 2 spike; t1, t2 held at 0 (u = 1, 0.5); t3: v = 0 + 0.25 = 0.25; t4: 0.375
    params = NeuronParams(current_decay=0.5, voltage_decay=0.0, refractory_steps=2)
    spikes, currents, voltages = run(params, [2.0, 0.0, 0.0, 0.0, 0.0])
    assert spikes == [1, 0, 0, 0, 0]
    assert currents == [2.0, 1.0, 0.5, 0.25, 0.125]
    assert voltages == [0.0, 0.0, 0.0, 0.25, 0.375]


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_surrogates_integrate_to_one_and_peak_at_one_over_width(name):
    width = 0.5
    x = torch.linspace(-50, 50, 400_001, dtype=torch.float64)
    grad = SURROGATES[name](x, width)
    area = torch.trapezoid(grad, x).item()
    # atan has heavy tails: 1 - (2/pi) atan(pi/2 * alpha * 50) of its mass lies outside
    tail = 1 - 2 / math.pi * math.atan(math.pi / 2 * (2 / width) * 50) if name == "atan" else 0
    assert area == pytest.approx(1.0 - tail, abs=1e-3)  # grid step 2.5e-4 at the rectangle's edges
    assert SURROGATES[name](torch.tensor([0.0]), width).item() == pytest.approx(1 / width)


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_spike_fn_backward_is_the_surrogate(name):
    x = torch.tensor([-1.0, -0.2, 0.0, 0.1, 0.7], requires_grad=True)
    spikes = spike_fn(x, name, 1.0)
    assert spikes.tolist() == [0, 0, 0, 1, 1]
    spikes.sum().backward()
    assert torch.allclose(x.grad, SURROGATES[name](x.detach(), 1.0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"current_decay": 1.5},
        {"voltage_decay": -0.1},
        {"threshold": 0.0},
        {"refractory_steps": -1},
        {"surrogate": "relu"},
        {"surrogate_width": 0.0},
    ],
)
def test_out_of_range_parameters_are_refused(kwargs):
    with pytest.raises(SnnpipeError):
        NeuronParams(**kwargs)


def test_rate_mode_eligibility_by_hand():
    # a_u = 1, a_v = 0.5, theta = 1, constant x = 0.6, rectangular surrogate of width 1 (=1 on |d|<0.5)
    # t0: v = 0.6 (d=-0.4, sg 1), f = 1;     t1: v = 0.9 (d=-0.1, sg 1), f = 1.5
    # t2: v = 1.05 spike (d=0.05, sg 1), f = 1.75  ->  rate 1/3, eligibility (1 + 1.5 + 1.75)/3
    neuron = CubaLIF(NeuronParams(voltage_decay=0.5, surrogate="rectangular"))
    neuron.mode = ExecutionMode.RECORD
    neuron.reset_state()
    x = torch.tensor([0.6])
    with torch.no_grad():
        out = [neuron(x).item() for _ in range(3)]
    neuron.finish_record()
    assert out == [0, 0, 1]
    assert neuron.rate.item() == pytest.approx(1 / 3)
    assert neuron.eligibility.item() == pytest.approx(4.25 / 3)
    neuron.mode = ExecutionMode.RATE
    x_bar = torch.tensor([0.6], requires_grad=True)
    rate = neuron(x_bar)
    rate.backward()
    assert rate.item() == pytest.approx(1 / 3)
    assert x_bar.grad.item() == pytest.approx(4.25 / 3)


def test_soft_reset_by_hand():
    # a_v = 0.5, theta = 1, x = 0.8 constant, reset by subtraction, rectangular surrogate of width 1:
    # t0: v = 0.8 (d=-0.2, sg 1), f = 1        t1: v = 1.2 spike -> v = 0.2 (d=0.2, sg 1), f = 1.5
    # t2: v = 0.9 (d=-0.1, sg 1), f = 1.75 (the soft reset keeps dv/dI)   t3: v = 1.25 spike, f = 1.875
    # rate 2/4, eligibility (1 + 1.5 + 1.75 + 1.875) / 4; the hard reset gives v = 0.8 at t2 instead
    params = NeuronParams(voltage_decay=0.5, surrogate="rectangular", reset="subtract")
    state, spikes = None, []
    for _ in range(4):
        s, state = cuba_lif_step(torch.tensor([0.8]), state, params)
        spikes.append(s.item())
    assert spikes == [0, 1, 0, 1]
    assert state.voltage.item() == pytest.approx(0.25)
    neuron = CubaLIF(params)
    neuron.mode = ExecutionMode.RECORD
    neuron.reset_state()
    with torch.no_grad():
        assert [neuron(torch.tensor([0.8])).item() for _ in range(4)] == spikes
    neuron.finish_record()
    assert neuron.rate.item() == pytest.approx(0.5)
    assert neuron.eligibility.item() == pytest.approx(6.125 / 4)


def test_soft_reset_refuses_a_refractory_period():
    with pytest.raises(SnnpipeError, match="reset='subtract' with refractory_steps"):
        NeuronParams(refractory_steps=1, reset="subtract")
    with pytest.raises(SnnpipeError, match="unknown reset 'soft'"):
        NeuronParams(reset="soft")


@pytest.mark.parametrize("current_decay,voltage_decay,refractory,reset", [
    (1.0, 0.5, 0, "zero"), (0.3, 0.2, 0, "zero"), (0.5, 0.1, 1, "zero"), (1.0, 0.5, 0, "subtract"), (0.3, 0.2, 0, "subtract")])
def test_rate_gradient_equals_bptt_for_constant_input(current_decay, voltage_decay, refractory, reset):
    """For an input constant over time, d(mean_t s)/dx under BPTT (reset not differentiated) is
    exactly the recorded eligibility: the oracle for the RateBP neuron, with either reset."""
    torch.manual_seed(0)
    params = NeuronParams(current_decay, voltage_decay, 1.0, refractory, "sigmoid", 1.0, reset)
    steps = 8
    x = (torch.rand(200) * 1.2).requires_grad_(True)
    state, total = None, 0
    for _ in range(steps):
        s, state = cuba_lif_step(x, state, params)
        total = total + s
    (total / steps).sum().backward()
    bptt_grad = x.grad.clone()

    neuron = CubaLIF(params)
    neuron.mode = ExecutionMode.RECORD
    neuron.reset_state()
    with torch.no_grad():
        for _ in range(steps):
            neuron(x.detach())
    neuron.finish_record()
    neuron.mode = ExecutionMode.RATE
    x_bar = x.detach().clone().requires_grad_(True)
    rate = neuron(x_bar)
    rate.sum().backward()
    assert torch.allclose(rate, (total / steps).detach())
    assert torch.allclose(x_bar.grad, bptt_grad, atol=1e-6)
    assert bptt_grad.abs().sum() > 0


def test_snntorch_leaky_gives_the_same_spikes():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(1)
    x = torch.rand(50, 300) * 1.5
    lif = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism="zero")
    mem = lif.init_leaky()
    params = NeuronParams(current_decay=1.0, voltage_decay=0.1, threshold=1.0)
    state, count = None, 0.0
    for t in range(50):
        theirs, mem = lif(x[t], mem)
        ours, state = cuba_lif_step(x[t], state, params)
        assert torch.equal(ours, theirs), f"step {t}"
        count += float(ours.sum())
    assert 0.1 < count / (50 * 300) < 0.9  # the comparison is not between two silent layers


def test_snntorch_synaptic_gives_the_same_spikes():
    """snnTorch's Synaptic with reset 'zero' zeroes the membrane on the step after a spike with
    that step's input included: CUBA LIF with a one-step refractory period."""
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(2)
    x = torch.rand(50, 300) * 1.5
    lif = snn.Synaptic(alpha=0.7, beta=0.9, threshold=2.0, reset_mechanism="zero")
    syn, mem = lif.init_synaptic()
    params = NeuronParams(current_decay=0.3, voltage_decay=0.1, threshold=2.0, refractory_steps=1)
    state, count = None, 0.0
    for t in range(50):
        theirs, syn, mem = lif(x[t], syn, mem)
        ours, state = cuba_lif_step(x[t], state, params)
        assert torch.equal(ours, theirs), f"step {t}"
        assert torch.equal(state.current, syn)
        count += float(ours.sum())
    assert 0.1 < count / (50 * 300) < 0.9  # the comparison is not between two silent layers


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_in_place_surrogates_equal_the_reference(name):
    from snnpipe.models.neurons import SURROGATES_INPLACE

    x = torch.linspace(-3, 3, 1001)
    values, scale = SURROGATES_INPLACE[name](x.clone(), 0.7)
    assert torch.allclose(values * scale, SURROGATES[name](x, 0.7), atol=1e-6)
