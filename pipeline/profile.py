"""``profile(model_or_checkpoint, data, timesteps, target) -> Profile``: spikes, synaptic operations,
energy and data movement, per layer and per timestep, for an SNN and its ANN twin.

**What is counted** (SPEC §5), by forward hooks, on one inference (all numbers are per sample):

- Synaptic layers (``nn.Linear``, ``nn.Conv1d/2d/3d``), at every timestep t:

  - ``acs``, accumulates: sum over t of sum over the spikes reaching the layer of their fan-out,
    the number of outputs a spike reaches through nonzero weights. The fan-out is exact at the
    borders: a pixel in the corner of a padded 3x3 conv reaches 4 outputs, not 9. It is the
    gradient of sum(conv(x, binarized W)) with respect to x, computed once per layer, so
    ``sum_i [x_i != 0] * fanout_i`` equals NeuroBench's replay of the layer on binarized input
    and weights (``Effective_ACs``) without replaying it.
  - ``macs``, multiply-accumulates, for input that is not spikes (the first layer under direct
    encoding) and for every layer of the ANN twin: output elements x fan-in, the padded window
    included: SPEC §5's dense count (3x64x9 x 32x32 x T for ResNet-18's stem). A stem that the
    zoo runs once for a static input (see "contract") is still counted at every timestep.
  - Average pooling between spiking neurons and a synaptic layer folds into that layer, as it does
    on Loihi (SPEC §4): every spike inside a pooling window is one event with the fan-out of its
    pooled pixel, so ``acs`` sums spike counts per window times fan-out. (Overlapping windows count
    each path.) Any other non-spike input is MACs.
  - NeuroBench's own definitions, side by side, for comparison with other tools:
    ``effective_acs`` / ``effective_macs`` (nonzero inputs x fan-out, for calls whose input is /
    is not in {0, 1, -1}: pooled spikes are MACs there) and ``dense`` (every input, every weight,
    exact at the borders).

- Neuron layers (snnpipe `Neuron`, snnTorch ``SpikingNeuron``, ``nn.ReLU``): spikes (nonzero
  outputs; activations for the ANN) per timestep, firing rate = spikes / (neurons x T), neuron
  updates = neurons x T (``active_updates`` of them spiked), activation size (``neurons``) and
  membrane size (``state_size`` = neurons x state variables: u and v for CUBA LIF, ``mem`` for
  snnTorch ``Leaky``, ``syn`` and ``mem`` for ``Synaptic``).

**Energy** with an `EnergyTarget` (``hw_targets/energy.py``)::

    E_compute = ACs * ac_pj + MACs * mac_pj + active * neuron_pj + inactive * neuron_inactive_pj
              + spikes * spike_pj
    bits_ANN  = 2 * sum(activation sizes) * 32                        (Joint A-SNN §5.4)
    bits_SNN  = T * 2 * sum(activation sizes) * 32 + spikes * 1       (membrane potentials + spikes)
    E_move    = bits / 64 * [move64_min_pj, move64_max_pj]

Totals add up the layers; ``comparison`` gives ANN / SNN for compute and total energy.

**Contract for any model** (the zoo is one case of it): ``profile(model, data, timesteps)``.

- ``data``: a tensor x of shape (T, B, ...), or an iterable of such x or of ``(x, y)`` batches
  (y: labels, for accuracy).
- ``run(model, x) -> logits (B, classes)`` runs your time loop; by default ``model(x).mean(0)``
  (a zoo model or any module that takes (T, B, ...) and returns (T, B, classes)).
- Within one batch every counted layer is called once per timestep, in step order, on a
  batch-first tensor of that step. A synaptic layer may instead be called once on a (B, ...)
  tensor: it is then taken as computing a static input and counted at every timestep (the zoo
  does this under direct encoding). Other call counts raise `ProfileError`.
- Spiking layers are snnpipe `Neuron`s or snnTorch neurons (``Leaky``, ``Synaptic`` ...: the
  first element of a tuple output is the spikes). Reset your state inside ``run``.

Example, a snnTorch model with its own loop::

    def run(net, x):
        mem = net.lif.init_leaky()
        out = []
        for x_t in x:
            spk, mem = net.lif(net.fc(x_t), mem)
            out.append(net.fc2(spk))
        return torch.stack(out).mean(0)

    p = profile(net, [(x, y)], timesteps=25, run=run, target="loihi")
    p.totals["acs"], p.totals["compute_energy_uj"]
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.energy import EnergyTarget, get_target
from snnpipe.models.neurons import CubaLIF, Neuron, ReLU
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.data import TEST_BATCH_SIZE

SCHEMA = "snnpipe.profile/1"

#: Layers whose operations are counted: NeuroBench's stateless connection layers.
SYNAPSES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Pooling that folds into the next synaptic layer when it pools spikes.
POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
#: snnTorch neurons by class name: how many state variables (membrane size per neuron) each keeps,
#: for when it returns the spikes alone (``init_hidden=True``).
_SNNTORCH_STATES = {"Leaky": 1, "Lapicque": 1, "RLeaky": 1, "Synaptic": 2, "RSynaptic": 2, "Alpha": 3}


class ProfileError(SnnpipeError):
    """A model, data or baseline that cannot be profiled as asked; the message is one line."""


# --- the report's data shapes ---------------------------------------------------------------------

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
    """One synaptic layer's operations per inference; see the module docstring for each count."""

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
    """One neuron layer's activity per inference (spikes, or nonzero activations in an ANN)."""

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


