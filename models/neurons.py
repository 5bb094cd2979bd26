"""The CUBA LIF neuron of Loihi, in float, with surrogate gradients.

Per timestep t and neuron, with current decay ``a_u`` and voltage decay ``a_v`` in [0, 1]
(SPEC §2; Lava ``lava/proc/lif/models.py``)::

    u[t] = (1 - a_u) * u[t-1] + I[t]          # synaptic current; a_u = 1 gives a plain LIF
    v[t] = (1 - a_v) * v[t-1] + u[t] + bias
    s[t] = 1 if v[t] > theta else 0           # strictly greater, as Lava
    v[t] = 0 where s[t] = 1                   # hard reset (reset="zero", Loihi's)
    v[t] = v[t] - theta where s[t] = 1        # or soft reset (reset="subtract", RateBP's and ESD's neuron)

With ``refractory_steps = R > 0`` the voltage is held (at its reset value, 0) for the R steps after
a spike while the current keeps integrating: Lava's ``LIFRefractory(refractory_period=R)``.

snnTorch equivalence (checked in ``tests/test_neurons.py``):
- ``snntorch.Leaky(beta=1-a_v, reset_mechanism="zero")`` is ``a_u = 1, R = 0``;
- ``snntorch.Synaptic(alpha=1-a_u, beta=1-a_v, reset_mechanism="zero")`` zeroes the membrane on the
  step *after* a spike with that step's input included, i.e. a one-step refractory period:
  it is ``R = 1``, not ``R = 0``.

The layer `CubaLIF` runs in one of three modes (`ExecutionMode`):
- ``SPIKE``: one call is one timestep; used for inference and surrogate-gradient BPTT.
- ``RECORD``: as ``SPIKE``, and also accumulates the firing rate and the eligibility that
  rate-based backpropagation needs (see `CubaLIF.forward`); run under ``torch.no_grad``.
- ``RATE``: one differentiable call on time-averaged input that returns the recorded rate with the
  eligibility as its gradient.
- ``RECORD_RATE``: both on a sequence of one step, in one differentiable call: at T = 1 the input
  of the RATE pass is the RECORD pass's input, so the RECORD pass need not run apart
  (`layers.rate_based`).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import torch
from torch import Tensor, nn

from snnpipe.models import ir
from snnpipe.models.params import NeuronParams
from snnpipe.models.surrogates import SURROGATES, SURROGATES_INPLACE

__all__ = ["SURROGATES", "SURROGATES_INPLACE", "NeuronParams", "CubaLIF", "ReLU", "ExecutionMode", "LeakyIntegrator",
           "ThresholdLayer", "cuba_lif_step", "cuba_li_step", "spike_fn"]


class CubaState(NamedTuple):
    """State of a CUBA LIF layer: current u, voltage v, refractory steps left."""

    current: Tensor
    voltage: Tensor
    refractory: Tensor | None = None


def heaviside(x: Tensor, threshold: float) -> Tensor:
    """1.0 where x > threshold, else 0.0, in x's dtype and memory format: the comparison writes the
    floats at once (``(x > threshold).to(x.dtype)`` made a bool tensor and converted it, 9x slower on
    the CPU here, the largest single cost of a RateBP RECORD step); the same values either way."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.fx._symbolic_trace.is_fx_symbolic_tracing():
        return (x > threshold).to(x.dtype)  # exporters read the graph: there ``out=`` has no operator
    return torch.gt(x, threshold, out=torch.empty_like(x))


class _Spike(torch.autograd.Function):
    """Heaviside of x = v - theta (strict: 0 gives no spike) with a surrogate derivative."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: str, width: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.width = surrogate, width
        return heaviside(x, 0.0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * SURROGATES[ctx.surrogate](x, ctx.width), None, None


def spike_fn(x: Tensor, surrogate: str = "atan", width: float = 1.0) -> Tensor:
    """Spikes where x > 0; the gradient is ``SURROGATES[surrogate](x, width)``."""
    return _Spike.apply(x, surrogate, width)


def initial_state(like: Tensor, params: NeuronParams) -> CubaState:
    """Zero current and voltage shaped like one timestep of input."""
    zeros = torch.zeros_like(like)
    refractory = torch.zeros_like(like) if params.refractory_steps > 0 else None
    return CubaState(zeros, zeros.clone(), refractory)


def _integrate(
    x: Tensor, state: CubaState, params: NeuronParams, bias: Tensor | float
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Current and pre-spike voltage of one step; ``held`` marks refractory neurons (or None)."""
    current = (1.0 - params.current_decay) * state.current + x
    voltage = (1.0 - params.voltage_decay) * state.voltage + current
    if not (isinstance(bias, float) and bias == 0.0):
        voltage = voltage + bias
    held = None
    if state.refractory is not None:
        held = state.refractory > 0
        voltage = torch.where(held, state.voltage, voltage)
    return current, voltage, held


