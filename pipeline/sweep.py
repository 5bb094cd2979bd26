"""Sweeps: a recipe's train step run over a grid, and the mean +/- std over seeds of what it gave.

A train step of a recipe may carry ``sweep:``, a mapping from a training option to the values it
takes; the step then trains one *cell* per combination (the cartesian product, in the order the
keys are written)::

    - train:
        stage: esd
        sweep: {stage_args.base: [ratebp, bptt], seed: [0, 1, 2]}

A key is a `TrainConfig` field or a neuron parameter (``seed``, ``timesteps``, ``lr``, ``reset``
...), or ``stage_args.K`` / ``model_args.K`` for one stage or model argument. Every cell trains into
``<step folder>/<cell name>/`` and is then profiled for its energy per inference (`SWEEP_TARGET`,
the first `SWEEP_SAMPLES` test samples: `ENERGIES`, two figures named as every report names them);
its accuracy is the trainer's last epoch's, on the test
images the recipe tests on (all of the test split unless it sets ``test_samples``), and on the
validation split where it sets ``val_samples`` (``val_acc``, what a choice of weights reads: the
test set never chooses); its result is written to ``cell.json`` there, last, so that
a resumed run (``snnpipe run RECIPE --resume FOLDER``) skips every cell that has one and continues
an interrupted cell from its checkpoint.

A cell is one `CellJob` and always runs through `attempt` (`run_cell`), whatever runs it: this
process one cell after another, N local worker processes, or a Ray cluster (`snnpipe.pipeline.executors`).
A cell gives the same numbers under each (one thread per cell: `tests/test_executors.py`); one that
fails (a user error, a worker that died) is a result with ``failed`` set, never written, so the
other cells finish and a resumed run redoes it from its checkpoint.

A *setting* is a cell's values without its seed: `summarize` gives per setting of every swept step
the mean and sample standard deviation (n - 1) over its seeds of the test accuracy, the firing rate
and both energies, and `write_sweep_reports` writes them as ``sweep.md``, ``sweep.json`` and a Pareto
plot ``pareto.png`` (accuracy against firing rate and against energy, one point per setting with
its standard deviations as error bars) into the run folder.
"""

from __future__ import annotations

import collections
import itertools
import json
import re
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from snnpipe.pipeline import process
from snnpipe.pipeline.claims import Claim, evaluate as evaluate_claim, table as claims_table
from snnpipe.errors import SnnpipeError, TrainingDiverged
from snnpipe.files import atomic_path
from snnpipe.hw_targets.energy import get_target
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.energy_report import (COMPUTE_TERMS, TERM_NAMES, Figure, compute_key, compute_name, figure_key,
                                            figure_name, in_unit, unit_of)

#: The energy every cell is priced at: Horowitz's 45 nm CMOS (`snnpipe.hw_targets.energy`).
SWEEP_TARGET = "cmos45nm"
#: The precision the ``memory`` model prices every cell at.
SWEEP_PRECISION = "int8"
#: The SNN's figure under the ``memory`` model (compute and data movement).
MEMORY = Figure("snn", "memory", SWEEP_PRECISION)
#: A cell's two energy figures: JSON key (and `CellResult` field) -> name. The compute-only one first.
ENERGIES = {compute_key(SWEEP_TARGET): compute_name(SWEEP_TARGET), figure_key(MEMORY): figure_name(MEMORY)}
#: Keys that ``cell.json`` and ``sweep.json`` had before the figures were named, read as their names'.
RENAMED = {"energy_uj": compute_key(SWEEP_TARGET), "memory_energy_uj": figure_key(MEMORY)}
#: Test samples per cell's energy profile (the accuracy is the trainer's, on the test images it tests on).
SWEEP_SAMPLES = 1000
#: The grid keys that name one argument inside a dict option.
NESTED = ("stage_args", "model_args")
CELL_RESULT = "cell.json"


class SweepError(SnnpipeError):
    """A sweep that cannot run: the message names the key."""


