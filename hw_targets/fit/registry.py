"""The mappers' registry: each registers its function and the limits it reads from a chip file."""

from __future__ import annotations

from typing import Callable

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.chip import Chip
from snnpipe.hw_targets.fit.layers import FitLayer
from snnpipe.hw_targets.fit.result import ChipFit, Use

Mapper = Callable[[list[FitLayer], dict[str, str], Chip], ChipFit]
#: mapper name -> (function, {limit name: what it is}).
MAPPERS: dict[str, tuple[Mapper, dict[str, str]]] = {}


class FitError(SnnpipeError):
    """A chip that cannot be fitted against (unknown, or its file lacks a limit its mapper needs)."""


def register_mapper(name: str, limits: dict[str, str]) -> Callable[[Mapper], Mapper]:
    """Register a mapper under ``name`` with the limits it reads (refuses a duplicate name)."""
    def add(function: Mapper) -> Mapper:
        if name in MAPPERS:
            raise ValueError(f"mapper {name!r} is registered twice")
        MAPPERS[name] = (function, limits)
        return function
    return add


def limit(chip: Chip, name: str) -> tuple[object, str]:
    """A chip's limit (a ``[limits]`` entry or a field) and its source.

    Raises:
        FitError: the chip file does not give it.
    """
    value = chip.limits.get(name, getattr(chip, name, None))
    if value is None:
        raise FitError(f"chip {chip.name!r} gives no {name} (its mapper {chip.mapper!r} needs it): add it to "
                       f"the chip file's [limits] with its source")
    return value, chip.sources.get(name, chip.name)


def kind_uses(kinds: dict[str, str], chip: Chip, why: dict[str, str] | None = None) -> list[Use]:
    """One failing `Use` per node whose type the chip does not run (its ``kinds`` limit)."""
    runs, source = limit(chip, "kinds")
    return [Use("layer kind", node, 1, 0, f"{kind} node", source,
                (why or {}).get(kind, f"{chip.name} runs {', '.join(runs)}"))
            for node, kind in kinds.items() if kind not in runs]
