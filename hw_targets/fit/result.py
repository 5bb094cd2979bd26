"""What a fit says: every resource's use against its limit, per layer, and the verdict per chip."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Use:
    """One resource of one layer (or of the whole network: layer ``*``) against its limit.

    Attributes:
        resource: what is counted (``neurons per core``, ``kernel memory`` ...).
        layer: the layer (synapse node) it belongs to, ``*`` for the network.
        use: how much the layer needs (on its busiest core where it is split).
        limit: what the chip has.
        unit: the unit of both.
        source: where the limit comes from.
        change: what to change where it does not fit (empty where it fits).
    """

    resource: str
    layer: str
    use: float
    limit: float
    unit: str
    source: str
    change: str = ""

    @property
    def fits(self) -> bool:
        return self.use <= self.limit

    @property
    def factor(self) -> float:
        """use / limit: above 1 by how much it does not fit."""
        return self.use / self.limit if self.limit else float("inf")

    def describe(self) -> str:
        where = "the network" if self.layer == "*" else self.layer
        if self.limit == 0 and not self.fits:
            return f"{where}: {self.resource}: {self.use:g} {self.unit}, none allowed" + (f"; {self.change}" if self.change else "")
        text = (f"{where}: {self.resource} {self.use:g} {self.unit} of {self.limit:g}"
                + (f" ({self.factor:.3g}x)" if not self.fits else ""))
        return text + (f"; {self.change}" if self.change else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fits": self.fits, "factor": self.factor}


@dataclass
class ChipFit:
    """A network mapped onto one chip.

    Attributes:
        chip: the chip's name.
        mapper: the mapper that placed it (the chip file's ``mapper``).
        placement: layer -> the cores (NPs, core layers) it takes, as the vendor's mapper would.
        uses: every resource checked, in layer order.
        cores: cores used in all; ``chips``: chips needed for them.
        quantization: what the chip imposes (weight and state bits ...), with sources.
        notes: what the mapping assumes, one line each.
    """

    chip: str
    mapper: str
    placement: dict[str, list[int]]
    uses: list[Use]
    cores: int
    chips: int
    quantization: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return all(use.fits for use in self.uses)

    @property
    def failure(self) -> Use | None:
        """The first resource that does not fit, in layer order."""
        return next((use for use in self.uses if not use.fits), None)

    def summary(self) -> str:
        failure = self.failure
        if failure is None:
            return f"{self.chip}: fits, {self.cores} cores on {self.chips} chip(s)"
        return f"{self.chip}: does not fit: {failure.describe()}"

    def to_dict(self) -> dict[str, Any]:
        failure = self.failure
        return {"chip": self.chip, "mapper": self.mapper, "fits": self.fits, "cores": self.cores, "chips": self.chips,
                "failure": failure.to_dict() if failure else None, "summary": self.summary(),
                "placement": self.placement, "uses": [use.to_dict() for use in self.uses],
                "quantization": self.quantization, "notes": self.notes}