@dataclass(frozen=True)
class Cell:
    """One combination of a step's grid: ``values`` maps each grid key to its value here."""

    step: str
    name: str
    values: dict[str, Any]

    @property
    def setting(self) -> dict[str, Any]:
        """The values without the seed: cells of one setting differ only in their seed."""
        return {k: v for k, v in self.values.items() if k != "seed"}

    def options(self, step_options: dict[str, Any]) -> dict[str, Any]:
        """The step's training options with this cell's values written in."""
        out = {k: v for k, v in step_options.items() if k != "sweep"}
        for key, value in self.values.items():
            outer, _, inner = key.partition(".")
            if inner:
                out[outer] = {**(out.get(outer) or {}), inner: value}
            else:
                out[key] = value
        return out


def _value_name(value: Any) -> str:
    """A value as a folder name's part: a number's minus sign as ``neg`` (``-0.5`` and ``0.5`` are two cells)
    and an exponent's plus dropped (``1e+30`` as ``1e30``, not ``1e-30``)."""
    text = value if isinstance(value, str) else re.sub(r"(?<![0-9eE])-(?=[0-9.])", "neg",
                                                       json.dumps(value).replace("e+", "e"))
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "x"


def expand(step: str, grid: Any, known: set[str], where: str) -> list[Cell]:
    """The cells of ``grid`` (a mapping of option -> list of values), checked: keys known, lists
    non-empty, no value twice. ``known`` holds the option names a train step takes."""
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"{where}: sweep must be a mapping of option to a list of values, e.g. sweep: {{seed: [0, 1, 2]}}")
    for key, values in grid.items():
        outer, dot, inner = str(key).partition(".")
        if (dot and (outer not in NESTED or not inner)) or (not dot and key not in known) or key in NESTED:
            raise SweepError(f"{where}: sweep key {key!r} is not a training option; use an option name "
                             f"(seed, timesteps, lr, ...) or {' / '.join(f'{n}.NAME' for n in NESTED)}")
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}: sweep {key!r} must be a non-empty list of values")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise SweepError(f"{where}: sweep {key!r} lists a value twice")
    keys = list(grid)
    cells = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        name = "_".join(f"{k.rpartition('.')[2]}-{_value_name(v)}" for k, v in values.items())
        cells.append(Cell(step, name, values))
    if len({c.name for c in cells}) != len(cells):
        raise SweepError(f"{where}: two cells of the sweep would share a folder name; give distinct values")
    return cells


@dataclass
class CellResult:
    """What one cell gave: its final test accuracy and firing rate (the trainer's last epoch), and the
    energy per inference of its checkpoint at `SWEEP_TARGET` (the two `ENERGIES`, each a field under its
    key: compute only, and the ``memory`` model's total); or, for a cell whose training diverged
    (`TrainingDiverged`), no numbers and ``diverged`` the message (a result too: it is kept on resume,
    counted beside its setting and left out of the means); or, for a cell that could not run (a user
    error, its worker died), no numbers and ``failed`` the one line saying why (never written: a
    resumed run runs it again, from its checkpoint where it has one)."""

    step: str
    cell: str
    values: dict[str, Any]
    test_acc: float | None
    firing_rate: float | None
    compute_energy_ops_cmos45nm_uj: float | None  # the two energies: `ENERGIES`' keys (tests/test_sweep.py)
    checkpoint: str | None
    seconds: float
    diverged: str | None = None
    failed: str | None = None
    val_acc: float | None = None  # on the validation split (`TrainConfig.val_samples`), where there is one
    snn_energy_memory_int8_uj: float | None = None  # `CellActivity`'s, as the next two
    layer_rates: dict[str, float] | None = None
    step_rates: dict[str, list[float]] | None = None
    epochs: int | None = None  # the epochs it trained
    converged: bool | None = None  # schedule plateau: whether it stopped on its own (`train.Plateau`); None: cosine

    @classmethod
    def read(cls, folder: Path) -> "CellResult | None":
        """The result a finished cell left in ``folder``, or None (unfinished or unreadable); a file
        written under the old keys (`RENAMED`) reads as one under the new."""
        try:
            return cls(**renamed(json.loads((folder / CELL_RESULT).read_text())))
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def failure(cls, cell: Cell, why: str, seconds: float = 0.0) -> "CellResult":
        return cls(cell.step, cell.name, cell.values, None, None, None, None, seconds, failed=why)

    def energy_text(self) -> str:
        """Its `ENERGIES` by name, each in the unit chosen for it: ``SNN energy (memory, int8) 412.3 nJ``."""
        return "  ".join(f"{name} {in_unit(value * 1e6, unit_of(value * 1e6))}" for name, value in
                         ((name, getattr(self, key)) for key, name in ENERGIES.items()) if value is not None)

    def write(self, folder: Path) -> None:
        with atomic_path(folder / CELL_RESULT) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")