def _after_spike(
    spikes: Tensor, voltage: Tensor, state: CubaState, params: NeuronParams
) -> CubaState:
    # the reset is not differentiated (snnTorch, slayer; the official RateBP's detach_reset)
    if params.reset == "subtract":
        voltage = voltage - params.threshold * spikes.detach()
    else:
        voltage = voltage * (1.0 - spikes.detach())
    refractory = None
    if state.refractory is not None:
        refractory = torch.where(
            spikes.detach() > 0,
            torch.full_like(state.refractory, params.refractory_steps),
            torch.clamp(state.refractory - 1, min=0),
        )
    return CubaState(state.current, voltage, refractory)


def cuba_lif_step(
    x: Tensor, state: CubaState | None, params: NeuronParams, bias: Tensor | float = 0.0
) -> tuple[Tensor, CubaState]:
    """One timestep of the CUBA LIF of the module docstring.

    Args:
        x: input current I[t], any shape.
        state: the previous state, or None for zeros.
        params: neuron parameters.
        bias: constant added to the voltage every step.

    Returns:
        (spikes s[t] in {0, 1}, new state with the post-reset voltage).
    """
    if state is None:
        state = initial_state(x, params)
    current, voltage, _ = _integrate(x, state, params, bias)
    if torch.is_grad_enabled():
        spikes = spike_fn(voltage - params.threshold, params.surrogate, params.surrogate_width)
    else:  # inference and export: a plain comparison (v - theta > 0 iff v > theta in IEEE floats)
        spikes = heaviside(voltage, params.threshold)
    state = _after_spike(spikes, voltage, CubaState(current, voltage, state.refractory), params)
    return spikes, state


class ExecutionMode(enum.Enum):
    """How neurons (and mode-aware layers) treat the tensor they are given; see module docstring."""

    SPIKE = "spike"
    RECORD = "record"
    RATE = "rate"
    RECORD_RATE = "record_rate"


class Neuron(nn.Module):
    """Base of the activation layers of the zoo: a spiking CUBA LIF or its ANN twin's ReLU.

    Holds the state between timesteps (``reset_state`` starts a sequence) and counts activity:
    ``activity_sum`` (spikes, or nonzero activations for ReLU) over ``activity_count`` elements;
    ``last_count`` is the latest step's count per sample (a tensor of B; one value when the
    output has no batch axis), which the profiler takes instead of counting the output again (and
    sets back to None).
    """

    mode: ExecutionMode = ExecutionMode.SPIKE

    def __init__(self) -> None:
        super().__init__()
        self.activity_sum: Tensor | float = 0.0
        self.activity_count = 0
        self.last_count: Tensor | None = None

    def reset_state(self) -> None:  # pragma: no cover - overridden where there is state
        pass

    def reset_activity(self) -> None:
        self.activity_sum, self.activity_count = 0.0, 0

    def _count(self, active: Tensor) -> None:
        # tensor sums: no host sync per step on a GPU; per sample, so the profiler's standard errors
        # need no second pass over the output
        active = active.detach()
        self.last_count = active.reshape(active.shape[0], -1).sum(1) if active.dim() > 1 else active.sum().reshape(1)
        self.activity_sum = self.activity_sum + self.last_count.sum()
        self.activity_count += active.numel()


class _OneStepRate(torch.autograd.Function):
    """The value r, the gradient e * grad with respect to x: RateBP's neuron output for T = 1 in one
    step (``r + x*e - (x*e).detach()`` makes three full-size tensors for the same)."""

    @staticmethod
    def forward(ctx, x: Tensor, rate: Tensor, eligibility: Tensor) -> Tensor:
        ctx.save_for_backward(eligibility)
        return rate.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (eligibility,) = ctx.saved_tensors
        return grad * eligibility, None, None


