"""The fit stage: a trained network against every chip, ``fit_file(path, chips) -> FitReport``
(``snnpipe fit``; a recipe's ``fit`` step writes it with `fit_to_report`).

The network is read into the typed graph: a checkpoint is built, its BatchNorm folded and traced
(`snnpipe.models.tracer.trace`); a NIR file (any framework's) is imported as it is
(`snnpipe.hw_targets.nir.from_nir`); a Loihi file (netx or graph file) is read back
(`snnpipe.hw_targets.loihi.graph_file.read_loihi`) into it (`LoihiGraph.to_ir`). Each chip's mapper (`snnpipe.hw_targets.fit`) then places it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.fit import DEFAULT_CHIPS, ChipFit, fit
from snnpipe.models import ir


@dataclass
class FitReport:
    """A network's fit on each chip, in the order asked."""

    network: str
    fits: list[ChipFit]

    def get(self, chip: str) -> ChipFit:
        for result in self.fits:
            if result.chip == chip:
                return result
        raise SnnpipeError(f"--require-fit {chip}: {chip} is not among the chips fitted "
                           f"({', '.join(r.chip for r in self.fits)}); add it to --chips")

    def table(self) -> list[str]:
        """One line per chip: fits, cores, chips, the first failing resource."""
        lines = [f"{'chip':<11} {'fits':<5} {'cores':>6} {'chips':>5}  first failing resource"]
        for r in self.fits:
            failure = r.failure
            lines.append(f"{r.chip:<11} {'yes' if r.fits else 'no':<5} {r.cores:>6} {r.chips:>5}  "
                         + (failure.describe() if failure else "-"))
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network, "chips": [r.to_dict() for r in self.fits]}


def read_graph(path: str | Path) -> ir.Graph:
    """The typed graph of a checkpoint, a NIR file or a Loihi file (module docstring).

    Raises:
        SnnpipeError: none of these, or a layer the graph has no node for (named).
    """
    from snnpipe.hw_targets.loihi.graph_file import is_loihi_file, read_loihi

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


def fit_file(path: str | Path, chips: Iterable[str] = DEFAULT_CHIPS) -> FitReport:
    """The network in ``path`` fitted onto each of ``chips`` (names or chip files)."""
    return FitReport(str(path), fit(read_graph(path), chips))


class FitGateError(SnnpipeError):
    """A chip the network was required to fit (``require_fit``) that it does not fit."""


def fit_to_report(path: str | Path, out: str | Path, chips: Iterable[str] | None = None,
                  require_fit: Iterable[str] = ()) -> tuple[dict[str, Any], Path]:
    """``fit_file`` written to ``out/fit.json``; the summary is ``{chip: fits}`` and the cores.

    Raises:
        FitGateError: a chip of ``require_fit`` that the network does not fit (after writing the report).
    """
    from snnpipe.files import atomic_path

    require = list(require_fit)
    names = list(chips) if chips else list(DEFAULT_CHIPS)
    report = fit_file(path, names + [name for name in require if name not in names])
    target = Path(out) / "fit.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    failed = [report.get(name) for name in require if not report.get(name).fits]
    if failed:
        raise FitGateError("; ".join(result.summary() for result in failed))
    summary = {f"{r.chip}_fits": r.fits for r in report.fits}
    summary.update({f"{r.chip}_cores": r.cores for r in report.fits})
    return summary, target
