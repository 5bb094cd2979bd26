"""The fit stage: a trained network against every chip, ``fit_file(path, chips) -> FitReport``
(``snnpipe fit``; a recipe's ``fit`` step writes it with `fit_to_report`).

The network is read into the typed graph: a checkpoint is built, its BatchNorm folded and traced
(`snnpipe.models.tracer.trace`); a NIR file (any framework's) is imported as it is
(`snnpipe.hw_targets.nir.from_nir`); a Loihi file (netx or graph file) is read back
(`snnpipe.hw_targets.loihi.graph_file.read_loihi`) into it (`LoihiGraph.to_ir`). Each chip's mapper (`snnpipe.hw_targets.fit`) then places it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.chip import RANGED, Chip
from snnpipe.hw_targets.fit import DEFAULT_CHIPS, ChipFit, FitError, fit, get_fit_chip
from snnpipe.models import ir

if TYPE_CHECKING:
    from snnpipe.pipeline.profile.schema import Profile

@dataclass
class FitReport:
    """A network's fit on each chip, in the order asked."""

    network: str
    fits: list[ChipFit]
    accuracy: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, chip: str) -> ChipFit:
        for result in self.fits:
            if result.chip == chip:
                return result
        raise SnnpipeError(f"--require-fit {chip}: {chip} is not among the chips fitted "
                           f"({', '.join(r.chip for r in self.fits)}); add it to --chips")

    def table(self) -> list[str]:
        """The fit table (`fit_table`), without energy (no activity counted), and where that is found."""
        return [*fit_table(self.to_dict()["chips"]), "", UNPRICED_HINT]

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network,
                "chips": [{**r.to_dict(), **({"accuracy": self.accuracy[r.chip]} if r.chip in self.accuracy else {})}
                          for r in self.fits]}


#: The fit table's columns (`fit_rows`): the last holds words.
FIT_HEADER = ["chip", "fits", "cores", "chips", "fullest resource", "energy / inference", "latency / inference",
              "accuracy on the chip", "first failing resource"]
#: The files `write_fit` writes.
FIT_FILES = ("fit.json", "fit.md", "fit.png")
#: Under a fit without a profile: where its energy and latency (``-``) come from.
UNPRICED_HINT = ("energy and latency need the network's activity: `snnpipe profile MODEL --chips CHIPS` "
                 "prices each chip whose figures are published (`-` here)")
FIT_CAPTION = ("Which chip holds the network? Each chip's fullest resource as a share of its limit (its busiest "
               "core where a layer is split), the line at 1 the limit; where the chip does not hold the network, in "
               "red, its first failing resource (at 1000 where the chip has none of it); the cores each chip's "
               "mapping takes beside the bar, and, where a profile counted the activity, the energy (its range; >= a "
               "lower bound) and latency of one inference on it.")


def _fullest(chip: dict[str, Any]) -> dict[str, Any] | None:
    """The resource of highest use / limit of a chip's fit (a ``ChipFit.to_dict``) among those the
    chip has (a limit above 0: a layer kind a chip runs none of is a failure, not a share)."""
    return max((use for use in chip["uses"] if use["limit"]), key=lambda use: use["factor"], default=None)


def fit_rows(chips: list[dict[str, Any]]) -> list[list[str]]:
    """One row per chip (``ChipFit.to_dict``\\ s, as a profile stores them) under `FIT_HEADER`."""
    rows = []
    for chip in chips:
        fullest, failure = _fullest(chip), chip["failure"]
        rows.append([chip["chip"], "yes" if chip["fits"] else "no", str(chip["cores"]), str(chip["chips"]),
                     f"{fullest['resource']} {fullest['factor']:.0%}" if fullest else "-", *_cost_cells(chip.get("cost")),
                     (f"{chip['accuracy']['chip_accuracy']:.2%} ({-chip['accuracy']['drop_pt'] + 0.0:+.2f} pt)"
                      if chip.get("accuracy") else "-"),
                     chip["summary"].split(": ", 2)[-1] if failure else "-"])
    return rows