@dataclass
class Profile:
    """A network's activity, operations and energy per inference, layer by layer.

    Attributes:
        layers: synaptic and neuron layers in the order the model first calls them.
        totals: sums over the layers and the energies (``*_uj``: microjoules per inference).
        ann: the ANN twin's profile (a checkpoint's SNN only), layer names matching the SNN's.
        comparison: ANN / SNN ratios of compute and total energy, where there is a twin.
    """

    model: str
    spiking: bool
    timesteps: int
    samples: int
    target: dict[str, Any]
    layers: list[LayerProfile]
    totals: dict[str, float]
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
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("layers", "ann")}
        data["layers"] = [{"kind": layer.kind, **asdict(layer)} for layer in self.layers]
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
            return cls(**{**data, "layers": layers, "ann": ann})
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(f"malformed snnpipe profile ({type(err).__name__}: {err})") from None


# --- metrics: stateless callables, and accumulating ones with update / compute / reset -------------

def is_binary(x: Tensor) -> Tensor:
    """NeuroBench's test for spikes: every value is 0, 1 or -1 (a 0-dim bool tensor: no synchronisation)."""
    return ((x == 0) | (x.abs() == 1)).all()


@dataclass
class SpikeSource:
    """A layer's output known to be spikes: 0/1 (``divisor`` None) or average-pooled 0/1 spikes
    (``tensor * divisor`` counts the spikes in each window). `reduce` sums it over its first (batch)
    dimension once for every layer it feeds: ``sums``, its values per position, and for pooled
    spikes ``nonzero`` (nonzero values per position) and ``peak`` (its largest value)."""

    tensor: Tensor
    divisor: Tensor | None = None
    may_exceed_one: bool = False  # pooled: whether a value can be above 1 (a sum pooling)
    sums: Tensor | None = None
    nonzero: Tensor | None = None
    peak: Tensor | None = None

    @property
    def kind(self) -> str:
        return "spikes" if self.divisor is None else "pooled"

    def holds(self, x: Tensor) -> bool:
        """x is this tensor or a view of it (see `_Recorder.start_batch`)."""
        return x.data_ptr() == self.tensor.data_ptr() and x.numel() == self.tensor.numel()

    def reduce(self, rows: Tensor) -> "SpikeSource":
        """These sums for ``rows``, a view of the tensor with the batch first: from this source when
        both are contiguous with the same first dimension (they split the memory alike), else anew."""
        if not (rows.shape[0] == self.tensor.shape[0] and rows.is_contiguous() and self.tensor.is_contiguous()):
            return SpikeSource(rows, self.divisor, self.may_exceed_one).reduce(rows)
        if self.sums is None:
            # a float sum of 0/1 counts them many times faster than count_nonzero; pooled spikes
            # are >= 0, so their signs count the nonzero ones
            self.sums = self.tensor.sum(0).flatten()
            if self.divisor is not None:
                self.nonzero = self.tensor.sign().sum(0).flatten()
                self.peak = self.tensor.amax() if self.may_exceed_one else None
        return self


@dataclass
class SynapticCall:
    """One call of a synaptic layer, reduced over its rows (the batch) to one input's positions,
    flat, with no synchronisation: what `SynapticCounts.counts` needs. ``nonzero``: nonzero inputs
    per position; for ``"pooled"`` input also ``spikes`` (its values per position, before the
    divisor), ``peak`` (its largest value) and ``pool_divisor``; for ``"other"`` input ``binary``
    (NeuroBench's value test)."""

    source: str
    rows: int
    outputs: int
    shape: tuple[int, ...]
    nonzero: Tensor | None = None
    spikes: Tensor | None = None
    peak: Tensor | None = None
    binary: Tensor | None = None
    pool_divisor: Tensor | None = None