def renamed(fields: dict[str, Any]) -> dict[str, Any]:
    """A cell's or a setting's fields with the old keys (`RENAMED`, and their ``_std``) under the new."""
    old = {**RENAMED, **{f"{k}_std": f"{v}_std" for k, v in RENAMED.items()}}
    return {old.get(k, k): v for k, v in fields.items()}


@dataclass(frozen=True)
class CellJob:
    """One cell as a worker gets it (picklable): its training config, whose ``out`` is the cell's
    folder (absolute: a worker may run elsewhere on a shared file system), ``@`` references
    resolved; ``threads`` the worker's thread count (None: this process's policy)."""

    cell: Cell
    config: TrainConfig
    threads: int | None = None
    progress: bool = False


@dataclass(frozen=True)
class CellActivity:
    """A cell's checkpoint profiled on its first `SWEEP_SAMPLES` test samples (or all, if fewer).

    Attributes:
        compute_uj: the compute-only energy per inference (`compute_name`: the ``ops`` model's synaptic
            compute and the neuron updates `SWEEP_TARGET` charges, none on cmos45nm; no data movement).
        memory_uj: the SNN's energy per inference under the ``memory`` model at `SWEEP_PRECISION`
            (`MEMORY`: compute and data movement, `snnpipe.pipeline.profile`).
        layer_rates: per neuron layer, its firing rate (spikes / neuron / step).
        step_rates: per neuron layer, its firing rate at each timestep.
    """

    compute_uj: float
    memory_uj: float
    layer_rates: dict[str, float]
    step_rates: dict[str, list[float]]


def cell_activity(checkpoint: Path) -> CellActivity:
    """`CellActivity` of a checkpoint: one profile under the ``memory`` model, whose compute
    energy is the ``ops`` model's."""
    from snnpipe.pipeline.profile import profile_checkpoint

    profile = profile_checkpoint(checkpoint, target=SWEEP_TARGET, samples=SWEEP_SAMPLES, energy_model=MEMORY.model,
                                 precision=MEMORY.precision)
    neurons = [layer for layer in profile.layers if layer.kind == "neuron"]
    return CellActivity(float(profile.totals.compute_energy_uj), float(profile.estimates["snn"].total_pj) / 1e6,
                        {n.name: float(n.firing_rate) for n in neurons},
                        {n.name: [float(r) for r in n.rate_per_step] for n in neurons})


def run_cell(job: CellJob) -> CellResult:
    """Train and profile one cell into its folder and write its ``cell.json``: the one code path of
    a cell, whatever runs it. A finished cell is read, not redone; an interrupted one continues from
    its checkpoint (bit-identical to an uninterrupted run, `snnpipe.pipeline.train`). Raises what
    training raises, but for `TrainingDiverged` (a result)."""
    from snnpipe.pipeline.train import CHECKPOINT_NAME, train

    target = Path(job.config.out)
    finished = CellResult.read(target)
    if finished is not None:
        return finished
    if job.threads is not None:
        process.start(job.threads)
    config = job.config
    if (target / CHECKPOINT_NAME).exists():
        config = replace(config, resume=str(target / CHECKPOINT_NAME))
    cell, started = job.cell, time.perf_counter()
    try:
        ckpt = train(config, progress=job.progress)
    except TrainingDiverged as err:
        result = CellResult(cell.step, cell.name, cell.values, None, None, None, None,
                            time.perf_counter() - started, str(err))
    else:
        last, seconds = ckpt.history[-1], time.perf_counter() - started
        activity = cell_activity(ckpt.path)
        result = CellResult(cell.step, cell.name, cell.values, float(last["test_acc"]), float(last["firing_rate"]),
                            activity.compute_uj, str(ckpt.path), seconds,
                            val_acc=float(last["val_acc"]) if "val_acc" in last else None,
                            snn_energy_memory_int8_uj=activity.memory_uj, layer_rates=activity.layer_rates,
                            step_rates=activity.step_rates, epochs=int(last["epochs"]), converged=last.get("converged"))
    result.write(target)
    return result