def chip_cost(profile: "Profile", chip: str | Chip, chips: int | None = None) -> dict[str, Any]:
    """Energy and latency of one inference of the profiled network on ``chip``, from the profile's
    own counts (a Loihi file's: its fixed-point simulator's spikes): the ``chip`` energy model
    (`snnpipe.pipeline.profile.estimators.chip.price_chip`: per-event energies, routing, power over
    the run) in uJ with its range over the constants' published values, and ``steps x step_s`` with
    its range. ``chips``: how many the network takes (the fit's; default: the chip model's count).

    What the chip does not give is not charged and is named (``not_charged``: its vendor publishes
    none), so the energy is a lower bound (``lower_bound``) where that leaves out an energy. A chip
    that gives neither a per-event energy nor a power over a time per step is not priced (``priced``
    false, and why); one without a time per step has no latency (None) and no static energy.
    """
    from snnpipe.pipeline.profile.estimators.base import network_view
    from snnpipe.pipeline.profile.estimators.chip import price_chip, step_time

    chip = chip if isinstance(chip, Chip) else get_fit_chip(chip)
    if not chip.priced:
        return {"priced": False, "why": f"{chip.name}: no per-event energies published, and no power over a time per "
                                        f"step ({chip.description})"}
    total = price_chip(network_view(profile.layers, profile.timesteps, profile.spiking), chip, chips=chips).total()
    latency = step_time(chip, profile.timesteps)
    used = [name for name in RANGED if getattr(chip, name) is not None]
    return {"priced": True, "energy_uj": total.nom * 1e-6, "min_uj": total.lo * 1e-6, "max_uj": total.hi * 1e-6,
            "steps": profile.timesteps, "latency_s": latency.nom if latency else None,
            "latency_min_s": latency.lo if latency else None, "latency_max_s": latency.hi if latency else None,
            "not_charged": chip.not_given(), "lower_bound": chip.lower_bound,
            "sources": {name: chip.sources[name] for name in used}}


#: The chips whose fixed point snnpipe simulates outright (the Loihi export and its simulator).
LOIHI_SIMULATED = ("loihi", "loihi2")


def chip_accuracy(path: str | Path, chips: Iterable[str | Chip] = DEFAULT_CHIPS, data_dir: str | Path | None = None,
                  samples: int | None = None) -> dict[str, dict[str, Any]]:
    """What each chip's quantization costs a checkpoint in test accuracy: chip -> the float accuracy,
    the chip's, the drop in points, and how it was simulated. Loihi and Loihi 2: the Loihi export's
    fixed-point simulator (8-bit weight mantissas, 24-bit state: `snnpipe.pipeline.export`, into a
    temporary file); any other chip: every synapse's weights rounded to the chip's ``synapse_bits``
    (`snnpipe.hw_targets.precision.round_weights`), states left in float (what a chip does to its
    thresholds and states is not simulated).
    """
    import copy
    import tempfile

    import torch

    from snnpipe.hw_targets.precision import round_weights
    from snnpipe.pipeline.checkpoint import Checkpoint
    from snnpipe.pipeline.export import encoded_test_batches, export

    checkpoint = Checkpoint.load(path)
    batches = encoded_test_batches(checkpoint, data_dir, samples)
    model = checkpoint.build_model().eval()

    def accuracy(net: torch.nn.Module) -> float:
        correct = total = 0
        with torch.no_grad():
            for x, y in batches():
                correct += int((net(x.float()).mean(0).argmax(1) == y).sum())
                total += len(y)
        return correct / total

    float_accuracy = accuracy(model)
    loihi = None
    out: dict[str, dict[str, Any]] = {}
    for name in chips:
        chip = name if isinstance(name, Chip) else get_fit_chip(name)
        if chip.name in LOIHI_SIMULATED:
            if loihi is None:  # one fixed point for both Loihi chips
                with tempfile.TemporaryDirectory() as folder:
                    loihi = export(checkpoint, "loihi", out=Path(folder) / "x.net", data_dir=data_dir, samples=samples,
                                   max_drop=100.0).report
            report = loihi
            reference, chip_value = report["accuracy_float"], report["accuracy_fixed_point"]
            how = "the Loihi export's fixed-point simulator, against the float model in Loihi's timing"
        else:
            rounded = copy.deepcopy(model)
            with torch.no_grad():
                for module in rounded.modules():
                    if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)):
                        module.weight.copy_(round_weights(module.weight, chip.synapse_bits))
            reference, chip_value = float_accuracy, accuracy(rounded)
            how = f"weights rounded to {chip.synapse_bits} bits, states in float"
        out[chip.name] = {"weight_bits": chip.synapse_bits, "float_accuracy": reference, "chip_accuracy": chip_value,
                          "drop_pt": (reference - chip_value) * 100, "how": how}
    return out