class SynapticCounts:
    """The operations of a synaptic layer, per call; it caches the layer's fan-outs.

    ``reduce(x, y, source)`` runs in the forward hook: for input x, output y and x's `SpikeSource`
    (None when x is not known to be spikes: NeuroBench's value test decides), it keeps only the
    per-position sums of x over its rows. ``counts(calls, ann)`` then gives, per call, ``acs, macs,
    effective_acs, effective_macs, dense`` summed over its rows, all calls of a batch in a few
    tensor operations; ``ann``: a layer of the ANN twin (every op a dense MAC).
    """

    def __init__(self, module: nn.Module) -> None:
        if not isinstance(module, SYNAPSES):
            raise TypeError(f"{type(module).__name__} is not one of {', '.join(t.__name__ for t in SYNAPSES)}")
        self.module = module
        self.linear = isinstance(module, nn.Linear)
        self.fan_in = module.in_features if self.linear else module.weight[0].numel()
        self._fanouts: dict[tuple[int, ...], tuple[Tensor, int]] = {}

    def fanout(self, shape: tuple[int, ...]) -> tuple[Tensor, int]:
        """(outputs each input element reaches through a nonzero weight, shaped like one input, as
        float64; connections of an all-ones input through all weights), exact at the borders."""
        if shape not in self._fanouts:
            weight = self.module.weight.detach()
            nonzero = (weight != 0).to(torch.float64)
            if self.linear:
                reach, dense = nonzero.sum(0), weight.numel()
            else:
                reach = self._conv_reach(shape, nonzero)
                dense = int(self._conv_reach(shape, torch.ones_like(nonzero)).sum())
            self._fanouts[shape] = (reach.flatten(), dense)
        return self._fanouts[shape]

    def _conv_reach(self, shape: tuple[int, ...], weight: Tensor) -> Tensor:
        # d sum(conv(x, W)) / dx_i = sum of the weights x_i meets = its fan-out for 0/1 weights;
        # _conv_forward applies the layer's own padding mode, stride, dilation and groups
        probe = torch.zeros((1, *shape), dtype=torch.float64, device=weight.device, requires_grad=True)
        with torch.enable_grad():
            out = self.module._conv_forward(probe, weight, None)
            (reach,) = torch.autograd.grad(out.sum(), probe)
        return reach[0]

    def rows(self, x: Tensor) -> Tensor:
        """x as (rows, one input): the batch (and a Linear's leading dimensions) first."""
        if self.linear:
            return x.reshape(-1, x.shape[-1])
        return x if x.dim() == self.module.weight.dim() else x.unsqueeze(0)  # unbatched input

    def reduce(self, x: Tensor, y: Tensor, source: SpikeSource | None = None) -> SynapticCall:
        rows = self.rows(x)
        call = SynapticCall("other" if source is None else source.kind, rows.shape[0], y.numel(), tuple(rows.shape[1:]))
        if source is None:
            call.nonzero, call.binary = torch.count_nonzero(rows, dim=0).flatten(), is_binary(rows)
            return call
        source = source.reduce(rows)
        call.nonzero = source.sums if source.divisor is None else source.nonzero
        call.spikes, call.peak, call.pool_divisor = source.sums, source.peak, source.divisor
        return call

    def counts(self, calls: list[SynapticCall], ann: bool = False) -> list[dict[str, float]]:
        """Per call, its operations (class docstring): the calls of one source and input shape at once."""
        out: list[dict[str, float]] = [{} for _ in calls]
        groups: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        for i, call in enumerate(calls):
            groups.setdefault((call.source, call.shape), []).append(i)
        for (source, shape), index in groups.items():
            reach, dense_per_row = self.fanout(shape)
            group = [calls[i] for i in index]
            effective, binary, acs = self._effective(group, reach)
            for i, call, eff, is_bin, ac in zip(index, group, effective.tolist(), binary.tolist(), acs.tolist()):
                counts = dict.fromkeys(SynapticOperations.FIELDS, 0.0)
                counts["dense"] = float(call.rows * dense_per_row)
                counts["effective_acs" if is_bin else "effective_macs"] = eff
                if not ann and (is_bin or source == "pooled"):  # pooled: folded into this layer
                    counts["acs"] = ac
                else:
                    counts["macs"] = float(call.outputs * self.fan_in)
                out[i] = counts
        return out

    @staticmethod
    def _effective(group: list[SynapticCall], reach: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """For calls of one source: (NeuroBench's effective ops, whether the input is 0/1/-1, the
        ACs when it is spikes), one value per call."""
        nonzero = torch.stack([c.nonzero for c in group]).to(torch.float64)
        effective = nonzero @ reach
        source = group[0].source
        if source == "spikes":
            return effective, torch.ones(len(group), dtype=torch.bool), effective
        if source == "other":
            return effective, torch.stack([c.binary for c in group]), effective
        # Pooled spikes, values k / d (k spikes in a window of divisor d): every spike in a window is
        # an event with the window's fan-out (as on Loihi); every value is 0 or 1 iff every k <= d
        # and sum(k) = sum([k > 0] * d), integers, exact in float64.
        first = group[0].pool_divisor
        same = all(c.pool_divisor is first for c in group)  # one pooling layer feeds it: broadcast
        divisor = first if same else torch.stack([c.pool_divisor for c in group])
        events = (torch.stack([c.spikes for c in group]).to(torch.float64) * divisor).round_()
        peak = torch.stack([c.spikes.new_zeros(()) if c.peak is None else c.peak for c in group])
        binary = (peak <= 1) & (events.sum(1) == (nonzero * divisor).sum(1))
        return effective, binary, events @ reach


def _pool_window_sizes(module: nn.Module, ones: Tensor) -> Tensor:
    """How many input elements each window of an average-pooling layer covers (padding excluded)."""
    if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d)):
        one_d = isinstance(module, nn.AvgPool1d)
        pair = (lambda v: (1, v[0] if isinstance(v, tuple) else v)) if one_d else (lambda v: v)  # noqa: E731
        sums = F.avg_pool2d(ones.unsqueeze(-2) if one_d else ones, pair(module.kernel_size), pair(module.stride),
                            pair(module.padding), module.ceil_mode, True, divisor_override=1)
        return sums.squeeze(-2) if one_d else sums
    sizes = ones.shape[2:]
    out_sizes = module.forward(ones).shape[2:]
    area = torch.ones((), dtype=ones.dtype)
    for axis, (size, out) in enumerate(zip(sizes, out_sizes)):
        i = torch.arange(out)
        # adaptive windows are [floor(i L / O), ceil((i + 1) L / O))
        length = torch.div((i + 1) * size + out - 1, out, rounding_mode="floor") - torch.div(i * size, out, rounding_mode="floor")
        area = area.unsqueeze(-1) * length if axis else length.to(ones.dtype)
    return area.expand(1, 1, *out_sizes)


def pool_divisor(module: nn.Module, shape: tuple[int, ...], device: torch.device | str = "cpu") -> Tensor:
    """What an average pooling divides each window's sum by, shaped like one output (channels
    broadcast): for spikes in, ``output * divisor`` is the number of spikes in each window.

    It is the window's size over the pooling of ones (size / (size / divisor)), which covers
    padding, ``count_include_pad``, ``ceil_mode``, ``divisor_override`` and adaptive windows.
    """
    ones = torch.ones((1, 1, *shape[1:]), dtype=torch.float64)
    # an integer (a window's size or an override) up to the rounding of the two divisions
    return (_pool_window_sizes(module, ones) / module.forward(ones))[0].round().to(device)  # forward: no hooks


class SynapticOperations:
    """Accumulating: per synaptic layer and timestep, the sums of `SynapticCounts` over batches."""

    FIELDS = ("acs", "macs", "effective_acs", "effective_macs", "dense")

    def __init__(self, timesteps: int) -> None:
        self.timesteps = timesteps
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, dict[str, list[float]]] = {}

    def update(self, name: str, per_step: list[dict[str, float]]) -> None:
        sums = self.sums.setdefault(name, {k: [0.0] * self.timesteps for k in self.FIELDS})
        for step, counts in enumerate(per_step):
            for key in self.FIELDS:
                sums[key][step] += counts[key]

    def compute(self) -> dict[str, dict[str, list[float]]]:
        return self.sums