def attempt(job: CellJob) -> CellResult:
    """`run_cell`, with a user error (`SnnpipeError`) turned into a failed result: the cell's one
    line, while the other cells go on. Every executor runs a cell through this."""
    started = time.perf_counter()
    try:
        return run_cell(job)
    except SnnpipeError as err:
        return CellResult.failure(job.cell, str(err), time.perf_counter() - started)


@dataclass(frozen=True)
class SweepProgress:
    """Where a step's cells stand after one more finished: ``done`` of ``count``, ``running`` now,
    ``left`` not started."""

    done: int
    running: int
    left: int
    count: int


class Executor(Protocol):
    """Runs cells (`attempt` on each job) and yields ``(index in jobs, result, cells still running)``
    as each ends, in any order (`snnpipe.pipeline.executors`)."""

    def map(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult, int]]: ...


def run_cells(jobs: list[CellJob], executor: Executor,
              on_cell: Callable[[CellResult, bool, SweepProgress], None] | None = None) -> list[CellResult]:
    """Every cell of one step, or of several steps at once (their cells share the executor's workers), in
    the jobs' order: a cell whose ``cell.json`` exists is read, not redone; the rest run on ``executor``.
    ``on_cell`` is called as each cell ends with its result, whether it was kept from before, and the
    progress: done of the count of its step's cells, running and left across all ``jobs``."""
    results: dict[int, CellResult] = {}
    count = collections.Counter(job.cell.step for job in jobs)
    done: collections.Counter = collections.Counter()
    pending = []

    def ended(i: int, result: CellResult, running: int) -> SweepProgress:
        results[i], step = result, jobs[i].cell.step
        done[step] += 1
        return SweepProgress(done[step], running, len(jobs) - len(results) - running, count[step])

    for i, job in enumerate(jobs):
        kept = CellResult.read(Path(job.config.out))
        if kept is None:
            pending.append(i)
            continue
        where = ended(i, kept, 0)
        if on_cell:
            on_cell(kept, True, where)
    for k, result, running in executor.map([jobs[i] for i in pending]):
        where = ended(pending[k], result, running)
        if on_cell:
            on_cell(result, False, where)
    return [results[i] for i in range(len(jobs))]


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample std; no std (None) for one value."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def summarize(results: list[CellResult]) -> list[dict[str, Any]]:
    """Per step and setting (cells equal but for their seed), in the order first met: n (the cells
    that finished), their seeds, the numbers that diverged and that failed, and mean and sample std
    of test accuracy, firing rate and the `ENERGIES` over the finished ones (None where none finished)."""
    groups: dict[tuple[str, str], list[CellResult]] = {}
    for r in results:
        setting = {k: v for k, v in r.values.items() if k != "seed"}
        groups.setdefault((r.step, json.dumps(setting, sort_keys=True)), []).append(r)
    rows = []
    for (step, setting), members in groups.items():
        finished = [m for m in members if not m.diverged and not m.failed]
        row: dict[str, Any] = {"step": step, "setting": json.loads(setting), "n": len(finished),
                               "seeds": [m.values.get("seed") for m in finished],
                               "diverged": sum(1 for m in members if m.diverged),
                               "failed": sum(1 for m in members if m.failed)}
        for field in ("test_acc", "firing_rate", "val_acc", *ENERGIES):
            values = [getattr(m, field) for m in finished]
            mean, std = _mean_std(values) if values and None not in values else (None, None)
            row[field] = mean
            row[f"{field}_std"] = std
        if finished and all(m.layer_rates for m in finished):  # per layer, and per layer and step: means
            row["layer_rates"] = {k: statistics.fmean(m.layer_rates[k] for m in finished) for k in finished[0].layer_rates}
            row["step_rates"] = {k: [statistics.fmean(step) for step in zip(*(m.step_rates[k] for m in finished))]
                                 for k in finished[0].step_rates}
        rows.append(row)
    return rows