def _cost_cells(cost: dict[str, Any] | None) -> list[str]:
    """The energy and latency cells of a chip's row: ``-`` where no profile counted the activity,
    ``unpriced`` where its vendor publishes neither per-event energies nor a power over a time per
    step; an energy that leaves out an energy nobody published is a lower bound (``>=``)."""
    if cost is None:
        return ["-", "-"]
    if not cost["priced"]:
        return ["unpriced", "-"]
    bound = ">= " if cost.get("lower_bound") else ""
    energy = f"{bound}{cost['energy_uj']:.3g} uJ ({cost['min_uj']:.3g} to {cost['max_uj']:.3g})"
    if not cost["latency_s"]:
        return [energy, "-"]
    low, high = cost.get("latency_min_s", cost["latency_s"]), cost.get("latency_max_s", cost["latency_s"])
    span = f"{low * 1e3:.3g} to {high * 1e3:.3g}, " if (low, high) != (cost["latency_s"],) * 2 else ""
    return [energy, f"{cost['latency_s'] * 1e3:.3g} ms ({span}{cost['steps']} steps)"]


def fit_table(chips: list[dict[str, Any]]) -> list[str]:
    """The fit table (`fit_rows`) as aligned text, one line per chip."""
    rows = [FIT_HEADER, *fit_rows(chips)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(FIT_HEADER) - 1)]
    return ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            + "  " + row[-1] for row in rows]