class NeuronActivity:
    """Accumulating: per neuron layer, nonzero outputs per timestep; its size and state size."""

    def __init__(self, timesteps: int) -> None:
        self.timesteps = timesteps
        self.reset()

    def reset(self) -> None:
        self.spikes: dict[str, list[float]] = {}
        self.sizes: dict[str, tuple[int, int]] = {}

    def update(self, name: str, per_step: list[float], neurons: int, state_size: int) -> None:
        sums = self.spikes.setdefault(name, [0.0] * self.timesteps)
        for step, count in enumerate(per_step):
            sums[step] += count
        self.sizes[name] = (neurons, state_size)

    def compute(self) -> dict[str, dict[str, Any]]:
        return {name: {"spikes": spikes, "neurons": self.sizes[name][0], "state_size": self.sizes[name][1]}
                for name, spikes in self.spikes.items()}


class ActivationSparsity:
    """Stateless: NeuroBench's activation sparsity, 1 - nonzero outputs / all outputs of all neuron
    layers over all timesteps."""

    def __call__(self, p: Profile) -> float:
        total = sum(layer.neuron_updates for layer in p.neuron_layers)
        return 1.0 - sum(layer.spikes for layer in p.neuron_layers) / total if total else 0.0


class DataMovement:
    """Stateless: bits moved per inference (Joint A-SNN §5.4).

    ANN: 2 x sum of activation sizes x 32 bit (each feature map written to and read from cache).
    SNN: T x 2 x sum of activation sizes x 32 bit (membrane potentials) + 1 bit per spike.
    """

    def __call__(self, neurons: list[NeuronProfile], timesteps: int, spiking: bool) -> float:
        activations = sum(layer.neurons for layer in neurons)
        if not spiking:
            return 2.0 * activations * 32
        return timesteps * 2.0 * activations * 32 + sum(layer.spikes for layer in neurons)


class ComputeEnergy:
    """Stateless: a layer's compute energy on a target, in pJ (`EnergyTarget` has the equations)."""

    def __init__(self, target: EnergyTarget, spiking: bool) -> None:
        self.target, self.spiking = target, spiking

    def __call__(self, layer: LayerProfile) -> float:
        if isinstance(layer, SynapseProfile):
            return self.target.synaptic_pj(layer.acs, layer.macs)
        if not self.spiking:  # an ANN's activation function is not a neuron update
            return 0.0
        return self.target.neuron_pj_total(layer.neuron_updates, layer.active_updates, layer.spikes)


# --- hooks -------------------------------------------------------------------------------------------

def is_spiking_neuron(module: nn.Module) -> bool:
    """An snnpipe spiking neuron (not the ANN twin's ReLU) or an snnTorch neuron."""
    if isinstance(module, Neuron):
        return not isinstance(module, ReLU)
    try:
        from snntorch import SpikingNeuron
    except ImportError:  # snnTorch is optional
        return False
    return isinstance(module, SpikingNeuron)


def _is_neuron_layer(module: nn.Module) -> bool:
    return isinstance(module, (Neuron, nn.ReLU)) or is_spiking_neuron(module)


def _emits_binary_spikes(module: nn.Module) -> bool:
    """Whether every output of this neuron layer is 0 or 1 (snnTorch's graded spikes are not)."""
    if isinstance(module, CubaLIF):
        return True
    factor = getattr(module, "graded_spikes_factor", None)
    return is_spiking_neuron(module) and factor is not None and float(factor) == 1.0


def _state_variables(module: nn.Module, output: Any) -> int:
    if isinstance(module, CubaLIF):
        return 2  # current u and voltage v (SPEC §2)
    if not is_spiking_neuron(module):
        return 0
    if isinstance(output, tuple):
        return len(output) - 1  # snnTorch returns (spk, *states)
    return _SNNTORCH_STATES.get(type(module).__name__, 1)


