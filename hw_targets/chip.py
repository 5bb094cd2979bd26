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
    [sources]
    synop_pj = "datasheet rev. 3, table 7"

A field without an entry in ``sources`` is sourced to the file itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
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
_OPTIONAL = {"static_w", "step_s"}
#: The largest count a chip file may give (neurons, bytes, cores, bits).
MAX_INTEGER = 1 << 40


class ChipError(SnnpipeError):
    """An unknown chip or a malformed chip file; the message is one line."""


@dataclass(frozen=True)
class Chip:
    """A neuromorphic chip's energy and capacity (fields: `CHIP_FIELDS`), each number with its source."""

    name: str
    synop_pj: float
    neuron_active_pj: float
    neuron_inactive_pj: float
    spike_pj: float
    hop_min_pj: float
    hop_max_pj: float
    neurons_per_core: int
    memory_bytes_per_core: int
    cores_per_chip: int
    synapse_bits: int = 8
    static_w: float | None = None
    step_s: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.sources, dict) or not all(isinstance(v, str) and v for v in self.sources.values()):
            raise ValueError("sources must map field names to non-empty citation strings")
        if self.synapse_bits == 8 and "synapse_bits" not in self.sources:  # the default carries its own source
            object.__setattr__(self, "sources", {**self.sources, "synapse_bits": EXPORT_BITS})
        unknown = set(self.sources) - set(CHIP_FIELDS)
        if unknown:
            raise ValueError(f"sources names unknown field(s) {', '.join(sorted(map(str, unknown)))}")
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
        if self.hop_max_pj < self.hop_min_pj:
            raise ValueError(f"hop_max_pj={self.hop_max_pj} is below hop_min_pj={self.hop_min_pj}")
        if (self.static_w is None) != (self.step_s is None):
            raise ValueError("static_w and step_s: give both (static energy = static_w x steps x step_s) or neither")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_chip_file(path: str | Path) -> Chip:
    """Read a chip from TOML (``.toml``) or YAML (any other suffix); see the module docstring.

    Raises:
        ChipError: unreadable or malformed file, unknown or missing fields, bad values.
    """
    required = [f.name for f in fields(Chip) if f.name not in _OPTIONAL and f.name not in ("sources", "description", "synapse_bits")]
    return read_sourced_file(path, Chip, "chip file", ChipError, required, CHIP_FIELDS)


#: The built-in chips, one file each in ``hw_targets/chips/``.
CHIPS: dict[str, Chip] = {p.stem: load_chip_file(p) for p in sorted(CHIP_DIR.glob("*.toml"))}


def get_chip(name: str | None = None, path: str | Path | None = None) -> Chip:
    """A built-in chip by name (default ``loihi2``), or the one a file defines (``path`` wins).

    Raises:
        ChipError: an unknown name or a malformed file.
    """
    if path is not None:
        return load_chip_file(path)
    name = name or "loihi2"
    if name not in CHIPS:
        raise ChipError(f"unknown chip {name!r}: choose one of {', '.join(CHIPS)} or give --chip-file")
    return CHIPS[name]
