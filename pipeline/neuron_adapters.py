"""Each framework's neuron layer as the IR's neuron: one adapter per framework, ``adapter(module) ->
ir.CubaLIF``, named in its `NeuronFramework` entry (`pipeline.profile.frameworks`).

Every neuron here is brought to the IR's CUBA LIF (`models.ir`, SPEC §2)::

    u[t] = (1 - a_u) u[t-1] + x[t]      v[t] = (1 - a_v) v[t-1] + a_v v_leak + u[t]
    s[t] = v[t] > theta                 then v = v_reset (reset "zero") or v - theta ("subtract")

A framework that scales its input by a gain g (``v += a_v x``) is the same neuron with the voltage
divided by g: theta, v_leak and v_reset are divided by g too. Per framework (checked against each
framework's own forward step in ``tests/test_framework_neurons.py``):

- snnTorch ``Leaky(beta, threshold)``: a_u = 1, a_v = 1 - beta. Reset "zero" with either
  ``reset_delay`` (snnTorch zeroes ``beta v`` on the next step, the same as zeroing v now); reset
  "subtract" only with ``reset_delay=False`` (with the default delay it subtracts theta from the
  next step's voltage, after the decay, which CUBA cannot say unless beta = 1).
  ``Synaptic(alpha, beta)``: a_u = 1 - alpha, a_v = 1 - beta; its default ``reset_delay=True``
  holds the voltage one more step: refractory_steps = 1 (`models.neurons`).
- SpikingJelly ``LIFNode(tau, decay_input, v_threshold, v_reset)``: a_v = 1 / tau; with
  ``decay_input`` the input is scaled by g = 1 / tau. ``v_reset=None`` is reset "subtract", 0 is
  "zero" (another v_reset is refused: the voltage starts there). ``IFNode``: a_v = 0.
  ``ParametricLIFNode``: 1 / tau = sigmoid(w). It fires at v >= theta (snnpipe and Loihi: v > theta):
  the same spikes unless a voltage lands exactly on the threshold.
- Norse ``LIFBoxCell`` / ``LIFBox``: a_u = 1, a_v = g = dt tau_mem_inv. ``LIFCell`` / ``LIF``: the
  current jumps by the input first (``i += x``), the voltage integrates it, then it decays: the CUBA LIF
  with a_u = dt tau_syn_inv, a_v = g = dt tau_mem_inv. Its voltage starts at v_leak: v_leak != 0 is refused.
- Sinabs ``LIF`` / ``IAF`` (and their ``Squeeze`` forms) with ``SingleSpike``: a_v = 1 - alpha_mem
  (IAF: 0), a_u = 1 - alpha_syn (no tau_syn: 1); the input gain is alpha_syn (with a synaptic current)
  times 1 - alpha_mem (``norm_input``). ``MembraneReset()`` is reset "zero" (another reset_value is
  refused: Sinabs adds it to every neuron), ``MembraneSubtract()`` "subtract". It fires at v >= theta,
  as SpikingJelly.

What the CUBA LIF cannot hold is refused in one line naming the module and the parameter: Sinabs'
``MultiSpike`` (several spikes per step), a clipped voltage (``min_v_mem``), graded spikes, a snnTorch
neuron with recurrent or alpha dynamics, Norse's other cells. Parameters learned per neuron (a
threshold tensor, ``learn_threshold``) stay per neuron in the IR, as NIR allows; a consumer that holds
one value per layer (Loihi) refuses them by node and parameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from snnpipe.errors import SnnpipeError
from snnpipe.models import ir


class UnsupportedNeuronError(SnnpipeError):
    """A framework neuron the IR's CUBA LIF cannot hold: one line naming the module and the parameter."""

    def __init__(self, module: nn.Module, why: str, fix: str = "") -> None:
        name = f"{type(module).__module__.split('.')[0]}.{type(module).__name__}"
        super().__init__(f"{name}: {why}" + (f"; {fix}" if fix else ""))
        self.module_type = name


def value(param: Any) -> float | np.ndarray:
    """A parameter as a float, or as a float array where its values differ from neuron to neuron
    (an array of equal values is the one value: snnTorch's NIR writer needs per-neuron tensors)."""
    if param is None:
        return 0.0
    array = np.asarray(param.detach().cpu().double() if isinstance(param, torch.Tensor) else param, dtype=np.float64)
    if array.size == 1 or np.all(array == array.flat[0]):
        return float(array.flat[0])
    return array


def _scaled(quantity: Any, gain: Any = 1.0) -> float | np.ndarray:
    """``quantity / gain`` as a float, or as an array where either is per neuron."""
    out = np.asarray(quantity, dtype=np.float64) / np.asarray(gain, dtype=np.float64)
    return float(out) if out.ndim == 0 else out