class _Recorder:
    """Forward hooks on every synaptic, neuron and average-pooling layer of a model.

    Calls are staged per batch and checked against the contract (module docstring) when the
    batch ends; then they go into the accumulating metrics.
    """

    def __init__(self, model: nn.Module, timesteps: int, ann: bool) -> None:
        self.timesteps, self.ann = timesteps, ann
        named = [(name or type(model).__name__, m) for name, m in model.named_modules()]
        self.order: dict[str, int] = {}  # layer -> when it first ran: the report's order
        self.divisors: dict[tuple[str, tuple[int, ...]], tuple[Tensor, bool]] = {}
        self.counters = {n: SynapticCounts(m) for n, m in named if isinstance(m, SYNAPSES)}
        self.modules = dict(named)
        if not self.counters:
            raise ProfileError(f"{type(model).__name__} has no layer to count ({', '.join(t.__name__ for t in SYNAPSES)})")
        self.synops, self.activity = SynapticOperations(timesteps), NeuronActivity(timesteps)
        # every layer starts at zero, so that ranks that ran no batch still reduce the same tables
        for name in self.counters:
            self.synops.update(name, [])
        for name in (n for n, m in named if _is_neuron_layer(m) and not isinstance(m, SYNAPSES)):
            self.activity.update(name, [], 0, 0)
        self.handles = []
        for name, module in named:
            if isinstance(module, SYNAPSES):
                self.handles.append(module.register_forward_hook(self._synapse_hook(name)))
            elif _is_neuron_layer(module):
                if isinstance(module, Neuron):
                    module.last_count = None  # not a count of ours (see the hook)
                self.handles.append(module.register_forward_hook(self._neuron_hook(name)))
            elif isinstance(module, POOLS):
                self.handles.append(module.register_forward_hook(self._pool_hook(name)))
        self.start_batch(0)

    def start_batch(self, batch_size: int, x: Tensor | None = None) -> None:
        """Stage the calls of a new batch; x, the batch's (T, B, ...) input, is a spike source
        when it is all 0 and 1 (rate coding): its steps need no check of their values."""
        self.batch_size = batch_size
        self.staged_synapses: dict[str, list[tuple[int, SynapticCall]]] = {}
        self.staged_neurons: dict[str, list[tuple[Tensor, int, int]]] = {}
        # module -> its latest output, when that is spikes. Holding the tensor keeps its memory from
        # being reused, so a data pointer that matches is that tensor or a view of it (a Flatten),
        # and the check of its values can be skipped.
        self.spike_sources: dict[str, SpikeSource] = {}
        self.input_steps: dict[int, SpikeSource] = {}  # data pointer -> a step of a 0/1 input (held by the caller)
        steps = {x_t.data_ptr(): x_t for x_t in x} if x is not None else {}  # one, for a static input
        if steps and all(torch.equal(x_t, x_t.bool().to(x_t.dtype)) for x_t in steps.values()):
            self.input_steps = {ptr: SpikeSource(x_t) for ptr, x_t in steps.items()}

    def _source(self, x: Tensor) -> SpikeSource | None:
        step = self.input_steps.get(x.data_ptr())
        if step is not None and step.holds(x):
            return step
        return next((source for source in self.spike_sources.values() if source.holds(x)), None)

    def _seen(self, name: str) -> None:
        if name not in self.order:
            self.order[name] = len(self.order)

    def _synapse_hook(self, name: str):
        counter = self.counters[name]

        def hook(module, inputs, output):
            self._seen(name)
            x = inputs[0].detach()
            leading = x.shape[0] if x.dim() > 1 else 1
            self.staged_synapses.setdefault(name, []).append((leading, counter.reduce(x, output, self._source(x))))

        return hook

    def _neuron_hook(self, name: str):
        binary = _emits_binary_spikes(self.modules[name])

        def hook(module, inputs, output):
            self._seen(name)
            spikes = (output[0] if isinstance(output, tuple) else output).detach()
            per_sample = spikes[0].numel() if spikes.dim() > 1 else spikes.numel()
            # an snnpipe neuron counted this step itself; a float sum of 0/1 is exact below 2**24
            # and many times faster than count_nonzero
            count = getattr(module, "last_count", None)
            if count is not None:
                module.last_count = None
            if count is None or spikes.numel() >= 2**24:
                count = spikes.sum() if binary and spikes.numel() < 2**24 else torch.count_nonzero(spikes)
            if binary:
                self.spike_sources[name] = SpikeSource(spikes)
            self.staged_neurons.setdefault(name, []).append((count, per_sample, _state_variables(module, output)))

        return hook

    def _pool_hook(self, name: str):
        def hook(module, inputs, output):
            self.spike_sources.pop(name, None)
            x = inputs[0].detach()
            batched = x.dim() == (4 if isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)) else 3)
            if self.ann or not batched:  # before the value test: the ANN twin's pooling is never spikes
                return
            source = self._source(x)
            if not (source is not None and source.divisor is None or bool(((x == 0) | (x == 1)).all())):
                return
            key = (name, tuple(x.shape[1:]))
            if key not in self.divisors:  # one value per element of one output, flat
                divisor = pool_divisor(module, key[1], x.device)
                # the pooling of ones bounds that of spikes: where it is <= 1 (no sum pooling) so is every value
                ones = torch.ones((1, 1, *key[1][1:]), dtype=torch.float64)
                self.divisors[key] = divisor.expand(output.shape[1:]).flatten(), bool(module.forward(ones).max() > 1)
            divisor, may_exceed_one = self.divisors[key]
            self.spike_sources[name] = SpikeSource(output.detach(), divisor, may_exceed_one)

        return hook

    def finish_batch(self) -> None:
        """Check the calls of this batch against the contract and add them to the metrics."""
        T = self.timesteps
        for name, calls in self.staged_synapses.items():
            if len(calls) == T:
                per_step = self.counters[name].counts([call for _, call in calls], self.ann)
            elif len(calls) == 1 and calls[0][0] == self.batch_size:
                # static input, computed once: counted at every step
                per_step = self.counters[name].counts([calls[0][1]], self.ann) * T
            else:
                raise ProfileError(
                    f"layer {name} ran {len(calls)} times in a batch of T={T} steps; the profiler needs one call per "
                    "timestep (or one call on a static (B, ...) input): see the contract in snnpipe.pipeline.profile")
            self.synops.update(name, per_step)
        for name, calls in self.staged_neurons.items():
            if len(calls) != T:
                raise ProfileError(
                    f"neuron layer {name} ran {len(calls)} times in a batch of T={T} steps; call it once per "
                    "timestep and reset its state for each batch: see the contract in snnpipe.pipeline.profile")
            counts = torch.stack([c for c, _, _ in calls]).tolist()
            self.activity.update(name, counts, calls[-1][1], calls[-1][1] * calls[-1][2])
        self.start_batch(0)

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


# --- the stage ---------------------------------------------------------------------------------------

def _default_run(model: nn.Module, x: Tensor) -> Tensor:
    return model(x).mean(0)


