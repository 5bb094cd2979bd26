"""Energy targets: what one operation costs on a piece of hardware, every constant with its source.

A profile (``pipeline/profile.py``) counts operations; a target turns them into energy (SPEC §5)::

    E_compute  = N_AC * ac_pj + N_MAC * mac_pj                                   # synaptic ops
               + N_active * neuron_pj + (N_updates - N_active) * neuron_inactive_pj
               + N_spikes * spike_pj                                             # neuron updates
    E_movement = bits / 64 * move64_pj,   move64_pj in [move64_min_pj, move64_max_pj]

in picojoules, where N_active counts the neuron updates that emitted a spike (a neuron that fires is
"active" in Davies et al.'s sense) and ``neuron_inactive_pj`` defaults to ``neuron_pj``. The data
volume ``bits`` is the Joint A-SNN §5.4 estimate, computed by the profile.

Built in (the registry `TARGETS`, filled by the `register_target` decorator):

- ``cmos45nm``: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  45 nm, 32-bit float: a MAC 4.6 pJ (3.7 pJ multiply + 0.9 pJ add), an AC (add) 0.9 pJ; moving 64
  bits from cache 10 to 100 pJ (as Joint A-SNN §5.4 applies it). Neuron updates are not charged:
  the papers that use these numbers (Joint A-SNN Table 5) count synaptic operations only.
- ``loihi``: Davies et al., "Loihi: a neuromorphic manycore processor with on-chip learning", IEEE
  Micro 38(1), 2018, Table 2: 23.6 pJ per synaptic spike operation, 81 pJ per active and 52 pJ per
  inactive neuron update, 1.7 pJ per spike within a tile, 3.0 pJ (east-west) to 4.0 pJ
  (north-south) per tile hop. Loihi has no multiplier for graded input: a MAC (the analog first
  layer) is charged as one synaptic op. Tile hops are recorded but not charged: a profile does not
  place layers on cores, so it cannot count hops. The data-movement constants are the 45 nm ones, so
  that the two targets differ in compute energy only.

A target of your own is a TOML or YAML file with the fields of `EnergyTarget`::

    name = "mychip"
    ac_pj = 0.5
    mac_pj = 2.0
    neuron_pj = 1.0              # optional, like every field below
    [sources]
    ac_pj = "datasheet rev. 3, table 7"

A constant without an entry in ``sources`` gets the file itself as its source; the default
data-movement constants carry Joint A-SNN's.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import yaml

from snnpipe.errors import SnnpipeError
from snnpipe.registry import register_into
from snnpipe.yaml_text import load_yaml


class TargetError(SnnpipeError):
    """An unknown energy target or a malformed target file; the message is one line."""


#: The constants of a target, in picojoules: name -> what one unit of it is.
CONSTANTS = {
    "ac_pj": "one accumulate (a synaptic op driven by a spike)",
    "mac_pj": "one multiply-accumulate (a synaptic op on graded input)",
    "neuron_pj": "one neuron update that emits a spike",
    "neuron_inactive_pj": "one neuron update without a spike (default: neuron_pj)",
    "spike_pj": "one spike sent",
    "move64_min_pj": "moving 64 bits, lower bound",
    "move64_max_pj": "moving 64 bits, upper bound",
    "hop_min_pj": "one spike message crossing one tile, lower bound (recorded, not charged)",
    "hop_max_pj": "one spike message crossing one tile, upper bound (recorded, not charged)",
}
_OPTIONAL = {"neuron_inactive_pj", "hop_min_pj", "hop_max_pj"}
#: The largest constant a target or chip file may give, in its unit (pJ, W, s): 1 uJ per operation
#: is far past any hardware, and keeps every energy a profile multiplies out finite (1e308 pJ gave
#: inf - inf = nan).
MAX_CONSTANT = 1e6
#: The longest name of a target or chip (reports and plots are titled with it).
MAX_NAME = 64
#: The largest target or chip file read: its fields and citations take a few hundred bytes.
MAX_FILE_BYTES = 1 << 16

HOROWITZ = "Horowitz, Computing's energy problem, ISSCC 2014, 45 nm, 32-bit float"
DAVIES = "Davies et al., Loihi, IEEE Micro 38(1) 2018, Table 2"
JOINT_A_SNN = "Guo et al., Joint A-SNN, sec. 5.4: a 64-bit move from cache costs 10-100 pJ at 45 nm (after Horowitz 2014)"


@dataclass(frozen=True)
class EnergyTarget:
    """Energy per operation, in picojoules, each constant with the source it comes from.

    Attributes:
        name: the name ``--target`` selects.
        ac_pj, mac_pj, neuron_pj, neuron_inactive_pj, spike_pj, move64_min_pj, move64_max_pj,
        hop_min_pj, hop_max_pj: see `CONSTANTS`; ``None`` where the hardware has no such cost.
        sources: constant name -> citation; every constant that is set needs one.
        description: one line for reports.
    """

    name: str
    ac_pj: float
    mac_pj: float
    neuron_pj: float = 0.0
    neuron_inactive_pj: float | None = None
    spike_pj: float = 0.0
    move64_min_pj: float = 10.0
    move64_max_pj: float = 100.0
    hop_min_pj: float | None = None
    hop_max_pj: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.description, str):
            raise ValueError(f"description={self.description!r} must be a string")
        if not isinstance(self.sources, dict) or not all(isinstance(v, str) and v for v in self.sources.values()):
            raise ValueError("sources must map constant names to non-empty citation strings")
        # the default data-movement constants carry their own source
        defaults = {k: JOINT_A_SNN for k, v in (("move64_min_pj", 10.0), ("move64_max_pj", 100.0))
                    if getattr(self, k) == v and k not in self.sources}
        if defaults:
            object.__setattr__(self, "sources", {**self.sources, **defaults})
        unknown = set(self.sources) - set(CONSTANTS)
        if unknown:
            raise ValueError(f"sources names unknown constant(s) {', '.join(sorted(map(str, unknown)))}")
        for name in CONSTANTS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if not is_constant(value):
                hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) else ""
                raise ValueError(f"{name}={value!r} must be a number in [0, {MAX_CONSTANT:g}], in picojoules{hint}")
            if value and name not in self.sources:
                raise ValueError(f"{name}={value} has no source: add sources.{name}")
        if self.move64_max_pj < self.move64_min_pj:
            raise ValueError(f"move64_max_pj={self.move64_max_pj} is below move64_min_pj={self.move64_min_pj}")
        if (self.hop_min_pj is None) != (self.hop_max_pj is None) or (
            self.hop_min_pj is not None and self.hop_max_pj < self.hop_min_pj
        ):
            raise ValueError(f"hop_min_pj={self.hop_min_pj} and hop_max_pj={self.hop_max_pj}: give both, min <= max")

    def synaptic_pj(self, acs: float, macs: float) -> float:
        """E = N_AC * ac_pj + N_MAC * mac_pj, in pJ."""
        return acs * self.ac_pj + macs * self.mac_pj

    def neuron_pj_total(self, updates: float, active: float, spikes: float) -> float:
        """Neuron energy in pJ: ``active`` updates at ``neuron_pj``, the other ``updates - active``
        at ``neuron_inactive_pj``, plus ``spike_pj`` per spike."""
        inactive = self.neuron_pj if self.neuron_inactive_pj is None else self.neuron_inactive_pj
        return active * self.neuron_pj + (updates - active) * inactive + spikes * self.spike_pj

    def movement_pj(self, bits: float) -> tuple[float, float]:
        """(min, max) energy in pJ to move ``bits``, in 64-bit words."""
        return bits / 64 * self.move64_min_pj, bits / 64 * self.move64_max_pj

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EnergyTarget":
        return cls(**data)


def check_name(name: Any) -> None:
    """A target's or chip's name: one line of at most `MAX_NAME` printable characters.

    Raises:
        ValueError: naming the field.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        shown = f"{name[:20]!r}... ({len(name)} characters)" if isinstance(name, str) and len(name) > MAX_NAME else repr(name)
        raise ValueError(f"name={shown} must be a non-empty line of at most {MAX_NAME} printable characters")


