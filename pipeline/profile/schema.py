"""The profile's data shapes: `Profile`, its layers, its `Totals`, its energy estimates and break-even
points, and their JSON form (schema ``snnpipe.profile/2``). Nothing here counts: the report and the
gate read these, the stage (`snnpipe.pipeline.profile.stage`) fills them.

Schema 2 added the synaptic layers' structure (weights, fan-in, kernel fan-out, input and output
sizes, input events), the standard errors of the firing rates, the energy ``estimates`` of one energy
model (the SNN and its baselines, split by term) and the ``break_even`` points. A schema-1 profile
still reads (`Profile.from_dict`): its layers get no structure and it has no estimates, so it can be
a firing-rate baseline but not an energy one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Iterable

from snnpipe.errors import SnnpipeError

SCHEMA = "snnpipe.profile/2"
#: Older schemas `Profile.from_dict` still reads.
READABLE = ("snnpipe.profile/1", SCHEMA)


class ProfileError(SnnpipeError):
    """A model, data or baseline that cannot be profiled as asked; the message is one line."""


def _check_counts(obj: Any, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(obj, name)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 for v in values):
            raise ValueError(f"{name}={value!r} must be a count >= 0")


def _check_layer(layer: Any) -> None:
    """A layer profile: a non-empty name; every field but the name and module type a count."""
    if not isinstance(layer.name, str) or not layer.name:
        raise ValueError(f"name={layer.name!r} must be a non-empty string")
    _check_counts(layer, [f.name for f in fields(layer) if f.name not in ("name", "module")])


@dataclass
class SynapseProfile:
    """One synaptic layer's operations per inference (`snnpipe.pipeline.profile.counting` defines them).

    Attributes:
        acs: accumulates, sum over t of the spike events reaching the layer times their fan-out.
        macs: multiply-accumulates of input that is not spikes (and of every ANN layer).
        effective_acs, effective_macs, dense: NeuroBench's definitions of the same layer.
        energy_pj: ``acs * ac_pj + macs * mac_pj`` on the profile's target.
        input_events: spike events reaching the layer per inference (|k| for an input element
            holding the spike count k; every spike in a pooling window is one; none for graded input).
        weights, biases: elements of the weight and the bias.
        fan_in: weights one output element sums (``W[0].numel()``).
        kernel: kernel positions (``prod(W.shape[2:])``; 0 for a dense layer, which has no kernel).
        kernel_fanout: weights one input element addresses: C_out / groups x kernel for a conv,
            the output features for a dense layer (Lemaire et al.'s per-spike fan-out, borders
            not excluded; ``acs`` excludes them).
        inputs, outputs: elements of one sample's input and output at one step.
        dense_macs: MACs of one dense pass of one sample (outputs x fan-in; input elements x
            fan-in for a transposed conv): the ANN twin's count, and the layer's synapses unrolled.
    """

    name: str
    module: str
    acs: float = 0.0
    macs: float = 0.0
    acs_per_step: list[float] = field(default_factory=list)
    macs_per_step: list[float] = field(default_factory=list)
    effective_acs: float = 0.0
    effective_macs: float = 0.0
    dense: float = 0.0
    energy_pj: float = 0.0
    input_events: float = 0.0
    weights: int = 0
    biases: int = 0
    fan_in: int = 0
    kernel: int = 0
    kernel_fanout: int = 0
    inputs: int = 0
    outputs: int = 0
    dense_macs: int = 0
    kind: ClassVar[str] = "synapse"

    def __post_init__(self) -> None:
        _check_layer(self)


@dataclass
class NeuronProfile:
    """One neuron layer's activity per inference (spikes, or nonzero activations in an ANN).

    Attributes:
        neurons: neurons per sample (the activation size); ``state_size`` = neurons x state variables.
        spikes: spikes per inference; ``firing_rate`` = spikes / (neurons x T).
        neuron_updates: neurons x T, ``active_updates`` of them spiked.
        firing_rate_stderr: the standard error of ``firing_rate`` over the samples (std / sqrt(n)).
    """

    name: str
    module: str
    neurons: int = 0
    state_size: int = 0
    spikes: float = 0.0
    firing_rate: float = 0.0
    rate_per_step: list[float] = field(default_factory=list)
    neuron_updates: float = 0.0
    active_updates: float = 0.0
    energy_pj: float = 0.0
    firing_rate_stderr: float = 0.0
    kind: ClassVar[str] = "neuron"

    def __post_init__(self) -> None:
        _check_layer(self)


LayerProfile = SynapseProfile | NeuronProfile
#: ``kind`` -> class: the one table the JSON writer and reader share.
LAYER_KINDS: dict[str, type] = {"synapse": SynapseProfile, "neuron": NeuronProfile}


@dataclass(frozen=True)
class Totals:
    """A profile's sums over its layers, per inference; energies in microjoules (``*_uj``).

    ``snnpipe.pipeline.profile.energy.totals`` fills it: compute energy from the layers' energies,
    data movement ``movement_bits`` priced min to max, ``total_* = compute + movement_*``.
    """

    acs: float = 0.0
    macs: float = 0.0
    effective_acs: float = 0.0
    effective_macs: float = 0.0
    dense: float = 0.0
    spikes: float = 0.0
    neurons: float = 0.0
    state_size: float = 0.0
    neuron_updates: float = 0.0
    firing_rate: float = 0.0
    firing_rate_stderr: float = 0.0
    activation_sparsity: float = 0.0
    synapse_energy_uj: float = 0.0
    neuron_energy_uj: float = 0.0
    compute_energy_uj: float = 0.0
    movement_bits: float = 0.0
    movement_min_uj: float = 0.0
    movement_max_uj: float = 0.0
    total_min_uj: float = 0.0
    total_max_uj: float = 0.0

    def __post_init__(self) -> None:
        # activation sparsity is 1 - density: a fraction, but a count-like value >= 0 as well
        _check_counts(self, [f.name for f in fields(self)])

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


#: The terms an energy estimate is split into (pJ per inference).
TERMS = ("compute", "addressing", "memory", "neuron_state", "static")


@dataclass
class EnergyEstimate:
    """One network priced by one energy model (`snnpipe.pipeline.profile.estimators`), per inference.

    Attributes:
        network: ``snn``, or the baseline it prices: ``ann-fp32``, ``ann-int8``, ``qann-<b>bit``.
        model: the energy model (``ops``, ``memory``, ``chip``).
        precision: the arithmetic it is priced at (a precision's name, or the target's or chip's).
        layers: layer name -> term (`TERMS`) -> pJ, plus ``total``, ``min`` and ``max``.
        terms: term -> pJ, summed over the layers (``static`` is the network's, in no layer).
        total_pj, min_pj, max_pj: the sum of the terms, nominal and over the constants' ranges.
        stderr_pj: the standard error of ``total_pj`` over the samples (0 where it does not vary).
    """

    network: str
    model: str
    precision: str
    layers: dict[str, dict[str, float]]
    terms: dict[str, float]
    total_pj: float
    min_pj: float
    max_pj: float
    stderr_pj: float = 0.0

    def __post_init__(self) -> None:
        for key in ("network", "model", "precision"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"{key}={getattr(self, key)!r} must be a non-empty string")
        unknown = set(self.terms) - set(TERMS)
        if unknown:
            raise ValueError(f"terms: unknown term(s) {', '.join(sorted(unknown))}")
        _check_counts(self, ("total_pj", "min_pj", "max_pj", "stderr_pj"))
        if not self.min_pj <= self.max_pj * (1 + 1e-12):
            raise ValueError(f"min_pj={self.min_pj} is above max_pj={self.max_pj}")

    @property
    def total_uj(self) -> float:
        return self.total_pj * 1e-6


@dataclass
class BreakEven:
    """Where a layer (or the whole network) costs as much as a baseline, scaling its activity.

    The SNN's energy is affine in its activity (every spike, event and AC scaled by k): ``E(k) =
    E0 + k (E1 - E0)``; the baseline's ``E_b`` does not depend on it, so ``k* = (E_b - E0) / (E1 - E0)``.

    Attributes:
        layer: a synaptic layer's name, or ``total``.
        spikes_per_synapse: spike events per synapse per inference now (Dampfhoffer et al.): ACs /
            synapses, synapses = the layer's unrolled connections (dense ops of one step).
        firing_rate: the input's spikes per neuron per step now (``total``: the mean firing rate).
        baselines: baseline -> {``scale``: k*, ``spikes_per_synapse``, ``firing_rate``: their values
            at k*}; None where the SNN's energy does not grow with activity, or already exceeds the
            baseline with no activity at all (k* < 0).
    """

    layer: str
    spikes_per_synapse: float
    firing_rate: float
    baselines: dict[str, dict[str, float] | None] = field(default_factory=dict)


@dataclass
class Profile:
    """A network's activity, operations and energy per inference, layer by layer.

    Attributes:
        layers: synaptic and neuron layers in the order the model first calls them.
        totals: sums over the layers and the energies.
        ann: the ANN twin's profile (a checkpoint's SNN only), layer names matching the SNN's.
        comparison: ANN / SNN ratios of compute and total energy, where there is a twin.
        energy_model: the energy model of ``estimates`` (``ops``, ``memory``, ``chip``).
        estimates: ``snn`` and each baseline (``ann-fp32``, ``ann-int8``, ``qann-<b>bit``) priced.
        break_even: per synaptic layer and ``total``, the activity at which the SNN costs as much
            as each baseline.
        energy_sources: constant (or constant set) -> its source, for every number the estimates used.
        samples_requested: the samples asked for, where the data held fewer (``samples`` ran); else None.
        delay_steps: the steps the network ran after its T input steps (Loihi's timing: one per
            layer), counted in ``timesteps``: T = ``timesteps - delay_steps``.
        fit: the network on each chip asked for (``profile --chips``: `snnpipe.pipeline.fit`,
            each a ``ChipFit.to_dict``); empty where none was.
    """

    model: str
    spiking: bool
    timesteps: int
    samples: int
    target: dict[str, Any]
    layers: list[LayerProfile]
    totals: Totals
    accuracy: float | None = None
    dataset: str | None = None
    encoding: str | None = None
    ann: "Profile | None" = None
    comparison: dict[str, float] = field(default_factory=dict)
    energy_model: str | None = None
    estimates: dict[str, EnergyEstimate] = field(default_factory=dict)
    break_even: list[BreakEven] = field(default_factory=list)
    energy_sources: dict[str, str] = field(default_factory=dict)
    samples_requested: int | None = None
    delay_steps: int = 0
    fit: list[dict[str, Any]] = field(default_factory=list)
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if self.schema != SCHEMA:
            raise ValueError(f"schema={self.schema!r} is not {SCHEMA!r}")
        if not isinstance(self.timesteps, int) or self.timesteps < 1:
            raise ValueError(f"timesteps={self.timesteps!r} must be an integer >= 1")
        if not isinstance(self.delay_steps, int) or not 0 <= self.delay_steps < self.timesteps:
            raise ValueError(f"delay_steps={self.delay_steps!r} must be an integer from 0 to timesteps - 1")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples={self.samples!r} must be an integer >= 1")
        if not isinstance(self.totals, Totals):
            raise ValueError(f"totals={type(self.totals).__name__} must be Totals")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError("layers: names must be unique")

    def layer(self, name: str) -> LayerProfile:
        """The layer called ``name`` (its module path in the model)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def synapses(self) -> list[SynapseProfile]:
        return [layer for layer in self.layers if isinstance(layer, SynapseProfile)]

    @property
    def neuron_layers(self) -> list[NeuronProfile]:
        return [layer for layer in self.layers if isinstance(layer, NeuronProfile)]

    def to_dict(self) -> dict[str, Any]:
        skip = ("layers", "ann", "totals", "estimates", "break_even")
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        data["layers"] = [{"kind": layer.kind, **asdict(layer)} for layer in self.layers]
        data["totals"] = self.totals.to_dict()
        data["ann"] = self.ann.to_dict() if self.ann is not None else None
        data["estimates"] = {name: asdict(e) for name, e in self.estimates.items()}
        data["break_even"] = [asdict(b) for b in self.break_even]
        return {"schema": data.pop("schema"), **data}

    @classmethod
    def from_dict(cls, data: Any) -> "Profile":
        """Read what `to_dict` wrote, in this schema or an older one (`READABLE`). Raises
        ProfileError on anything else."""
        if not isinstance(data, dict) or data.get("schema") not in READABLE:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ProfileError(f"not an snnpipe profile: schema {found!r}, expected one of {', '.join(READABLE)}")
        try:
            layers = []
            for raw in data["layers"]:
                raw = dict(raw)
                layers.append(LAYER_KINDS[raw.pop("kind")](**raw))
            ann = cls.from_dict(data["ann"]) if data.get("ann") is not None else None
            totals = Totals(**data["totals"])
            estimates = {name: EnergyEstimate(**raw) for name, raw in (data.get("estimates") or {}).items()}
            break_even = [BreakEven(**raw) for raw in data.get("break_even") or []]
            # schema 1 had no structure, estimates or break-even: read as a profile without them
            return cls(**{**data, "layers": layers, "ann": ann, "totals": totals, "estimates": estimates,
                          "break_even": break_even, "schema": SCHEMA})
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(f"malformed snnpipe profile ({type(err).__name__}: {err})") from None