def _batches(data: Any) -> Iterator[tuple[Tensor, Tensor | None]]:
    if isinstance(data, Tensor):
        yield data, None
        return
    try:
        iterator = iter(data)
    except TypeError:
        raise ProfileError(f"data must be a (T, B, ...) tensor or an iterable of batches, not {type(data).__name__}") from None
    for batch in iterator:
        if isinstance(batch, Tensor):
            yield batch, None
        elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
            yield batch[0], (batch[1] if len(batch) > 1 else None)
        else:
            raise ProfileError(f"a batch must be x or (x, y) with x a (T, B, ...) tensor, not {type(batch).__name__}")


def profile_model(
    model: nn.Module,
    data: Any,
    timesteps: int | None = None,
    target: EnergyTarget | str = "cmos45nm",
    run: Callable[[nn.Module, Tensor], Tensor] | None = None,
    spiking: bool | None = None,
    progress: bool = False,
    world=None,
) -> Profile:
    """Profile any ``nn.Module`` on ``data`` under the contract of the module docstring.

    Args:
        model: the network; put in eval mode while profiled, its mode restored afterwards.
        data: a (T, B, ...) tensor, or an iterable of x or (x, y) batches.
        timesteps: T; by default the first batch's leading size.
        target: an `EnergyTarget` or a registered target's name.
        run: ``run(model, x) -> logits (B, classes)``; default ``model(x).mean(0)``.
        spiking: count it as an SNN (ACs where the input is spikes) or as an ANN (every synaptic
            op a MAC); by default, whether it has a spiking neuron.
        progress: show a progress bar over the batches.
        world: a `distributed.World`: each rank counts every ``world.size``-th batch; the counts
            are summed over the ranks.

    Raises:
        ProfileError: no data, data the model cannot take, or a model that breaks the contract.
    """
    from snnpipe.pipeline import distributed

    energy = get_target(target) if isinstance(target, str) else target
    spiking = any(is_spiking_neuron(m) for m in model.modules()) if spiking is None else spiking
    run = run or _default_run
    batches = _batches(data)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="profile", unit="batch", leave=False)
    was_training = model.training
    model.eval()
    recorder: _Recorder | None = None
    samples, labelled, correct = 0, 0, 0
    try:
        with torch.no_grad():
            for i, (x, y) in enumerate(batches):
                if x.dim() < 2:
                    raise ProfileError(f"a batch of shape {tuple(x.shape)} is not (T, B, ...)")
                if timesteps is None:
                    timesteps = int(x.shape[0])
                if x.shape[0] != timesteps:
                    raise ProfileError(f"a batch of shape {tuple(x.shape)} is not (T={timesteps}, B, ...): "
                                       "give the time axis first")
                if recorder is None:
                    recorder = _Recorder(model, timesteps + _delay_steps(model, spiking), ann=not spiking)
                if world is not None and world.distributed and i % world.size != world.rank:
                    continue
                recorder.start_batch(int(x.shape[1]), x)
                try:
                    logits = run(model, x)
                except RuntimeError as err:
                    raise ProfileError(f"the model cannot run on a batch of shape {tuple(x.shape)}: "
                                       f"{str(err).strip().splitlines()[0]}") from None
                recorder.finish_batch()
                samples += int(x.shape[1])
                if y is not None and isinstance(logits, Tensor) and logits.dim() == 2:
                    labelled += len(y)
                    correct += int((logits.argmax(1) == y.to(logits.device)).sum())
    finally:
        if recorder is not None:
            recorder.close()
        model.train(was_training)
    if recorder is None:
        raise ProfileError("no data to profile: the data gave no batch")
    if world is not None and world.distributed:
        samples, labelled, correct = (int(v) for v in distributed.all_reduce_sum([samples, labelled, correct], world))
        _reduce(recorder, world)
    if samples == 0:
        raise ProfileError("no samples to profile")
    accuracy = correct / labelled if labelled else None
    return _summarize(recorder, model, timesteps + _delay_steps(model, spiking), samples, energy, spiking, accuracy)


def _delay_steps(model: nn.Module, spiking: bool) -> int:
    """The steps a model in Loihi's timing runs after T (`SpikingModel.delay_steps`); its profile counts
    all of them, as Loihi runs them."""
    return getattr(model, "delay_steps", 0) if spiking else 0


def _reduce(recorder: _Recorder, world) -> None:
    from snnpipe.pipeline import distributed

    # every rank knows every layer (ranks that ran no batch still hooked them): sum in a fixed order
    for name in sorted(recorder.synops.sums):
        sums = recorder.synops.sums[name]
        for key in SynapticOperations.FIELDS:
            sums[key] = distributed.all_reduce_sum(sums[key], world)
    for name in sorted(recorder.activity.spikes):
        recorder.activity.spikes[name] = distributed.all_reduce_sum(recorder.activity.spikes[name], world)


def _summarize(recorder: _Recorder, model: nn.Module, timesteps: int, samples: int, target: EnergyTarget,
               spiking: bool, accuracy: float | None) -> Profile:
    energy = ComputeEnergy(target, spiking)
    synops, activity = recorder.synops.compute(), recorder.activity.compute()
    layers: list[LayerProfile] = []
    for name in sorted(recorder.order, key=recorder.order.get):
        module = type(recorder.modules[name]).__name__
        if name in synops:
            s = {k: [v / samples for v in values] for k, values in synops[name].items()}
            layer: LayerProfile = SynapseProfile(
                name, module, acs=sum(s["acs"]), macs=sum(s["macs"]), acs_per_step=s["acs"], macs_per_step=s["macs"],
                effective_acs=sum(s["effective_acs"]), effective_macs=sum(s["effective_macs"]), dense=sum(s["dense"]))
        elif name in activity:
            a = activity[name]
            per_step = [v / samples for v in a["spikes"]]
            neurons, spikes = a["neurons"], sum(per_step)
            updates = float(neurons * timesteps)
            layer = NeuronProfile(
                name, module, neurons=neurons, state_size=a["state_size"], spikes=spikes,
                firing_rate=spikes / updates if updates else 0.0,
                rate_per_step=[v / neurons if neurons else 0.0 for v in per_step],
                neuron_updates=updates, active_updates=spikes)
        else:
            continue
        layer.energy_pj = energy(layer)
        layers.append(layer)
    name = getattr(model, "zoo_name", None) or type(model).__name__
    result = Profile(str(name), spiking, timesteps, samples, target.to_dict(), layers, {}, accuracy=accuracy)
    result.totals = totals(result, target)
    return result


