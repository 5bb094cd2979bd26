"""Was the spiking network worth it? The SNN and its fair baselines priced by one energy model, the
break-even activity per layer and in total, and the standard errors over the samples.

- Baselines: the ANN twin (the same synaptic layers run once, densely; `estimators.base.ann_view`)
  priced three ways: FP32 and INT8 (Horowitz 2014), and the quantized ANN with ceil(log2(T+1))-bit
  activations and 8-bit weights (Yan et al., arXiv 2409.08290). The ``chip`` model prices them
  with the ``memory`` model: an ANN runs on a conventional accelerator.
- Break-even: the SNN's energy is affine in its activity, ``E(k) = E0 + k (E1 - E0)`` with every
  spike, input event and AC scaled by k (graded input's MACs stay): it equals a baseline's ``E_b``
  at ``k* = (E_b - E0) / (E1 - E0)``, i.e. at k* times today's spikes per synapse and firing rate.
  Dampfhoffer et al. (IEEE TETCI 2023) find SNNs beating an efficient ANN between 0.15 and 1.38
  spikes per synapse per inference once memory is counted (`DAMPFHOFFER_BAND`), the reference band
  of the report's plot.
- Standard errors: the models' arithmetic is + and x on counts, so pricing the per-sample counts
  (tensors of N) gives every sample's energy; stderr = std / sqrt(N) (``ddof`` 1).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.energy import EnergyTarget
from snnpipe.hw_targets.memory import HOROWITZ_45NM, MemoryModel
from snnpipe.hw_targets.precision import PRECISIONS, Precision, qann
from snnpipe.pipeline.profile.estimators import ENERGY_MODELS, Priced
from snnpipe.pipeline.profile.estimators.base import ZERO, NetworkView, ann_view, network_view, sample_view, scaled
from snnpipe.pipeline.profile.schema import TERMS, BreakEven, EnergyEstimate, ProfileError

#: Dampfhoffer et al., "Are SNNs really more energy-efficient than ANNs? An in-depth hardware-aware
#: study", IEEE TETCI 7(3) 2023: SNNs win between these spikes per synapse per inference.
DAMPFHOFFER_BAND = (0.15, 1.38)
DAMPFHOFFER = "Dampfhoffer et al., IEEE TETCI 2023: SNN break-even 0.15-1.38 spikes per synapse per inference"


def stderr(values: torch.Tensor) -> float:
    """std / sqrt(n) over the samples (0 for fewer than two)."""
    n = values.numel()
    return float(values.double().std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0


def to_estimate(priced: Priced, network: str, model: str, precision: str, samples: Priced | None = None) -> EnergyEstimate:
    """A `Priced` network as the schema's `EnergyEstimate` (floats), with the standard error of
    ``samples`` (the same network priced per sample)."""
    layers = {}
    for name, terms in priced.layers.items():
        total = sum(terms.values(), ZERO)
        layers[name] = {**{t: float(v.nom) for t, v in terms.items()},
                        "total": float(total.nom), "min": float(total.lo), "max": float(total.hi)}
    total = priced.total()
    error = stderr(samples.total().nom) if samples is not None and isinstance(samples.total().nom, torch.Tensor) else 0.0
    return EnergyEstimate(network, model, precision, layers, {t: float(v.nom) for t, v in priced.terms().items() if t in TERMS},
                          float(total.nom), float(total.lo), float(total.hi), error)


def baseline_precisions(timesteps: int) -> dict[str, Precision]:
    """The baselines' precisions: ``ann-fp32``, ``ann-int8``, ``qann-<b>bit`` for T steps."""
    q = qann(timesteps)
    return {"ann-fp32": PRECISIONS["fp32"], "ann-int8": PRECISIONS["int8"], q.name: q}