def is_constant(value: Any) -> bool:
    """A number in [0, `MAX_CONSTANT`] (not a bool, not nan)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= MAX_CONSTANT


TARGETS: dict[str, EnergyTarget] = {}


def register_target(factory: Callable[[], EnergyTarget]) -> Callable[[], EnergyTarget]:
    """Decorator: register the target ``factory()`` builds under its name; a taken name is refused."""
    target = factory()
    register_into(TARGETS, target.name, "energy target")(target)
    return factory


@register_target
def cmos45nm() -> EnergyTarget:
    return EnergyTarget(
        "cmos45nm", ac_pj=0.9, mac_pj=4.6, move64_min_pj=10.0, move64_max_pj=100.0,
        sources={
            "ac_pj": f"{HOROWITZ}: 32-bit float add 0.9 pJ",
            "mac_pj": f"{HOROWITZ}: 32-bit float multiply 3.7 pJ + add 0.9 pJ",
            "move64_min_pj": JOINT_A_SNN, "move64_max_pj": JOINT_A_SNN,
        },
        description="45 nm CMOS, 32-bit float (Horowitz 2014): synaptic operations and data movement",
    )


@register_target
def loihi() -> EnergyTarget:
    return EnergyTarget(
        "loihi", ac_pj=23.6, mac_pj=23.6, neuron_pj=81.0, neuron_inactive_pj=52.0, spike_pj=1.7,
        move64_min_pj=10.0, move64_max_pj=100.0, hop_min_pj=3.0, hop_max_pj=4.0,
        sources={
            "ac_pj": f"{DAVIES}: synaptic spike op 23.6 pJ",
            "mac_pj": f"{DAVIES}: no multiplier; graded input charged as one synaptic op",
            "neuron_pj": f"{DAVIES}: neuron update, active 81 pJ",
            "neuron_inactive_pj": f"{DAVIES}: neuron update, inactive 52 pJ",
            "spike_pj": f"{DAVIES}: within-tile spike energy 1.7 pJ",
            "hop_min_pj": f"{DAVIES}: energy per tile hop, east-west 3.0 pJ",
            "hop_max_pj": f"{DAVIES}: energy per tile hop, north-south 4.0 pJ",
            "move64_min_pj": JOINT_A_SNN, "move64_max_pj": JOINT_A_SNN,
        },
        description="Intel Loihi (Davies et al. 2018); tile hops not charged",
    )


def get_target(name: str | None = None, path: str | Path | None = None) -> EnergyTarget:
    """A registered target by name, or the one a TOML/YAML file defines (``path`` wins).

    Raises:
        TargetError: an unknown name, or a file that does not define a valid target.
    """
    if path is not None:
        return load_target_file(path)
    name = name or "cmos45nm"
    if name not in TARGETS:
        raise TargetError(f"unknown energy target {name!r}: choose one of {', '.join(TARGETS)} or give --target-file")
    return TARGETS[name]


def read_sourced_file(path: str | Path, cls: type, what: str, error: type[SnnpipeError], required: list[str],
                      constants: Any) -> Any:
    """A dataclass of constants with their ``sources`` (an energy target, a chip) from TOML (``.toml``)
    or YAML (any other suffix); a constant the file gives without a citation is sourced to the file.

    Args:
        what: the file's kind in messages ("target file", "chip file").
        required: the fields the file must give.
        constants: the fields that are constants (sourced to the file unless cited).

    Raises:
        error: unreadable or malformed file, unknown or missing fields, bad values (one line).
    """
    path = Path(path)
    kind = "TOML" if path.suffix.lower() == ".toml" else "YAML"
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise error(f"{what} {path} is {path.stat().st_size:,} bytes; a {what} takes a few hundred (at most "
                        f"{MAX_FILE_BYTES:,}): check that it is the right file")
        text = path.read_text()
        data = tomllib.loads(text) if kind == "TOML" else load_yaml(text, f"{what} {path}", error)
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(err, "lineno", None)
        where = f" at line {line}" if line else ""
        raise error(f"{what} {path} is not valid {kind}{where} ({type(err).__name__}); fix it") from None
    known = [f.name for f in fields(cls)]
    if not isinstance(data, dict):
        raise error(f"{what} {path} must be a mapping with the fields {', '.join(known)}")
    unknown = sorted(map(str, set(data) - set(known)))
    if unknown:
        raise error(f"{what} {path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}")
    missing = [name for name in required if name not in data]
    if missing:
        raise error(f"{what} {path}: missing field(s) {', '.join(missing)}")
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise error(f"{what} {path}: sources must be a mapping of constant name to citation")
    sources = {**{k: f"{what} {path.name}" for k in constants if data.get(k) is not None}, **sources}
    try:
        return cls(**{**data, "sources": sources})
    except (TypeError, ValueError) as err:
        raise error(f"{what} {path}: {err}") from None


def load_target_file(path: str | Path) -> EnergyTarget:
    """Read a target from TOML (``.toml``) or YAML (any other suffix); see the module docstring.

    Raises:
        TargetError: unreadable or malformed file, unknown or missing fields, bad values.
    """
    return read_sourced_file(path, EnergyTarget, "target file", TargetError, ["name", "ac_pj", "mac_pj"], CONSTANTS)