def snntorch_neuron(module: nn.Module) -> ir.CubaLIF:
    kind = type(module).__name__
    if kind not in ("Leaky", "Synaptic"):
        raise UnsupportedNeuronError(module, "its dynamics have no CUBA LIF form here",
                                     "build the network with snntorch.Leaky or snntorch.Synaptic")
    if value(module.graded_spikes_factor) != 1.0:
        raise UnsupportedNeuronError(module, f"graded_spikes_factor={value(module.graded_spikes_factor)}: "
                                     "Loihi's CUBA emits spikes of 1", "train with graded_spikes_factor=1")
    if getattr(module, "inhibition", False):
        raise UnsupportedNeuronError(module, "inhibition=True lets one neuron fire per step", "train without inhibition")
    reset = {0: "subtract", 1: "zero"}.get(int(module.reset_mechanism_val))
    if reset is None:
        raise UnsupportedNeuronError(module, "reset_mechanism='none' never resets", "train with reset_mechanism='zero'")
    delayed = bool(getattr(module, "reset_delay", True))
    if reset == "subtract" and delayed:
        raise UnsupportedNeuronError(module, "reset_mechanism='subtract' with reset_delay=True subtracts the "
                                     "threshold after the next step's decay", "train with reset_delay=False")
    voltage_decay = _scaled(1.0 - np.asarray(value(module.beta)))
    if kind == "Leaky":
        return ir.CubaLIF(1.0, voltage_decay, value(module.threshold), reset=reset)
    current_decay = _scaled(1.0 - np.asarray(value(module.alpha)))
    refractory = 1 if reset == "zero" and delayed else 0
    return ir.CubaLIF(current_decay, voltage_decay, value(module.threshold), reset=reset, refractory_steps=refractory)


def spikingjelly_neuron(module: nn.Module) -> ir.CubaLIF:
    kind = type(module).__name__
    if kind == "IFNode":
        voltage_decay = 0.0
    elif kind == "LIFNode":
        voltage_decay = 1.0 / float(module.tau)
    elif kind == "ParametricLIFNode":
        voltage_decay = float(torch.sigmoid(module.w.detach()))
    else:
        raise UnsupportedNeuronError(module, "its dynamics have no CUBA LIF form here",
                                     "build the network with LIFNode, IFNode or ParametricLIFNode")
    gain = voltage_decay if getattr(module, "decay_input", False) and voltage_decay > 0 else 1.0
    threshold = _scaled(value(module.v_threshold), gain)
    if module.v_reset is None:
        return ir.CubaLIF(1.0, voltage_decay, threshold, reset="subtract")
    if value(module.v_reset) != 0.0:
        raise UnsupportedNeuronError(module, f"v_reset={value(module.v_reset):g}: its voltage starts there and leaks "
                                     "towards it; the CUBA LIF starts at 0", "train with v_reset=0.0 (or None)")
    return ir.CubaLIF(1.0, voltage_decay, threshold)


def norse_neuron(module: nn.Module) -> ir.CubaLIF:
    kind = type(module).__name__
    p, dt = module.p, float(module.dt)
    if kind not in ("LIFBoxCell", "LIFBox", "LIFCell", "LIF"):
        raise UnsupportedNeuronError(module, "its dynamics have no CUBA LIF form here",
                                     "build the network with norse.torch.LIFBoxCell or LIFCell")
    if np.any(np.asarray(value(p.v_leak)) != 0):
        raise UnsupportedNeuronError(module, "v_leak != 0: its voltage starts there and leaks towards it; the CUBA "
                                     "LIF starts at 0", "train with v_leak=0")
    gain = voltage_decay = _scaled(dt * np.asarray(value(p.tau_mem_inv)))
    threshold, v_reset = _scaled(value(p.v_th), gain), _scaled(value(p.v_reset), gain)
    if kind in ("LIFBoxCell", "LIFBox"):
        return ir.CubaLIF(1.0, voltage_decay, threshold, v_reset=v_reset)
    return ir.CubaLIF(_scaled(dt * np.asarray(value(p.tau_syn_inv))), voltage_decay, threshold, v_reset=v_reset)


def sinabs_neuron(module: nn.Module) -> ir.CubaLIF:
    spike_fn = getattr(module.spike_fn, "__name__", type(module.spike_fn).__name__)
    if spike_fn != "SingleSpike":
        raise UnsupportedNeuronError(module, f"spike_fn={spike_fn} emits several spikes per step; Loihi's CUBA "
                                     "emits one", "train with spike_fn=sinabs.activation.SingleSpike")
    if getattr(module, "min_v_mem", None) is not None:
        raise UnsupportedNeuronError(module, f"min_v_mem={value(module.min_v_mem):g} clips the voltage; "
                                     "Loihi's CUBA has no floor", "train with min_v_mem=None")
    if not hasattr(module, "alpha_mem_calculated"):
        raise UnsupportedNeuronError(module, "its dynamics have no CUBA LIF form here",
                                     "build the network with sinabs.layers.LIF or IAF")
    alpha_mem = np.asarray(value(module.alpha_mem_calculated))
    alpha_syn = module.alpha_syn_calculated
    alpha_syn = None if alpha_syn is None else np.asarray(value(alpha_syn))
    gain = (1.0 - alpha_mem if module.norm_input else 1.0) * (alpha_syn if alpha_syn is not None else 1.0)
    reset_fn = module.reset_fn
    if type(reset_fn).__name__ == "MembraneReset" and reset_fn.reset_value == 0:
        reset = "zero"
    elif type(reset_fn).__name__ == "MembraneSubtract" and reset_fn.subtract_value is None:
        reset = "subtract"
    else:  # (MembraneReset adds a reset_value other than 0 to every neuron's voltage, spiking or not)
        raise UnsupportedNeuronError(module, f"reset_fn={reset_fn!r} is neither a reset to 0 nor a subtraction of "
                                     "the threshold", "train with MembraneReset() or MembraneSubtract()")
    current_decay = 1.0 if alpha_syn is None else _scaled(1.0 - alpha_syn)
    return ir.CubaLIF(current_decay, _scaled(1.0 - alpha_mem), _scaled(value(module.spike_threshold), gain), reset=reset)


__all__ = ["UnsupportedNeuronError", "norse_neuron", "sinabs_neuron", "snntorch_neuron", "spikingjelly_neuron", "value"]