def label(row: dict[str, Any]) -> str:
    """A row's name: the step, and its setting where it has one."""
    setting = ", ".join(f"{k.rpartition('.')[2]}={v}" for k, v in row["setting"].items())
    return f"{row['step']} ({setting})" if setting else row["step"]


def _pm(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 2) -> str:
    if mean is None:
        return "-"
    text = f"{mean * scale:.{digits}f}"
    return text if std is None else f"{text} +/- {std * scale:.{digits}f}"


def energy_units(rows: list[dict[str, Any]]) -> dict[str, tuple[str, float]]:
    """Per energy key, the one unit its column or axis shows (`unit_of` its smallest mean)."""
    return {key: unit_of(min((r[key] * 1e6 for r in rows if r.get(key)), default=0.0)) for key in ENERGIES}


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: one line per setting, mean +/- std over its seeds; each energy headed by its
    name and shown in the unit chosen for it (`energy_units`). Rows of an old ``sweep.json`` read too."""
    rows = [renamed(row) for row in rows]
    units = energy_units(rows)
    lines = ["| setting | seeds | test accuracy (%) | firing rate | "
             + " | ".join(f"{name} ({units[key][0]})" for key, name in ENERGIES.items()) + " |",
             "| --- | --- | ---: | ---: |" + " ---: |" * len(ENERGIES)]
    for row in rows:
        seeds = f"{row['n']}" + "".join(f" (+{row[k]} {k})" for k in ("diverged", "failed") if row.get(k))
        energies = " | ".join(_pm(row.get(key), row.get(f"{key}_std"), 1e6 / units[key][1]) for key in ENERGIES)
        lines.append(f"| {label(row)} | {seeds} | {_pm(row['test_acc'], row['test_acc_std'], 100)} | "
                     f"{_pm(row['firing_rate'], row['firing_rate_std'], digits=4)} | {energies} |")
    return "\n".join(lines)


def rates_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: per setting (`summarize`'s rows) and spiking layer, its firing rate and the rate at
    each timestep, means over the setting's seeds; empty where no row has them."""
    rows = [row for row in rows if row.get("layer_rates")]
    if not rows:
        return ""
    steps = max(len(rates) for row in rows for rates in row["step_rates"].values())
    lines = ["| setting | layer | rate | " + " | ".join(f"t={t}" for t in range(1, steps + 1)) + " |",
             "| --- | --- | ---: |" + " ---: |" * steps]
    for row in rows:
        for layer, rate in row["layer_rates"].items():
            by_step = [f"{r:.4f}" for r in row["step_rates"].get(layer, [])]
            lines.append(f"| {label(row)} | {layer} | {rate:.4f} | " + " | ".join(by_step + ["-"] * (steps - len(by_step))) + " |")
    return "\n".join(lines)


def convergence_table(results: list[CellResult]) -> str:
    """A Markdown table: per setting trained under ``schedule: plateau``, the epochs each seed trained and
    how many stopped on their own (`train.Plateau`) rather than at the ``epochs`` cap; empty where none was."""
    groups: dict[str, list[CellResult]] = {}
    for r in results:
        if r.converged is not None:
            groups.setdefault(label({"step": r.step, "setting": {k: v for k, v in r.values.items() if k != "seed"}}),
                              []).append(r)
    if not groups:
        return ""
    lines = ["| setting | epochs per seed | converged |", "| --- | --- | ---: |"]
    lines += [f"| {name} | {', '.join(str(r.epochs) for r in rs)} | {sum(r.converged for r in rs)} of {len(rs)} |"
              for name, rs in groups.items()]
    return "\n".join(lines)


