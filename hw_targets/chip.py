"""Neuromorphic chips for the ``chip`` energy model: per-operation energies, static power, time per
step and core limits, each with its source. The chips are data files (``hw_targets/chips/*.toml``:
``loihi``, ``loihi2``); a chip of your own is a TOML or YAML file with the same fields
(``snnpipe profile --energy-model chip --chip-file mychip.toml``)::

    name = "mychip"
    synop_pj = 10.0              # one synaptic op (a spike reaching one synapse)
    neuron_active_pj = 50.0      # one neuron update that emits a spike
    neuron_inactive_pj = 30.0    # one neuron update without a spike
    spike_pj = 1.0               # one spike sent within a tile
    hop_min_pj = 2.0             # one spike message crossing one tile, lower and upper bound
    hop_max_pj = 3.0
    static_w = 0.1               # optional: static power of one chip, W
    step_s = 0.001               # optional: time per step, s (static energy = static_w x steps x step_s)
    neurons_per_core = 4096
    memory_bytes_per_core = 131072
    cores_per_chip = 64
    synapse_bits = 8
    [ranges]                     # optional: a constant's published range, [low, high] around its value
    static_w = [0.08, 0.12]
    [sources]
    synop_pj = "datasheet rev. 3, table 7"

A field without an entry in ``sources`` is sourced to the file itself; a range is cited by its
field's source (say there where each end comes from).

A chip is also what ``snnpipe fit`` maps a network onto (`snnpipe.hw_targets.fit`): ``mapper`` names
the vendor's way of placing layers (``cores``: Loihi's and SpiNNaker 2's neurons and synapses split
over cores; ``dynapcnn``: Speck's one layer per core; ``xylo``; ``akida``), and ``[limits]`` gives
that mapper's limits (its ``LIMITS`` table says which), each cited in ``[sources]`` as the numbers
above.

The ``chip`` energy model charges what a chip gives and names what it does not (not published:
not charged, so the energy is a lower bound). Every energy and time is optional; tile hops come
with the cores that count them (`HOPS`). A chip is priced when it gives a per-event energy (as
Speck's measured energy per spike), or a power and a time per step (a chip whose vendor publishes
only its power, as Xylo's, is priced for its power over the run); one that gives neither is fitted,
never priced (``--energy-model chip`` refuses it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.energy import MAX_CONSTANT, check_name, is_constant, read_sourced_file

CHIP_DIR = Path(__file__).resolve().parent / "chips"

#: The chip's numbers: name -> what one unit of it is.
CHIP_FIELDS = {
    "synop_pj": "pJ per synaptic op (one spike reaching one synapse)",
    "neuron_active_pj": "pJ per neuron update that emits a spike",
    "neuron_inactive_pj": "pJ per neuron update without a spike",
    "spike_pj": "pJ per spike sent within a tile",
    "hop_min_pj": "pJ per spike message crossing one tile, lower bound",
    "hop_max_pj": "pJ per spike message crossing one tile, upper bound",
    "static_w": "static power of one chip, W (optional)",
    "step_s": "time per step, s (optional)",
    "neurons_per_core": "neurons one core updates",
    "memory_bytes_per_core": "synaptic memory per core, bytes",
    "cores_per_chip": "cores on one chip",
    "synapse_bits": "bits per stored synaptic weight",
}
EXPORT_BITS = "snnpipe's Loihi export: 8-bit weight mantissas (hw_targets/loihi/quantize.py)"
_INTEGERS = {"neurons_per_core", "memory_bytes_per_core", "cores_per_chip", "synapse_bits"}
#: The per-event energies, each optional: one a chip does not give (not published) is not charged.
ENERGIES = ("synop_pj", "neuron_active_pj", "neuron_inactive_pj", "spike_pj", "hop_min_pj", "hop_max_pj")
#: What counting tile hops needs besides the hop energies: the cores each layer takes.
HOPS = ("hop_min_pj", "hop_max_pj", "neurons_per_core", "memory_bytes_per_core", "cores_per_chip")
#: The energies and times a chip may give a published range for (``[ranges]``).
RANGED = (*ENERGIES, "static_w", "step_s")
_OPTIONAL = {*RANGED, *HOPS}
#: The mappers a chip file may name (`snnpipe.hw_targets.fit.MAPPERS` holds them and their limits).
MAPPER_NAMES = ("cores", "dynapcnn", "xylo", "akida")
#: The largest count a chip file may give (neurons, bytes, cores, bits).
MAX_INTEGER = 1 << 40


class ChipError(SnnpipeError):
    """An unknown chip or a malformed chip file; the message is one line."""


@dataclass(frozen=True)
class Chip:
    """A neuromorphic chip's energy and capacity (fields: `CHIP_FIELDS`), each number with its source."""

    name: str
    synop_pj: float | None = None
    neuron_active_pj: float | None = None
    neuron_inactive_pj: float | None = None
    spike_pj: float | None = None
    hop_min_pj: float | None = None
    hop_max_pj: float | None = None
    neurons_per_core: int | None = None
    memory_bytes_per_core: int | None = None
    cores_per_chip: int | None = None
    synapse_bits: int = 8
    static_w: float | None = None
    step_s: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    description: str = ""
    mapper: str = "cores"
    limits: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.sources, dict) or not all(isinstance(v, str) and v for v in self.sources.values()):
            raise ValueError("sources must map field names to non-empty citation strings")
        if self.synapse_bits == 8 and "synapse_bits" not in self.sources:  # the default carries its own source
            object.__setattr__(self, "sources", {**self.sources, "synapse_bits": EXPORT_BITS})
        if not isinstance(self.limits, dict):
            raise ValueError("limits must be a table of limit name to value")
        unknown = set(self.sources) - set(CHIP_FIELDS) - set(self.limits)
        if unknown:
            raise ValueError(f"sources names unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        if self.mapper not in MAPPER_NAMES:
            raise ValueError(f"mapper={self.mapper!r} is not one of {', '.join(MAPPER_NAMES)}")
        if any(getattr(self, name) is not None for name in HOPS[:2]) and any(getattr(self, n) is None for n in HOPS):
            missing = ", ".join(name for name in HOPS if getattr(self, name) is None)
            raise ValueError(f"missing field(s) {missing}: a chip that prices tile hops gives all of {', '.join(HOPS)} "
                             "(the cores count the hops)")
        for name, value in self.limits.items():
            if name not in self.sources:
                raise ValueError(f"limits.{name}={value!r} has no source: add sources.{name}")
        for name in CHIP_FIELDS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if name in _INTEGERS:
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INTEGER:
                    raise ValueError(f"{name}={value!r} must be an integer in [1, 2^40]")
            elif not is_constant(value):
                raise ValueError(f"{name}={value!r} must be a number in [0, {MAX_CONSTANT:g}]")
            if name not in self.sources:
                raise ValueError(f"{name}={value} has no source: add sources.{name}")
        if self.hop_min_pj is not None and self.hop_max_pj < self.hop_min_pj:
            raise ValueError(f"hop_max_pj={self.hop_max_pj} is below hop_min_pj={self.hop_min_pj}")
        if not isinstance(self.ranges, dict):
            raise ValueError("ranges must be a table of field name to [low, high]")
        for name, bounds in self.ranges.items():
            if name not in RANGED or getattr(self, name) is None:
                raise ValueError(f"ranges.{name}: give a range only for a field the chip gives, one of {', '.join(RANGED)}")
            if (not isinstance(bounds, list) or len(bounds) != 2 or not all(map(is_constant, bounds))
                    or not bounds[0] <= getattr(self, name) <= bounds[1]):
                raise ValueError(f"ranges.{name}={bounds!r} must be [low, high] with low <= {name}={getattr(self, name)} <= high")

    @property
    def priced(self) -> bool:
        """Whether the ``chip`` energy model can price the chip: it gives a per-event energy, or a power
        and a time per step."""
        return any(getattr(self, name) is not None for name in ENERGIES) or (
            self.static_w is not None and self.step_s is not None)

    def bounds(self, name: str) -> tuple[float, float, float] | None:
        """(value, low, high) of an energy or time (`RANGED`): its published range where the file gives
        one, else the value three times; None where the chip does not give it."""
        value = getattr(self, name)
        if value is None:
            return None
        low, high = self.ranges.get(name, (value, value))
        return value, low, high

    def not_given(self) -> list[str]:
        """The energies and times the chip does not give (not published: not charged)."""
        return [name for name in RANGED if getattr(self, name) is None]

    @property
    def lower_bound(self) -> bool:
        """Whether a price on this chip leaves out an energy nobody published: a per-event energy, or
        the static energy (no power, or no time per step to draw it over)."""
        return bool(self.not_given())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_chip_file(path: str | Path) -> Chip:
    """Read a chip from TOML (``.toml``) or YAML (any other suffix); see the module docstring.

    Raises:
        ChipError: unreadable or malformed file, unknown or missing fields, bad values.
    """
    return read_sourced_file(path, Chip, "chip file", ChipError, ["name"], CHIP_FIELDS)


#: The built-in chips, one file each in ``hw_targets/chips/``.
CHIPS: dict[str, Chip] = {p.stem: load_chip_file(p) for p in sorted(CHIP_DIR.glob("*.toml"))}
#: The built-in chips the ``chip`` energy model can price.
PRICED_CHIPS = [name for name, chip in CHIPS.items() if chip.priced]


def get_chip(name: str | None = None, path: str | Path | None = None) -> Chip:
    """A built-in chip by name (default ``loihi2``), or the one a file defines (``path`` wins), for
    the ``chip`` energy model.

    Raises:
        ChipError: an unknown name, a malformed file, or a chip without per-op energies.
    """
    if path is not None:
        chip = load_chip_file(path)
    else:
        name = name or "loihi2"
        if name not in CHIPS:
            raise ChipError(f"unknown chip {name!r}: choose one of {', '.join(PRICED_CHIPS)} or give --chip-file")
        chip = CHIPS[name]
    if not chip.priced:
        raise ChipError(f"chip {chip.name!r} gives no per-event energies and no power over a time per step (none "
                        f"published): choose one of {', '.join(PRICED_CHIPS)} for --energy-model chip, or fit it with "
                        "`snnpipe fit`")
    return chip