def estimate_energy(layers: list, steps: int, timesteps: int, spiking: bool, model: str, *, target: EnergyTarget,
                    precision: Precision, chip: Chip, memory: MemoryModel = HOROWITZ_45NM,
                    samples: dict[str, dict[str, Any]] | None = None, firing_rate: float = 0.0,
                    ) -> tuple[dict[str, EnergyEstimate], list[BreakEven], dict[str, str]]:
    """Price a profile's layers with ``model`` and its baselines; the break-even points; the sources of
    the constants used.

    Args:
        layers: the profile's `SynapseProfile` and `NeuronProfile` layers (per inference).
        steps: the steps the network ran (T, plus a Loihi-timed model's delay steps).
        timesteps: T, for the quantized ANN's activation bits.
        spiking: an SNN (else only the network itself is priced, as ``ann``).
        model: a registered energy model (`ENERGY_MODELS`).
        target, precision, chip, memory: the constants: ``ops`` prices an SNN at ``target``,
            ``memory`` at ``precision``, ``chip`` on ``chip``.
        samples: per-sample counts (layer -> field -> tensor), for the standard error.
        firing_rate: the network's mean firing rate, for the total's break-even rate.

    Raises:
        ProfileError: an unknown energy model.
    """
    if model not in ENERGY_MODELS:
        raise ProfileError(f"unknown energy model {model!r}: choose one of {', '.join(ENERGY_MODELS)}")
    entry = ENERGY_MODELS[model]
    costs = {"target": target, "precision": precision, "chip": chip, "memory": memory}
    label = {"ops": target.name, "memory": precision.name, "chip": chip.name}.get(model, model)
    net = network_view(layers, steps, spiking)
    priced = entry.price(net, **costs)
    per_sample = entry.price(sample_view(net, samples), **costs) if samples else None
    estimates = {"snn" if spiking else "ann": to_estimate(priced, "snn" if spiking else "ann", model, label, per_sample)}
    sources = _sources(model, target, precision, chip, memory)
    if not spiking:
        return estimates, [], sources
    base = ENERGY_MODELS[entry.baseline]
    precisions = baseline_precisions(timesteps)
    baselines = {name: base.price(ann_view(net), **{**costs, "precision": p}) for name, p in precisions.items()}
    for name, b in baselines.items():
        estimates[name] = to_estimate(b, name, base.name, name.removeprefix("ann-"))
    for name, p in precisions.items():
        sources.update(_sources(base.name, target, p, chip, memory, prefix=f"{name}: "))
    sources["break-even band"] = DAMPFHOFFER
    return estimates, break_even(net, entry.price, costs, priced, baselines, firing_rate), sources


def _sources(model: str, target: EnergyTarget, precision: Precision, chip: Chip, memory: MemoryModel,
             prefix: str = "") -> dict[str, str]:
    """The constants a model used, with their sources (``ops``: the target's own, listed by the report)."""
    from snnpipe.pipeline.profile.estimators.memory import ADDRESS, EVENT_BITS, FIFO_EVENTS

    if model == "ops":
        return {f"{prefix}MAC {precision.mac_pj:.3g} pJ": precision.source} if prefix else {}
    if model == "chip":
        return {f"{chip.name}.{k} = {getattr(chip, k)}": v for k, v in chip.sources.items()
                if k not in chip.limits}  # the limits are the fit's (`hw_targets.fit`), not priced
    return {f"{prefix}{precision.name}: add {precision.add_pj:.3g} pJ, mult {precision.mult_pj:.3g} pJ, "
            f"{precision.bits}-bit weights, {precision.act_bits}-bit activations, {precision.state_bits}-bit state":
            precision.source,
            f"{prefix}memory access by size": memory.source,
            f"{prefix}address arithmetic: INT32 add {ADDRESS.add_pj} pJ, mult {ADDRESS.mult_pj} pJ": ADDRESS.source,
            f"{prefix}spike events: {EVENT_BITS} bit, FIFO of {FIFO_EVENTS}":
            "Lemaire et al., ICONIP 2022 (arXiv 2210.13107), experiments; SpikingJelly 2 LemaireEnergyConfig defaults"}


def _point(e0: float, e1: float, eb: float, sps: float, rate: float) -> dict[str, float] | None:
    if not e1 > e0:
        return None
    k = (eb - e0) / (e1 - e0)
    return None if k < 0 else {"scale": k, "spikes_per_synapse": k * sps, "firing_rate": k * rate}


def break_even(net: NetworkView, price, costs: dict, priced: Priced, baselines: dict[str, Priced],
               firing_rate: float) -> list[BreakEven]:
    """Per event-driven synaptic layer and in total, the activity at which the SNN costs as much as
    each baseline (module docstring)."""
    idle = price(scaled(net, 0.0), **costs)
    rows = []
    driven = [s for s in net.synapses if net.event_driven(s)]
    for s in driven:
        sps = s.acs / s.dense_macs if s.dense_macs else 0.0
        rate = s.input_events / (s.inputs * net.timesteps) if s.inputs else 0.0
        e1, e0 = priced.layer_total(s.name).nom, idle.layer_total(s.name).nom
        rows.append(BreakEven(s.name, sps, rate, {n: _point(e0, e1, b.layer_total(s.name).nom, sps, rate)
                                                  for n, b in baselines.items()}))
    synapses = sum(s.dense_macs for s in driven)
    sps = sum(s.acs for s in driven) / synapses if synapses else 0.0
    e1, e0 = priced.total().nom, idle.total().nom
    rows.append(BreakEven("total", sps, firing_rate, {n: _point(e0, e1, b.total().nom, sps, firing_rate)
                                                      for n, b in baselines.items()}))
    return rows