def fit_markdown(chips: list[dict[str, Any]], level: str = "##") -> list[str]:
    """The fit table and its figure (``fit.png``) as Markdown lines, under a heading of ``level``."""
    return [f"{level} Chip fit", "", "![each chip's fullest resource against its limit](fit.png)", "", f"*{FIT_CAPTION}*", "",
            "| " + " | ".join(FIT_HEADER) + " |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            *("| " + " | ".join(row) + " |" for row in fit_rows(chips))]


def fit_plot(chips: list[dict[str, Any]], path: str | Path) -> None:
    """``fit.png``: per chip its fullest resource's use / limit (log scale), red where it does not fit;
    beside each bar its cores, or its failing resource, and where a profile priced it its energy and
    latency per inference (`_cost_cells`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.5 * len(chips)))
    factors = [(chip["failure"] or _fullest(chip) or {"factor": 0.0})["factor"] for chip in chips]
    shown = [min(max(factor, 1e-3), 1e3) for factor in factors]  # a resource a chip has none of (limit 0) at 1000
    ax.barh(range(len(chips)), shown, color=["tab:green" if chip["fits"] else "tab:red" for chip in chips], height=0.6)
    ax.axvline(1.0, color="black", linewidth=1)
    for i, (chip, factor) in enumerate(zip(chips, shown)):
        failure = chip["failure"]
        text = (f" {chip['cores']} cores, {chip['chips']} chip(s)" if chip["fits"] else
                f" {failure['layer']}: {failure['resource']} " + (f"{failure['factor']:.3g}x" if failure["limit"] else "none allowed"))
        energy, latency = _cost_cells(chip.get("cost"))
        if chip.get("cost"):  # a profile priced it: its energy and latency per inference beside the verdict
            text += f"; {energy}" + (f", {latency}" if latency != "-" else "")
        ax.text(factor, i, text, va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(1e-3, max(shown + [1.0]) * 100)
    ax.set_yticks(range(len(chips)), [chip["chip"] for chip in chips])
    ax.set_ylim(len(chips) - 0.5, -0.5)
    ax.set_xlabel("fullest resource: use / limit")
    ax.set_title("Chip fit")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")  # the text beside the longest bar inside the image
    plt.close(fig)


def write_fit(report: "FitReport", folder: str | Path) -> Path:
    """``fit.json`` (every chip's mapping and resources), ``fit.md`` (the table and figure) and
    ``fit.png`` (`fit_plot`) into ``folder``, all three or none; returns the JSON's path."""
    from snnpipe.files import atomic_folder

    folder = Path(folder)
    data = report.to_dict()
    with atomic_folder(folder, allowed=FIT_FILES) as new:
        (new / "fit.json").write_text(json.dumps(data, indent=1) + "\n")
        (new / "fit.md").write_text("\n".join([f"# Chip fit of {report.network}", "", *fit_markdown(data["chips"], "##")[2:],
                                                  "", UNPRICED_HINT]) + "\n")
        fit_plot(data["chips"], new / "fit.png")
    return folder / "fit.json"


def read_graph(path: str | Path) -> ir.Graph:
    """The typed graph of a checkpoint, a NIR file or a Loihi file (module docstring).

    Raises:
        SnnpipeError: none of these, or a layer the graph has no node for (named).
    """
    from snnpipe.hw_targets.hdf5_file import is_loihi_file
    from snnpipe.hw_targets.loihi.graph_file import read_loihi

    path = Path(path)
    if path.suffix.lower() == ".nir":
        from snnpipe.hw_targets.nir import from_nir, read_nir

        return from_nir(read_nir(path)[0]).graph
    if is_loihi_file(path):
        return read_loihi(path)[0].to_ir()
    from snnpipe.hw_targets.folding import fold_batchnorm
    from snnpipe.models.tracer import trace
    from snnpipe.pipeline.checkpoint import Checkpoint

    checkpoint = Checkpoint.load(path)
    model = fold_batchnorm(checkpoint.build_model()).eval()
    return trace(model, tuple(checkpoint.data.input_shape))


def fit_file(path: str | Path, chips: Iterable[str | Chip] = DEFAULT_CHIPS) -> FitReport:
    """The network in ``path`` fitted onto each of ``chips`` (names, chip files or `Chip`\\ s)."""
    return FitReport(str(path), fit(read_graph(path), chips))


def resolve_chips(chips: str | Iterable[str] | None = None,
                  require_fit: str | Iterable[str] = ()) -> tuple[list[Chip], list[str]]:
    """The chips to fit: ``chips`` (default `DEFAULT_CHIPS`), then each of ``require_fit`` not among
    them, each a name or a chip file (`get_fit_chip`), once; and the required ones' names, as the
    report names its chips (a chip file by the name inside it). A string is a comma-separated list.

    Raises:
        FitError: an unknown chip; two different chips of one name (a chip file named as a built-in
            chip or another file): the report, the gate and the accuracy would take either for it.
    """
    resolved: dict[str, tuple[str, Chip]] = {}
    names: dict[str, str] = {}
    chips, require_fit = _listed(chips), _listed(require_fit)
    for given in [*(chips or DEFAULT_CHIPS), *require_fit]:
        chip = get_fit_chip(given)
        first, known = resolved.setdefault(chip.name, (given, chip))
        if known != chip:
            raise FitError(f"two chips are named {chip.name!r} ({first}, {given}); give the chip file a name of its own")
        names[given] = chip.name
    return [chip for _, chip in resolved.values()], [names[given] for given in require_fit]


def _listed(chips: str | Iterable[str] | None) -> list[str]:
    if isinstance(chips, str):
        return [name.strip() for name in chips.split(",") if name.strip()]
    return [str(name) for name in chips or ()]


class FitGateError(SnnpipeError):
    """A chip the network was required to fit (``require_fit``) that it does not fit."""


def fit_to_report(path: str | Path, out: str | Path, chips: Iterable[str] | None = None,
                  require_fit: Iterable[str] = ()) -> tuple[dict[str, Any], Path]:
    """``fit_file`` written to ``out`` (`write_fit`); the summary is ``{chip: fits}`` and the cores.

    Raises:
        FitGateError: a chip of ``require_fit`` that the network does not fit (after writing the report).
    """
    from snnpipe.files import atomic_path

    chips, require = resolve_chips(chips, require_fit)
    report = fit_file(path, chips)
    target = write_fit(report, out)
    failed = [report.get(name) for name in require if not report.get(name).fits]
    if failed:
        raise FitGateError("; ".join(result.summary() for result in failed))
    summary = {f"{r.chip}_fits": r.fits for r in report.fits}
    summary.update({f"{r.chip}_cores": r.cores for r in report.fits})
    return summary, target