def totals(p: Profile, target: EnergyTarget) -> dict[str, float]:
    """Sums over the layers, the energies in microjoules, and the data movement (min and max)."""
    syn, neu = p.synapses, p.neuron_layers
    spikes = sum(layer.spikes for layer in neu)
    updates = sum(layer.neuron_updates for layer in neu)
    synapse_pj = sum(layer.energy_pj for layer in syn)
    neuron_pj = sum(layer.energy_pj for layer in neu)
    bits = DataMovement()(neu, p.timesteps, p.spiking)
    move_min, move_max = target.movement_pj(bits)
    t = {key: sum(getattr(layer, key) for layer in syn) for key in ("acs", "macs", "effective_acs", "effective_macs", "dense")}
    t.update({
        "spikes": spikes, "neurons": sum(layer.neurons for layer in neu), "state_size": sum(layer.state_size for layer in neu),
        "neuron_updates": updates, "firing_rate": spikes / updates if updates else 0.0,
        "activation_sparsity": ActivationSparsity()(p),
        "synapse_energy_uj": synapse_pj * 1e-6, "neuron_energy_uj": neuron_pj * 1e-6,
        "compute_energy_uj": (synapse_pj + neuron_pj) * 1e-6, "movement_bits": bits,
        "movement_min_uj": move_min * 1e-6, "movement_max_uj": move_max * 1e-6,
    })
    t["total_min_uj"] = t["compute_energy_uj"] + t["movement_min_uj"]
    t["total_max_uj"] = t["compute_energy_uj"] + t["movement_max_uj"]
    return t


def compare(snn: Profile, ann: Profile) -> dict[str, float]:
    """ANN / SNN ratios of compute energy and of total energy (min and max data movement)."""
    ratio = lambda a, b: a / b if b else math.inf  # noqa: E731
    return {f"ann_over_snn_{key}": ratio(ann.totals[key], snn.totals[key])
            for key in ("compute_energy_uj", "total_min_uj", "total_max_uj")}


def profile(
    model_or_checkpoint: nn.Module | Checkpoint | str | Path,
    data: Any = None,
    timesteps: int | None = None,
    target: EnergyTarget | str | None = None,
    *,
    target_file: str | Path | None = None,
    samples: int | None = 1000,
    run: Callable[[nn.Module, Tensor], Tensor] | None = None,
    spiking: bool | None = None,
    ann_twin: nn.Module | None = None,
    dataset: str | None = None,
    batch_size: int = TEST_BATCH_SIZE,
    progress: bool = False,
    world=None,
) -> Profile:
    """Profile a checkpoint (its SNN and its ANN twin) or any model (see the module docstring).

    Args:
        model_or_checkpoint: a `Checkpoint`, the path of one, or an ``nn.Module``.
        data: for a checkpoint, None (its own test set) or the folder holding its dataset; for a
            module, a (T, B, ...) tensor or an iterable of x or (x, y) batches.
        timesteps: T; a checkpoint's own by default (a checkpoint can be profiled at another T).
        target: a registered energy target (default ``cmos45nm``) or an `EnergyTarget`.
        target_file: a TOML/YAML target file instead of ``target``.
        samples: a checkpoint's first test samples to run (None: all).
        run: a module's time loop, ``run(model, x) -> logits``.
        spiking: count a module as an SNN or an ANN (default: whether it has spiking neurons).
        ann_twin: a module's ANN twin, profiled beside it at T = 1 on the time-averaged input.
        dataset: profile a checkpoint on another dataset of the same input shape.
        batch_size: a checkpoint's batch size.
        progress: show a progress bar.
        world: a `distributed.World` to shard the batches over ranks.

    Raises:
        SnnpipeError: a checkpoint that does not load, data that does not fit the model, an unknown
            target or a malformed target file, a model that breaks the contract.
    """
    if target is not None and target_file is not None and not isinstance(target, EnergyTarget):
        raise ProfileError("give an energy target by name or a target file, not both")
    energy = target if isinstance(target, EnergyTarget) else get_target(target, target_file)
    if isinstance(model_or_checkpoint, nn.Module):
        if data is None or isinstance(data, (str, Path)):
            raise ProfileError("profiling a module needs data: a (T, B, ...) tensor or an iterable of batches")
        result = profile_model(model_or_checkpoint, data, timesteps, energy, run, spiking, progress, world)
        if ann_twin is not None:
            twin_data = ((x.mean(0, keepdim=True), y) for x, y in _batches(data))
            twin = profile_model(ann_twin, twin_data, 1, energy, run, False, False, world)
            result.ann, result.comparison = twin, compare(result, twin)
        return result
    return _profile_checkpoint(model_or_checkpoint, data, timesteps, energy, samples, dataset, batch_size,
                               progress, world)