def curves(results: list[CellResult]) -> list[dict[str, Any]]:
    """Per step and setting, the mean over its finished seeds of each epoch's training accuracy
    (and validation accuracy, where there is one) and the learning rate of that epoch, over the epochs
    every seed trained, and under ``runs`` each seed's own, read from the cells' ``metrics.jsonl``:
    whether training was flat before the schedule reached 0."""
    groups: dict[tuple[str, str], list[list[dict]]] = {}
    for r in results:
        if r.checkpoint is None or r.diverged or r.failed:
            continue
        lines = (Path(r.checkpoint).parent / "metrics.jsonl").read_text().splitlines()
        setting = json.dumps({k: v for k, v in r.values.items() if k != "seed"}, sort_keys=True)
        groups.setdefault((r.step, setting), []).append((r.values.get("seed"), [json.loads(line) for line in lines]))
    fields = ("train_acc", "val_acc", "lr")
    out = []
    for (step, setting), runs in groups.items():
        epochs = min(len(run) for _, run in runs)
        row: dict[str, Any] = {"step": step, "setting": json.loads(setting), "n": len(runs)}
        for field in fields:
            if all(field in run[e] for _, run in runs for e in range(epochs)):
                row[field] = [statistics.fmean(run[e][field] for _, run in runs) for e in range(epochs)]
        row["runs"] = [{"seed": seed, **{f: [line[f] for line in run] for f in fields if all(f in line for line in run)}}
                       for seed, run in runs]
        out.append(row)
    return out