class CubaLIF(Neuron):
    """A layer of CUBA LIF neurons; one ``forward`` call is one timestep (in ``SPIKE`` mode).

    In ``RECORD`` mode it also accumulates, for rate-based backpropagation (RateBP, Yu et al.,
    NeurIPS 2024), the firing rate r = mean_t s[t] and the eligibility
    e = mean_t sg'(v[t] - theta) * f[t], where f[t] = dv[t]/dI for an input constant over time
    with the reset not differentiated (as in BPTT here)::

        f_u[t] = (1 - a_u) f_u[t-1] + 1
        f[t]   = (1 - a_v) f[t-1] (1 - s[t-1]) + f_u[t]     (0 while refractory)
        f[t]   = (1 - a_v) f[t-1] + f_u[t]                  (reset="subtract": v - theta keeps dv/dI)

The soft-reset trace is the official RateBP's ``calcu_elig_factor_soft_reset_detach_reset``.

    In ``RATE`` mode it takes the time-averaged input current x and returns
    ``r + x*e - (x*e).detach()``: the recorded rate, with gradient e with respect to x.
    """

    def __init__(self, params: NeuronParams | None = None) -> None:
        super().__init__()
        self.params = params or NeuronParams()
        self.state: CubaState | None = None
        self._trace: tuple[Tensor, Tensor] | None = None
        self.rate: Tensor | None = None
        self.eligibility: Tensor | None = None
        self._steps = 0

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"current_decay={p.current_decay}, voltage_decay={p.voltage_decay}, "
            f"threshold={p.threshold}, refractory_steps={p.refractory_steps}, "
            f"surrogate={p.surrogate}, reset={p.reset}"
        )

    def ir_node(self) -> ir.CubaLIF:
        """This layer as the graph's neuron: the neuron protocol of `snnpipe.models.tracer`."""
        p = self.params
        return ir.CubaLIF(p.current_decay, p.voltage_decay, p.threshold, p.reset, p.refractory_steps)

    def reset_state(self) -> None:
        self.state, self._trace, self._steps = None, None, 0
        if self.mode is ExecutionMode.RECORD:
            self.rate, self.eligibility = None, None

    def forward(self, x: Tensor) -> Tensor:
        if self.mode is ExecutionMode.RATE:
            if self.rate is None or self.eligibility is None:
                raise RuntimeError("RATE mode needs a RECORD pass first")
            return self._rate_output(x)
        if self.mode is ExecutionMode.RECORD_RATE:
            return self._one_step_rate(x)
        if self.mode is ExecutionMode.RECORD:
            return self._record_step(x)
        spikes, self.state = cuba_lif_step(x, self.state, self.params)
        self._count(spikes)
        return spikes

    def _rate_output(self, x: Tensor) -> Tensor:
        # the expression of RateBP's reference code, kept as written: its rounding is part of the
        # results (a custom autograd function returning r exactly moved the default recipe's
        # student by one test image)
        grad_path = x * self.eligibility
        return self.rate + grad_path - grad_path.detach()

    def _one_step_rate(self, x: Tensor) -> Tensor:
        """RECORD and RATE of a one-step sequence from rest, where v = u = I and f = 1 (whatever the
        decays; no neuron is refractory yet): r = s = [I > theta], e = sg'(I - theta). The output's
        value is r and its gradient e, as `_rate_output` gives them, without the RECORD step's
        state and traces."""
        p = self.params
        self.state, self._trace, self._steps = None, None, 1
        with torch.no_grad():
            self.rate = heaviside(x, p.threshold)
            surrogate, scale = SURROGATES_INPLACE[p.surrogate](x - p.threshold, p.surrogate_width)
            self.eligibility = surrogate.mul_(scale)
        self.activity_sum = self.activity_sum + self.rate.sum()
        self.activity_count += self.rate.numel()
        return _OneStepRate.apply(x, self.rate, self.eligibility)

    @torch.no_grad()
    def _record_step(self, x: Tensor) -> Tensor:
        # The same dynamics as cuba_lif_step, in place on tensors this layer owns: the RECORD pass
        # is the graph-free part of RateBP and its cost is paid T times per batch.
        p = self.params
        plain = p.current_decay == 1.0  # u = I: no current state, f_u = 1
        if self.state is None:
            refractory = torch.zeros_like(x) if p.refractory_steps else None
            self.state = CubaState(x if plain else torch.zeros_like(x), torch.zeros_like(x), refractory)
            self._trace = (torch.zeros_like(x), torch.zeros_like(x))
            self.rate, self.eligibility = torch.zeros_like(x), torch.zeros_like(x)
        trace_u, trace_v = self._trace
        current = x if plain else self.state.current.mul_(1.0 - p.current_decay).add_(x)
        voltage = torch.add(current, self.state.voltage, alpha=1.0 - p.voltage_decay, out=self.state.voltage)
        trace_v.mul_(1.0 - p.voltage_decay).add_(1.0 if plain else trace_u.mul_(1.0 - p.current_decay).add_(1.0))
        refractory = self.state.refractory
        if refractory is not None:  # held neurons stay at their reset value, 0
            held = refractory > 0
            voltage.masked_fill_(held, 0.0)
            trace_v.masked_fill_(held, 0.0)
        spikes = heaviside(voltage, p.threshold)
        surrogate, scale = SURROGATES_INPLACE[p.surrogate](voltage - p.threshold, p.surrogate_width)
        self.eligibility.addcmul_(surrogate, trace_v, value=scale)
        self.rate.add_(spikes)
        if p.reset == "subtract":
            voltage.sub_(spikes, alpha=p.threshold)
        else:
            voltage.addcmul_(voltage, spikes, value=-1.0)  # v (1 - s): float ops beat a bool mask here
            trace_v.addcmul_(trace_v, spikes, value=-1.0)
        if refractory is not None:
            refractory.sub_(1).clamp_(min=0).masked_fill_(spikes > 0, p.refractory_steps)
        self.state = CubaState(current, voltage, refractory)
        self._steps += 1
        return spikes

    def finish_record(self) -> None:
        """Turn the sums of a RECORD pass into means over its timesteps."""
        if self._steps == 0 or self.rate is None or self.eligibility is None:
            raise RuntimeError("finish_record() without a RECORD pass")
        self.activity_sum = self.activity_sum + self.rate.sum()
        self.activity_count += self.rate.numel() * self._steps
        self.rate.div_(self._steps)
        self.eligibility.div_(self._steps)


