"""Does a network fit a chip, and if not, which resource fails where: ``snnpipe fit``.

``fit(graph, chips) -> list[ChipFit]`` takes the typed graph (`snnpipe.models.ir`) and, per chip
(`snnpipe.hw_targets.chip`: a file each), the mapper the chip file names. A mapper places the graph's
layers (`layers.fit_layers`: a synapse and its neuron) as the vendor's own mapper would and counts
every resource against the chip's limits (`result.Use`); the first that does not fit, in layer
order, is the verdict, with what to change. Mappers, one module each:

- ``cores`` (`cores`): Loihi, Loihi 2, SpiNNaker 2: each layer split over as many cores as its
  neurons and its synaptic memory need, cores in layer order;
- ``dynapcnn`` (`dynapcnn`): Speck: one layer per core, Sinabs' memory formulas and its matching of
  layers to the nine cores;
- ``xylo`` (`xylo`): Xylo Audio 2: Rockpool's mapper: one hidden population, input and output channels;
- ``akida`` (`akida`): Akida AKD1000: one or more neural processors per layer.

A mapper is a function ``(layers, kinds, chip) -> ChipFit`` registered with `register_mapper`,
which also declares the limits it reads from the chip file's ``[limits]`` table.
"""

from __future__ import annotations

from typing import Iterable

from snnpipe.hw_targets.chip import CHIPS, Chip, load_chip_file
from snnpipe.hw_targets.fit import akida, cores, dynapcnn, xylo  # noqa: F401 - each registers its mapper
from snnpipe.hw_targets.fit.layers import FitLayer, fit_layers, node_kinds
from snnpipe.hw_targets.fit.registry import MAPPERS, FitError, kind_uses, limit, register_mapper
from snnpipe.hw_targets.fit.result import ChipFit, Use
from snnpipe.models import ir

#: The chips ``snnpipe fit`` checks by default, in the order of its table.
DEFAULT_CHIPS = ("loihi2", "loihi", "speck", "xylo", "akida", "spinnaker2")


def get_fit_chip(name: str) -> Chip:
    """A built-in chip by name, or a chip file by path (anything with a suffix).

    Raises:
        FitError: an unknown name; ChipError: a malformed file.
    """
    if name in CHIPS:
        return CHIPS[name]
    if "." in name or "/" in name:
        return load_chip_file(name)
    raise FitError(f"unknown chip {name!r}: choose from {', '.join(CHIPS)} or give a chip file's path")


def fit_graph(graph: ir.Graph, chip: Chip) -> ChipFit:
    """The graph mapped onto one chip (module docstring)."""
    function, _ = MAPPERS[chip.mapper]
    return function(fit_layers(graph), node_kinds(graph), chip)


def fit(graph: ir.Graph, chips: Iterable[str | Chip] = DEFAULT_CHIPS) -> list[ChipFit]:
    """The graph on each chip, in the order given."""
    return [fit_graph(graph, chip if isinstance(chip, Chip) else get_fit_chip(chip)) for chip in chips]


__all__ = ["ChipFit", "DEFAULT_CHIPS", "FitError", "FitLayer", "MAPPERS", "Use", "fit", "fit_graph", "fit_layers",
           "get_fit_chip", "kind_uses", "limit", "register_mapper"]