def _profile_checkpoint(source, data, timesteps, energy, samples, dataset, batch_size, progress, world) -> Profile:
    from snnpipe.pipeline.export import encoded_test_batches

    ckpt = source if isinstance(source, Checkpoint) else Checkpoint.load(source)
    if timesteps is not None and timesteps != ckpt.timesteps:
        ckpt = replace(ckpt, timesteps=timesteps)
    model = ckpt.build_model().eval()
    shape = tuple(ckpt.data.input_shape)
    if dataset is not None and dataset != ckpt.data.name:
        from snnpipe.pipeline.data import load_dataset

        other = tuple(load_dataset(dataset, data if isinstance(data, (str, Path)) else None).spec.input_shape)
        if other != shape:
            raise ProfileError(f"{dataset} images are {'x'.join(map(str, other))}; the model takes "
                               f"{ckpt.data.name} {'x'.join(map(str, shape))}: profile it on data of its own shape")
        ckpt = replace(ckpt, data=replace(ckpt.data, name=dataset))
    if data is None or isinstance(data, (str, Path)):
        snn_batches = encoded_test_batches(ckpt, data, samples, batch_size=batch_size)
        ann_batches = encoded_test_batches(replace(ckpt, encoding="direct", timesteps=1), data, samples, batch_size=batch_size)
    else:
        given = list(_batches(data))
        for x, _ in given:
            if tuple(x.shape[2:]) != shape:
                raise ProfileError(f"data of shape {tuple(x.shape)} does not fit {ckpt.model_name}: "
                                   f"(T, B, {', '.join(map(str, shape))}) expected")
        snn_batches = lambda: iter(given)  # noqa: E731
        ann_batches = lambda: ((x.mean(0, keepdim=True), y) for x, y in given)  # noqa: E731
    result = profile_model(model, snn_batches(), ckpt.timesteps, energy, spiking=ckpt.spiking, progress=progress, world=world)
    result.model, result.dataset, result.encoding = ckpt.model_name, ckpt.data.name, ckpt.encoding
    if ckpt.spiking:
        # the twin on the analog input it is trained on: direct encoding, T = 1
        twin = profile_model(ckpt.build_model(spiking=False), ann_batches(), 1, energy, spiking=False, world=world)
        twin.model, twin.dataset, twin.encoding = ckpt.model_name, ckpt.data.name, "direct"
        result.ann, result.comparison = twin, compare(result, twin)
    return result


# --- the firing-rate gate ------------------------------------------------------------------------------

@dataclass
class GateResult:
    """The gate's verdict and its table: rows of (layer, baseline rate, rate now, relative change)."""

    passed: bool
    max_increase: float
    rows: list[tuple[str, float, float, float]]

    def table(self) -> str:
        width = max(len(name) for name, *_ in self.rows) + 2
        lines = [f"{'layer':<{width}}{'baseline':>10}{'now':>10}{'change':>10}"]
        for name, before, after, change in self.rows:
            flag = "  FAIL" if change > self.max_increase else ""
            lines.append(f"{name:<{width}}{before:>10.4f}{after:>10.4f}{change:>+10.1%}{flag}")
        return "\n".join(lines)


def read_profile(path: str | Path) -> Profile:
    """A profile JSON from disk. Raises ProfileError for a missing or malformed file."""
    path = Path(path)
    try:
        return Profile.from_dict(json.loads(path.read_text()))
    except OSError as err:
        raise ProfileError(f"cannot read {path}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise ProfileError(f"{path} is not JSON (line {err.lineno}); give a profile.json") from None
    except ProfileError as err:
        raise ProfileError(f"{path}: {err}") from None


def firing_rate_gate(current: Profile, baseline: Profile | str | Path, max_increase: float) -> GateResult:
    """Compare firing rates with a baseline profile.

    Fails when the mean rate or any layer's rate rises by more than ``max_increase`` (relative:
    0.05 is 5%); a layer at rate 0 in the baseline fails on any spike.

    Raises:
        ProfileError: a baseline that is unreadable or profiles another model, T or sample count.
    """
    if not isinstance(baseline, Profile):
        path = Path(baseline)
        if not path.exists():
            raise ProfileError(f"baseline {path} does not exist; create it with --update-baseline")
        baseline = read_profile(path)
    for key in ("model", "timesteps", "samples", "dataset", "encoding"):
        if getattr(baseline, key) != getattr(current, key):
            raise ProfileError(f"the baseline has {key}={getattr(baseline, key)!r}, this profile {getattr(current, key)!r}: "
                               "compare like with like, or write a new baseline with --update-baseline")
    old = {layer.name: layer.firing_rate for layer in baseline.neuron_layers}
    now = {layer.name: layer.firing_rate for layer in current.neuron_layers}
    if list(old) != list(now):
        raise ProfileError("the baseline has other neuron layers than this model; write a new one with --update-baseline")
    rows = []
    for name, before, after in [("mean", baseline.totals["firing_rate"], current.totals["firing_rate"]),
                                *((n, old[n], now[n]) for n in now)]:
        change = (after - before) / before if before else (math.inf if after > 0 else 0.0)
        rows.append((name, before, after, change))
    return GateResult(all(change <= max_increase for *_, change in rows), max_increase, rows)


def parse_fraction(text: str | float) -> float:
    """``5%`` or ``0.05`` into 0.05. Raises ProfileError for anything else."""
    value = str(text).strip()
    try:
        number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ProfileError(f"--max-increase {text!r} is not a fraction like 5% or 0.05") from None
    if not 0 <= number < 10:
        raise ProfileError(f"--max-increase {text!r} is out of range: give 0% to 1000%")
    return number


def profile_to_reports(source, out: str | Path, target: str | None = None, samples: int | None = 1000,
                       target_file=None, data_dir=None, force: bool = False) -> tuple[dict, Path]:
    """Profile a checkpoint and write its reports (a recipe's profile step); returns a summary."""
    from snnpipe.pipeline.report import write_reports

    result = profile(source, data_dir, target=target, target_file=target_file, samples=samples)
    folder = write_reports(result, Path(out), force=force)
    summary = {"energy_uj": result.totals["compute_energy_uj"], "firing_rate": result.totals["firing_rate"],
               "accuracy": result.accuracy}
    return summary, folder