class ReLU(Neuron):
    """The ANN twin's activation: ReLU in every mode, counting nonzero outputs as activity."""

    def ir_node(self) -> ir.Node:
        raise ValueError("this is the ANN twin (ReLU, not spiking neurons); export a spiking checkpoint")

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(x)
        if self.mode is not ExecutionMode.RATE:
            self._count(out > 0)
        return out


class LiState(NamedTuple):
    """State of a leaky integrator: current u and voltage v."""

    current: Tensor
    voltage: Tensor


def cuba_li_step(x: Tensor, state: LiState | None, node: ir.CubaLI) -> tuple[Tensor, LiState]:
    """One timestep of the non-spiking leaky integrator (`ir.CubaLI`; NIR's CubaLI, LI and I)::

        u[t] = (1 - a_u) u[t-1] + x[t]
        v[t] = (1 - a_v) v[t-1] + a_v v_leak + gain u[t] + bias

    Returns:
        (v[t], the new state).
    """
    if state is None:
        state = LiState(torch.zeros_like(x), torch.zeros_like(x))
    current = (1.0 - node.current_decay) * state.current + x
    voltage = (1.0 - node.voltage_decay) * state.voltage + node.gain * current
    constant = node.voltage_decay * node.v_leak + (node.bias or 0.0)
    if constant:
        voltage = voltage + constant
    return voltage, LiState(current, voltage)


class LeakyIntegrator(Neuron):
    """A layer of `cuba_li_step` (one call, one timestep): a non-spiking readout or integrator. Its
    output is graded, so it counts no activity (a firing rate is of spikes)."""

    def __init__(self, node: ir.CubaLI | ir.Integrator) -> None:
        super().__init__()
        self.node = node  # the graph's node as it was (an Integrator stays one)
        self.dynamics = node if isinstance(node, ir.CubaLI) else ir.CubaLI(1.0, 0.0, gain=node.gain)
        self.state: LiState | None = None

    def ir_node(self) -> ir.CubaLI | ir.Integrator:
        return self.node

    def reset_state(self) -> None:
        self.state = None

    def forward(self, x: Tensor) -> Tensor:
        if self.mode is not ExecutionMode.SPIKE:
            raise RuntimeError("a leaky integrator runs one timestep per call; it has no rate-based mode")
        voltage, self.state = cuba_li_step(x, self.state, self.dynamics)
        return voltage


class ThresholdLayer(Neuron):
    """Spikes where the input exceeds ``threshold`` (`ir.Threshold`, NIR's Threshold), no state; the
    gradient is the surrogate of ``params``."""

    def __init__(self, threshold: float, params: NeuronParams | None = None) -> None:
        super().__init__()
        self.threshold, self.params = threshold, params or NeuronParams()

    def ir_node(self) -> ir.Threshold:
        return ir.Threshold(self.threshold)

    def forward(self, x: Tensor) -> Tensor:
        spikes = spike_fn(x - self.threshold, self.params.surrogate, self.params.surrogate_width) \
            if torch.is_grad_enabled() else heaviside(x, self.threshold)
        self._count(spikes)
        return spikes
