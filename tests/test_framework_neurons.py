"""The neuron adapters (`pipeline.neuron_adapters`): each framework's neuron, run by the framework itself
on random input, spikes exactly as the IR node its adapter gives, run by the IR's equations written
out below (the `models.ir` docstring); what the CUBA LIF cannot hold is one line.

Input: 40 steps of 6 x 5 uniform currents in [0, 1.2) with fixed seeds; every case spikes and stays
silent somewhere (asserted), so neither an all-ones nor an all-zeros result passes.
"""

import math

import numpy as np
import pytest
import torch

from snnpipe.models import ir
from snnpipe.pipeline.neuron_adapters import UnsupportedNeuronError
from snnpipe.pipeline.profile.frameworks import framework_of

T, SHAPE = 40, (6, 5)


def ir_run(n: ir.CubaLIF, x: np.ndarray) -> np.ndarray:
    """The IR's CubaLIF (`models.ir`) over x (T, ...), from rest: the spikes (T, ...)."""
    u, v, held = np.zeros(x.shape[1:]), np.zeros(x.shape[1:]), np.zeros(x.shape[1:])
    out = []
    for x_t in x:
        u = (1 - n.current_decay) * u + x_t
        v = np.where(held > 0, v, (1 - n.voltage_decay) * v + n.voltage_decay * n.v_leak + u)
        s = (v > n.threshold).astype(float)
        v = np.where(s > 0, n.v_reset if n.reset == "zero" else v - n.threshold, v)
        held = np.where(s > 0, n.refractory_steps, np.maximum(held - 1, 0))
        out.append(s)
    return np.stack(out)


def _input(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(T, *SHAPE) * 1.2


def _check(module, spikes: torch.Tensor, x: torch.Tensor) -> ir.CubaLIF:
    framework = framework_of(module)
    assert framework is not None and framework.to_ir is not None
    node = framework.to_ir(module)
    ours = ir_run(node, x.double().numpy())
    theirs = spikes.detach().double().numpy()
    assert 0 < theirs.sum() < theirs.size, "the case must spike and stay silent somewhere"
    assert np.array_equal(ours, theirs), f"{int((ours != theirs).sum())} of {theirs.size} spikes differ"
    return node


# --- snnTorch ---------------------------------------------------------------------------------------

def _snntorch_spikes(neuron, x):
    from snntorch.utils import reset

    reset(neuron)
    with torch.no_grad():
        return torch.stack([neuron(x_t) for x_t in x])


@pytest.mark.parametrize("kwargs", [
    dict(beta=0.8, threshold=1.0, reset_mechanism="zero"),
    dict(beta=0.6, threshold=0.7, reset_mechanism="zero", reset_delay=False),
    dict(beta=0.7, threshold=1.1, reset_mechanism="subtract", reset_delay=False),
])
def test_snntorch_leaky(kwargs):
    snn = pytest.importorskip("snntorch")
    x = _input(0)
    neuron = snn.Leaky(init_hidden=True, **kwargs)
    node = _check(neuron, _snntorch_spikes(neuron, x), x)
    assert (node.current_decay, node.voltage_decay, node.reset) == (1.0, pytest.approx(1 - kwargs["beta"]),
                                                                     kwargs["reset_mechanism"])


@pytest.mark.parametrize("reset_delay,refractory", [(True, 1), (False, 0)])
def test_snntorch_synaptic(reset_delay, refractory):
    snn = pytest.importorskip("snntorch")
    x = _input(1) * 0.6
    neuron = snn.Synaptic(alpha=0.5, beta=0.7, threshold=1.0, reset_mechanism="zero", reset_delay=reset_delay,
                          init_hidden=True)
    node = _check(neuron, _snntorch_spikes(neuron, x), x)
    assert (node.current_decay, node.refractory_steps) == (pytest.approx(0.5), refractory)


def test_snntorch_what_cuba_cannot_hold_is_one_line():
    snn = pytest.importorskip("snntorch")
    adapter = framework_of(snn.Leaky(beta=0.5)).to_ir
    with pytest.raises(UnsupportedNeuronError, match=r"^snntorch.Leaky: reset_mechanism='subtract' with reset_delay=True"):
        adapter(snn.Leaky(beta=0.5))  # snnTorch's default
    with pytest.raises(UnsupportedNeuronError, match=r"^snntorch.Leaky: graded_spikes_factor=2.0"):
        adapter(snn.Leaky(beta=0.5, reset_mechanism="zero", graded_spikes_factor=2.0))
    with pytest.raises(UnsupportedNeuronError, match=r"^snntorch.Alpha: its dynamics have no CUBA LIF form"):
        adapter(snn.Alpha(alpha=0.6, beta=0.5))
    # a learned per-neuron threshold stays per neuron in the IR (the Loihi export refuses it by name)
    node = adapter(snn.Leaky(beta=0.5, threshold=torch.linspace(0.5, 1.0, 5), learn_threshold=True,
                                   reset_mechanism="zero"))
    assert isinstance(node.threshold, np.ndarray) and node.threshold.tolist() == pytest.approx([0.5, 0.625, 0.75, 0.875, 1.0])


# --- SpikingJelly -----------------------------------------------------------------------------------

def _spikingjelly_spikes(neuron, x, multi_step=False):
    from spikingjelly.activation_based import functional

    functional.reset_net(neuron)
    with torch.no_grad():
        if multi_step:
            neuron.step_mode = "m"
            return neuron(x)
        return torch.stack([neuron(x_t) for x_t in x])


@pytest.mark.parametrize("make,multi_step", [
    (lambda n: n.LIFNode(tau=2.0, decay_input=True, v_threshold=0.5, v_reset=0.0), False),
    (lambda n: n.LIFNode(tau=3.0, decay_input=False, v_threshold=1.0, v_reset=0.0), True),
    (lambda n: n.LIFNode(tau=4.0, decay_input=True, v_threshold=0.4, v_reset=None), False),
    (lambda n: n.IFNode(v_threshold=2.0, v_reset=0.0), False),
    (lambda n: n.ParametricLIFNode(init_tau=3.0, decay_input=True, v_threshold=0.5), True),
])
def test_spikingjelly_nodes(make, multi_step):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron

    x = _input(2)
    node = make(neuron)
    _check(node, _spikingjelly_spikes(node, x, multi_step), x)


def test_spikingjelly_what_cuba_cannot_hold_is_one_line():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron

    with pytest.raises(UnsupportedNeuronError, match=r"^spikingjelly.QIFNode: its dynamics have no CUBA LIF form"):
        framework_of(neuron.QIFNode()).to_ir(neuron.QIFNode())
    with pytest.raises(UnsupportedNeuronError, match=r"^spikingjelly.LIFNode: v_reset=0.1: its voltage starts there"):
        framework_of(neuron.LIFNode()).to_ir(neuron.LIFNode(v_reset=0.1))


# --- Norse ------------------------------------------------------------------------------------------

def _norse_spikes(cell, x):
    state, out = None, []
    with torch.no_grad():
        for x_t in x:
            z, state = cell(x_t, state)
            out.append(z)
    return torch.stack(out)


def test_norse_lif_box_cell():
    norse = pytest.importorskip("norse.torch")
    x = _input(3) * 40
    cell = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(250.0), v_th=torch.tensor(3.0)))
    node = _check(cell, _norse_spikes(cell, x), x)
    assert (node.voltage_decay, node.threshold) == (pytest.approx(0.25), pytest.approx(12.0))


