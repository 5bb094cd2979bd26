"""The profile's data shapes: `Profile`, its layers and its `Totals`, and their JSON form
(schema ``snnpipe.profile/1``). Nothing here counts: the report and the gate read these, the stage
(`snnpipe.pipeline.profile.stage`) fills them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Iterable

from snnpipe.errors import SnnpipeError

SCHEMA = "snnpipe.profile/1"


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


@dataclass
class Profile:
    """A network's activity, operations and energy per inference, layer by layer.

    Attributes:
        layers: synaptic and neuron layers in the order the model first calls them.
        totals: sums over the layers and the energies.
        ann: the ANN twin's profile (a checkpoint's SNN only), layer names matching the SNN's.
        comparison: ANN / SNN ratios of compute and total energy, where there is a twin.
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
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if self.schema != SCHEMA:
            raise ValueError(f"schema={self.schema!r} is not {SCHEMA!r}")
        if not isinstance(self.timesteps, int) or self.timesteps < 1:
            raise ValueError(f"timesteps={self.timesteps!r} must be an integer >= 1")
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
        skip = ("layers", "ann", "totals")
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        data["layers"] = [{"kind": layer.kind, **asdict(layer)} for layer in self.layers]
        data["totals"] = self.totals.to_dict()
        data["ann"] = self.ann.to_dict() if self.ann is not None else None
        return {"schema": data.pop("schema"), **data}

    @classmethod
    def from_dict(cls, data: Any) -> "Profile":
        """Read what `to_dict` wrote. Raises ProfileError on anything else."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ProfileError(f"not an snnpipe profile: schema {found!r}, expected {SCHEMA!r}")
        try:
            layers = []
            for raw in data["layers"]:
                raw = dict(raw)
                layers.append(LAYER_KINDS[raw.pop("kind")](**raw))
            ann = cls.from_dict(data["ann"]) if data.get("ann") is not None else None
            totals = Totals(**data["totals"])
            return cls(**{**data, "layers": layers, "ann": ann, "totals": totals})
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(f"malformed snnpipe profile ({type(err).__name__}: {err})") from None