def curves_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """One panel per setting: each seed's training (solid) and validation (dashed) accuracy per epoch, one
    colour per seed, and its learning rate on the right axis (grey; a log axis where the schedule divides
    it, ``schedule: plateau``, as it never reaches 0 there). Rows without ``runs`` (an older
    ``sweep.json``) draw their mean curves as one run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(rows))
    fig, axes = plt.subplots(-(-len(rows) // cols), cols, figsize=(max(5 * cols, 8), 3.4 * -(-len(rows) // cols)),
                             squeeze=False, constrained_layout=True)
    colors = plt.get_cmap("tab10")
    for ax, row in zip(axes.flat, rows):
        lr_axis = ax.twinx()
        for i, run in enumerate(row.get("runs") or [row]):
            epochs = range(1, len(run["train_acc"]) + 1)
            ax.plot(epochs, [a * 100 for a in run["train_acc"]], color=colors(i % 10), linewidth=1,
                    label=f"seed {run['seed']}" if "seed" in run else "mean")
            if "val_acc" in run:
                ax.plot(epochs, [a * 100 for a in run["val_acc"]], "--", color=colors(i % 10), linewidth=0.8)
            if "lr" in run:
                lr_axis.plot(epochs, run["lr"], color="0.6", linewidth=0.8)
                if min(run["lr"]) > 0 and max(run["lr"]) >= 10 * min(run["lr"]):
                    lr_axis.set_yscale("log")
        ax.set_title(label(row), fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel("accuracy (%)")
        lr_axis.set_ylabel("lr at the epoch's end (grey)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    fig.suptitle(f"{title}: training (solid) and validation (dashed) accuracy per seed")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """The indices of the points (cost, accuracy) no other point beats: none has a cost as low and an
    accuracy as high with one of the two strictly better; in order of rising cost."""
    front = [i for i, (cost, acc) in enumerate(points)
             if not any(c <= cost and a >= acc and (c, a) != (cost, acc) for c, a in points)]
    return sorted(front, key=lambda i: points[i])


def pareto_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Accuracy against firing rate and against each of the `ENERGIES` the cells have (each axis named
    as the reports name the figure, in the unit chosen for it), one point per setting with std error bars,
    and the front (`pareto_front` of the means) as a grey step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = energy_units(rows)
    scale = {"firing_rate": 1.0, **{key: 1e6 / unit[1] for key, unit in units.items()}}
    fields = ["firing_rate", *(key for key in ENERGIES if any(r.get(key) for r in rows))]
    fig, axes = plt.subplots(1, len(fields), figsize=(6 * len(fields), 5), constrained_layout=True)
    colors = plt.get_cmap("tab10")
    for i, row in enumerate(r for r in rows if r["n"]):
        for ax, field in zip(axes, fields):
            if row.get(field) is not None:
                ax.errorbar(row[field] * scale[field], row["test_acc"] * 100, xerr=(row[f"{field}_std"] or 0.0) * scale[field],
                            yerr=(row["test_acc_std"] or 0.0) * 100, fmt="o", capsize=3, color=colors(i % 10),
                            label=label(row))
    for ax, field in zip(axes, fields):
        shown = [(row[field] * scale[field], row["test_acc"] * 100) for row in rows if row["n"] and row.get(field) is not None]
        front = [shown[i] for i in pareto_front(shown)]
        ax.step([x for x, _ in front], [y for _, y in front], where="post", color="0.5", linestyle="--", linewidth=1,
                zorder=0, label="front" if ax is axes[-1] else None)
    names = {"firing_rate": "mean firing rate (spikes / neuron / step)",
             **{key: f"{name}\nper inference ({units[key][0]})" for key, name in ENERGIES.items()}}
    for ax, field in zip(axes, fields):
        ax.set_xlabel(names[field])
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    fig.suptitle(f"{title}: mean +/- std over seeds")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


#: The compute-only terms `SWEEP_TARGET` charges (cmos45nm prices no neuron update: its Horowitz figures are
#: arithmetic only).
_CHARGED = [t for t in COMPUTE_TERMS if t != "neuron_state" or get_target(SWEEP_TARGET).neuron_pj]
#: What sweep.md's numbers are, and what each energy includes (the ``memory`` model prices every term but
#: the chip's static power).
ENERGY_NOTE = (f"Mean +/- sample std over seeds; energy per inference on up to {SWEEP_SAMPLES} test samples of each "
               f"cell. {compute_name(SWEEP_TARGET)}: {' + '.join(TERM_NAMES[t] for t in _CHARGED)} only ("
               + "".join(f"{SWEEP_TARGET} charges no {TERM_NAMES[t]}; " for t in COMPUTE_TERMS if t not in _CHARGED)
               + f"no memory or data movement: not a total). {figure_name(MEMORY)}: the total, "
               f"{' + '.join(name for term, name in TERM_NAMES.items() if term != 'static')}.")


def write_sweep_reports(results: list[CellResult], folder: Path, title: str, claims: list[Claim] = ()) -> list[dict[str, Any]]:
    """``sweep.md``, ``sweep.json`` (the settings, every cell, the training curves per setting
    (`curves`) and each of ``claims`` decided, `snnpipe.pipeline.claims`), ``pareto.png`` and
    ``curves.png`` in ``folder``."""
    rows = summarize(results)
    cells = [asdict(r) for r in results]
    decided = [evaluate_claim(claim, cells) for claim in claims]
    trained = curves(results)
    with atomic_path(folder / "sweep.json") as tmp:
        tmp.write_text(json.dumps({"settings": rows, "cells": cells, "curves": trained,
                                   **({"claims": decided} if claims else {})}, indent=1) + "\n")
    verdicts = (f"\n## Claims\n\nPaired differences over seeds (A - B, sign so that + favours A), 95% Student-t "
                f"interval, against the margin the recipe fixed (`snnpipe.pipeline.claims`).\n\n{claims_table(decided)}\n"
                if claims else "")
    with atomic_path(folder / "sweep.md") as tmp:
        rates = rates_table(rows)
        section = (f"\n## Firing rates per layer and per timestep\n\nMean over each setting's finished seeds: each "
                   f"spiking layer's rate (spikes per neuron per step, on the profiled test samples) and its rate at "
                   f"each timestep.\n\n{rates}\n" if rates else "")
        converged = convergence_table(results)
        section += (f"\n## Trained to convergence\n\nUnder `schedule: plateau` (`snnpipe.pipeline.train.Plateau`) a "
                    f"cell stops on the third plateau of its training accuracy; one that reached its `epochs` cap "
                    f"first did not converge.\n\n{converged}\n" if converged else "")
        tmp.write_text(f"# {title}: sweep\n\n{ENERGY_NOTE}\n\n{table(rows)}\n{verdicts}{section}")
    pareto_plot(rows, folder / "pareto.png", title)
    if trained:
        curves_plot(trained, folder / "curves.png", title)
    return rows