def test_norse_lif_cell():
    norse = pytest.importorskip("norse.torch")
    x = _input(4) * 3
    cell = norse.LIFCell(norse.LIFParameters(tau_syn_inv=torch.tensor(400.0), tau_mem_inv=torch.tensor(200.0),
                                             v_th=torch.tensor(0.6)))
    node = _check(cell, _norse_spikes(cell, x), x)
    assert (node.current_decay, node.voltage_decay) == (pytest.approx(0.4), pytest.approx(0.2))
    sequence = norse.LIF(cell.p)  # the sequence module: the same neuron over (T, ...) at once
    with torch.no_grad():
        _check(sequence, sequence(x)[0], x)


# --- Sinabs -----------------------------------------------------------------------------------------

def _sinabs_spikes(layer, x):  # Sinabs' (B, T, ...) layout
    layer.reset_states()
    with torch.no_grad():
        return layer(x.transpose(0, 1)).transpose(0, 1)


@pytest.mark.parametrize("make", [
    lambda sl, a: sl.LIF(tau_mem=3.0, spike_threshold=0.3, spike_fn=a.SingleSpike, reset_fn=a.MembraneReset()),
    lambda sl, a: sl.LIF(tau_mem=2.0, tau_syn=4.0, spike_threshold=0.2, spike_fn=a.SingleSpike,
                         reset_fn=a.MembraneSubtract()),
    lambda sl, a: sl.LIF(tau_mem=5.0, norm_input=False, spike_threshold=1.5, spike_fn=a.SingleSpike,
                         reset_fn=a.MembraneReset()),
    lambda sl, a: sl.IAF(spike_threshold=2.0, spike_fn=a.SingleSpike, reset_fn=a.MembraneSubtract()),
])
def test_sinabs_single_spike_layers(make):
    sl = pytest.importorskip("sinabs.layers")
    import sinabs.activation as a

    x = _input(5)
    layer = make(sl, a)
    _check(layer, _sinabs_spikes(layer, x), x)


def test_sinabs_multispike_and_a_voltage_floor_are_one_line():
    sl = pytest.importorskip("sinabs.layers")
    import sinabs.activation as a

    with pytest.raises(UnsupportedNeuronError, match=r"^sinabs.IAF: spike_fn=MultiSpike emits several spikes per "
                       r"step; Loihi's CUBA emits one; train with spike_fn=sinabs.activation.SingleSpike$"):
        framework_of(sl.IAF()).to_ir(sl.IAF())
    floor = sl.IAF(spike_fn=a.SingleSpike, min_v_mem=-1.0)
    with pytest.raises(UnsupportedNeuronError, match=r"^sinabs.IAF: min_v_mem=-1 clips the voltage"):
        framework_of(floor).to_ir(floor)
    shifted = sl.IAF(spike_fn=a.SingleSpike, reset_fn=a.MembraneReset(reset_value=0.5))
    with pytest.raises(UnsupportedNeuronError, match=r"^sinabs.IAF: reset_fn=MembraneReset\(reset_value=0.5\) is neither"):
        framework_of(shifted).to_ir(shifted)


def test_the_decay_of_sinabs_tau_mem_is_one_minus_exp():
    sl = pytest.importorskip("sinabs.layers")
    import sinabs.activation as a

    layer = sl.LIF(tau_mem=2.0, spike_fn=a.SingleSpike, reset_fn=a.MembraneReset())
    node = framework_of(layer).to_ir(layer)
    decay = 1 - math.exp(-1 / 2.0)
    assert node.voltage_decay == pytest.approx(decay) and node.threshold == pytest.approx(1.0 / decay)
