"""What every energy model shares: `Span` (a value with its range), the network as the models read
it (`NetworkView`: counts that may be per-sample tensors), the ANN baseline's view, activity
scaling for the break-even points, and the registry of energy models.

An energy model is a callable ``model(net, costs) -> Priced``: for every layer of ``net`` a dict of
terms (`TERMS`) -> `Span` in pJ per inference, and the network's own terms (static energy). Its
arithmetic uses only + and x on the counts, so the same code prices one profile (floats) and every
sample at once (tensors of N samples: the standard error).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, Callable

from snnpipe.pipeline.profile.schema import TERMS, NeuronProfile, SynapseProfile
from snnpipe.registry import register_into


@dataclass(frozen=True)
class Span:
    """A nominal value and its range (lo <= nom <= hi), e.g. an energy over a constant's published range."""

    nom: Any
    lo: Any
    hi: Any

    @classmethod
    def of(cls, value: Any) -> "Span":
        """A value without a range."""
        return cls(value, value, value)

    def __add__(self, other: "Span | float") -> "Span":
        other = other if isinstance(other, Span) else Span.of(other)
        return Span(self.nom + other.nom, self.lo + other.lo, self.hi + other.hi)

    __radd__ = __add__

    def __mul__(self, other: "Span | float") -> "Span":
        """A count (>= 0) times a cost, or a cost times a cost (both >= 0)."""
        other = other if isinstance(other, Span) else Span.of(other)
        return Span(self.nom * other.nom, self.lo * other.lo, self.hi * other.hi)

    __rmul__ = __mul__


ZERO = Span.of(0.0)

#: The counts that follow activity (scaled by `scaled`, per sample in `sample_view`).
SYNAPSE_ACTIVITY = ("acs", "input_events")
NEURON_ACTIVITY = ("spikes", "active_updates")


@dataclass
class NetworkView:
    """A network as the energy models read it.

    Attributes:
        synapses, neurons: the layers (`SimpleNamespace` with the fields of `SynapseProfile` /
            `NeuronProfile`); a count may be a tensor of per-sample values.
        order: the names of all layers in the order the model runs them.
        timesteps: the steps the network runs (T; for a model in Loihi's timing, T + its delays).
        spiking: an SNN (event-driven synapses) or an ANN (dense).
    """

    synapses: list[SimpleNamespace]
    neurons: list[SimpleNamespace]
    order: list[str]
    timesteps: int
    spiking: bool

    def event_driven(self, layer: SimpleNamespace) -> bool:
        """Whether spikes reach a synaptic layer (ACs); ``layer.dense_driven``: whether graded values
        do (MACs). A layer can have both (some samples' steps graded). Structure, not counts, so
        that a scaled or per-sample view answers alike."""
        return self.spiking and layer.spike_driven


@dataclass
class Priced:
    """A model's pricing of one network: layer -> term -> Span, and the network's own terms."""

    layers: dict[str, dict[str, Span]]
    network: dict[str, Span] = field(default_factory=dict)

    def layer_total(self, name: str) -> Span:
        return sum(self.layers.get(name, {}).values(), ZERO)

    def total(self) -> Span:
        return sum((self.layer_total(n) for n in self.layers), sum(self.network.values(), ZERO))

    def terms(self) -> dict[str, Span]:
        out = {term: ZERO for term in TERMS}
        for terms in [*self.layers.values(), self.network]:
            for term, value in terms.items():
                out[term] = out[term] + value
        return out


def _namespace(layer: SynapseProfile | NeuronProfile, **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(**{k: getattr(layer, k) for k in layer.__dataclass_fields__}, **extra)


def network_view(layers: list, timesteps: int, spiking: bool) -> NetworkView:
    """The view of a profile's layers (`SynapseProfile`, `NeuronProfile`)."""
    synapses = [_namespace(l, dense_driven=l.macs > 0 or not spiking,
                           spike_driven=spiking and (l.acs > 0 or l.macs == 0))
                for l in layers if isinstance(l, SynapseProfile)]
    neurons = [_namespace(l) for l in layers if isinstance(l, NeuronProfile)]
    return NetworkView(synapses, neurons, [l.name for l in layers], timesteps, spiking)


def ann_view(net: NetworkView) -> NetworkView:
    """The ANN twin of a network, from its structure: the same synaptic layers run once, densely (every
    input read, ``dense_macs`` MACs), every neuron an activation written once (T = 1)."""
    synapses = [SimpleNamespace(**{**vars(l), "acs": 0.0, "macs": float(l.dense_macs), "input_events": float(l.inputs),
                                   "dense_driven": True, "spike_driven": False}) for l in net.synapses]
    neurons = [SimpleNamespace(**{**vars(l), "spikes": float(l.neurons), "active_updates": float(l.neurons),
                                  "neuron_updates": float(l.neurons)}) for l in net.neurons]
    return NetworkView(synapses, neurons, net.order, 1, False)


def scaled(net: NetworkView, k: float) -> NetworkView:
    """The same network with its activity times k: every AC, input event, spike and active update of
    the event-driven part (graded input's MACs stay)."""
    synapses = [SimpleNamespace(**{**vars(l), **({f: getattr(l, f) * k for f in SYNAPSE_ACTIVITY}
                                                  if net.event_driven(l) else {})}) for l in net.synapses]
    neurons = [SimpleNamespace(**{**vars(l), **{f: getattr(l, f) * k for f in NEURON_ACTIVITY}}) for l in net.neurons]
    return replace(net, synapses=synapses, neurons=neurons)


def sample_view(net: NetworkView, samples: dict[str, dict[str, Any]]) -> NetworkView:
    """The network with its counts replaced by per-sample tensors (``samples``: layer -> field ->
    tensor of N; `metrics.compute_samples`' ``active`` is ``active_updates``)."""
    rename = {"active": "active_updates"}
    def swap(layer: SimpleNamespace) -> SimpleNamespace:
        values = {rename.get(k, k): v for k, v in samples.get(layer.name, {}).items()}
        return SimpleNamespace(**{**vars(layer), **values})
    return replace(net, synapses=[swap(l) for l in net.synapses], neurons=[swap(l) for l in net.neurons])


@dataclass(frozen=True)
class EnergyModelEntry:
    """A registered energy model.

    Attributes:
        name: what ``--energy-model`` selects.
        price: ``price(net, **costs) -> Priced``.
        description: one line for reports and ``--help``.
        baseline: the model that prices its ANN baselines (itself, or ``memory`` for a chip).
    """

    name: str
    price: Callable[..., Priced]
    description: str
    baseline: str


ENERGY_MODELS: dict[str, EnergyModelEntry] = {}


def register_energy_model(name: str, description: str, baseline: str | None = None):
    """Decorator: register ``price(net, **costs) -> Priced`` as the energy model ``name``; a taken
    name is refused."""

    def wrap(price: Callable[..., Priced]) -> Callable[..., Priced]:
        register_into(ENERGY_MODELS, name, "energy model")(EnergyModelEntry(name, price, description, baseline or name))
        return price

    return wrap
