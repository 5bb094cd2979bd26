"""``run(recipe) -> RunResult``: a chain of train, export and profile steps from a YAML recipe.

A recipe::

    name: digits-default                  # the run folder is runs/<name>[-N]
    defaults:                             # TrainConfig fields every train step starts from
      dataset: digits
      model: mlp
      timesteps: 4
    steps:
      - train: {stage: ann, epochs: 20}
      - train: {stage: ann-guided, teacher: "@ann"}
      - train: {stage: kd-activity, init: "@ann-guided", teacher: "@ann", name: student}
      - export: {from: "@student", target: loihi}
      - profile: {from: "@student", target: loihi}

``@name`` is the checkpoint an earlier step wrote; a step's name is its ``name``, else its stage
(train), or its kind and target. Every step writes into ``<run folder>/<step name>/``; the run ends
with a summary table. Unknown keys, steps and references are refused before anything runs.

A train step with ``sweep:`` trains a grid of cells instead of one run (`snnpipe.pipeline.sweep`),
one after another or on an executor (`snnpipe.pipeline.executors`: local worker processes, Ray);
its cells cannot be referred to with ``@``, and the run writes ``sweep.md``, ``sweep.json`` and
``pareto.png`` (mean +/- std over seeds per setting) beside the summary. A cell that failed is
one line of `RunResult.failed`; its step is not recorded as finished, so ``--resume`` runs it again.

A swept step may take its cells from another run instead of training them: ``reuse:`` names that
run's step folder, relative to this run's folder (``reuse: ../protocol-v2-esd/bptt``). Before any
step runs, each cell's training options, as that run's recorded recipe gives them, must equal this
recipe's (the same seeds give the same initial weights and data order, so claims pair them seed by
seed) and each cell must have finished there; its ``cell.json`` is then copied into this run's step
folder, its checkpoint left where it is.

A recipe may be run at other sizes: ``tiers:`` maps a tier's name to the training options it changes
in ``defaults`` and, under ``steps``, in a train step's options (by the step's name)::

    tiers:
      gpu-fm: {train_samples: null, model_args: {width: 1.0}, batch_size: 128, device: cuda,
               steps: {ann: {epochs: 60}}}

``snnpipe run RECIPE --tier gpu-fm`` runs it so (into ``runs/<name>-<tier>``); each option given
replaces the recipe's value whole (``model_args`` included). The tier is part of the run's record,
so a run is resumed only at its own tier; without ``--tier`` the recipe runs as written.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import signal
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from snnpipe import progress as progress_bars
from snnpipe.errors import SnnpipeError, StopRequested
from snnpipe.files import (FolderLock, atomic_path, changed_files, checksums, claim_free_folder, lock_folder, remove_if_unused,
                           remove_orphan_temporaries)
from snnpipe.models import NeuronParams
from snnpipe.models.params import NEURON_PRESETS, neuron_preset
from snnpipe.hw_targets import parse_target_options
from snnpipe.pipeline.catalog import ExporterInfo, catalog
from snnpipe.pipeline.checks import check_config
from snnpipe.pipeline.claims import Arm, Claim, parse_claims
from snnpipe.pipeline.config import TrainConfig, read_yaml
from snnpipe.pipeline.executors import Sequential
from snnpipe.pipeline.sweep import (Cell, CellJob, CellResult, Executor, SweepProgress, expand, run_cells,
                                    write_sweep_reports)
from snnpipe.pipeline.verdict_block import TITLE, as_markdown, as_text, read_verdict

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "default.yaml"
_TRAIN_KEYS = {f.name for f in fields(TrainConfig)} - {"out", "resume"}
_NEURON_KEYS = {f.name for f in fields(NeuronParams)}
#: An export step's own keys; the rest are its target's options (`ExporterEntry.options`).
_EXPORT_KEYS = {"from", "target", "name", "samples", "timesteps", "data_dir"}
_PROFILE_KEYS = {"from", "target", "name", "samples", "target_file", "data_dir", "energy_model", "precision", "chip",
                 "chip_file"}
_FIT_KEYS = {"from", "name", "chips", "require_fit"}
_STEP_KEYS = {"train": _TRAIN_KEYS | {"name", "sweep", "reuse"}, "export": _EXPORT_KEYS, "profile": _PROFILE_KEYS,
              "fit": _FIT_KEYS}


#: A recipe's and a step's name: one folder inside runs/, never a path out of it.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


class RecipeError(SnnpipeError):
    """A recipe that cannot run: the message names the step and the key."""


@dataclass
class Step:
    kind: str
    name: str
    options: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)  # a swept train step's grid


@dataclass
class Recipe:
    name: str
    defaults: dict[str, Any]
    steps: list[Step]
    source: str = "recipe"
    claims: list[Claim] = field(default_factory=list)  # decided on the sweeps' cells (`snnpipe.pipeline.claims`)
    tier: str | None = None  # the tier it runs at (module docstring); None: as written

    @property
    def command(self) -> str:
        """The command that runs it, for the hints that say how to go on."""
        return f"snnpipe run {self.source}" + (f" --tier {self.tier}" if self.tier else "")

    @property
    def folder_name(self) -> str:
        """Its run folder's name in ``runs/``."""
        return f"{self.name}-{self.tier}" if self.tier else self.name


@dataclass
class StepResult:
    step: str
    kind: str
    path: str
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    folder: Path
    steps: list[StepResult]
    verdicts: dict[str, list[str]] = field(default_factory=dict)  # profile step -> its verdict (`verdict_block`)
    failed: list[CellResult] = field(default_factory=list)  # sweep cells that could not finish

    def verdict_markdown(self) -> str:
        """Each profile step's verdict, for the top of ``summary.md``."""
        return "".join(f"## {TITLE} ({step})\n\n" + "\n".join(as_markdown(lines)) + "\n\n"
                       for step, lines in self.verdicts.items())

    def verdict_text(self) -> str:
        """Each profile step's verdict, for the terminal."""
        return "".join(f"{TITLE} ({step}): {as_text(lines)}\n\n" for step, lines in self.verdicts.items())

    def table(self) -> str:
        """A Markdown table of what every step produced."""
        lines = ["| step | kind | output | result | seconds |", "| --- | --- | --- | --- | ---: |"]
        for s in self.steps:
            result = ", ".join(f"{k} {_fmt(v)}" for k, v in s.summary.items())
            lines.append(f"| {s.step} | {s.kind} | {s.path} | {result} | {s.seconds:.1f} |")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _refuse_unknown(keys, known: set[str], where: str) -> None:
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RecipeError(f"{where}: unknown key {key!r}{hint}")


def parse_recipe(data: Any, source: str = "recipe", tier: str | None = None) -> Recipe:
    """Check a loaded recipe mapping and return it as a `Recipe`, at ``tier`` (one of its ``tiers``)
    where given."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source} must be a mapping with 'steps'")
    _refuse_unknown(data, {"name", "defaults", "steps", "claims", "tiers"}, source)
    name = str(data.get("name") or Path(source).stem)
    if not _PLAIN_NAME.fullmatch(name):
        raise RecipeError(f"{source}: name {name!r} cannot name a folder (letters, digits, '.', '-', '_')")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise RecipeError(f"{source}: defaults must be a mapping of training options")
    _refuse_unknown(defaults, _TRAIN_KEYS | _NEURON_KEYS, f"{source} defaults")
    tiers = _tiers(data.get("tiers"), source)
    if tier is not None and tier not in tiers:
        raise RecipeError(f"{source} has no tier {tier!r}; " + (f"its tiers: {', '.join(map(str, tiers))}" if tiers
                                                                else "it has none: run it without --tier"))
    changed = dict(tiers.get(tier) or {})
    changed_steps = dict(changed.pop("steps", None) or {})
    defaults = {**defaults, **changed}
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RecipeError(f"{source}: steps must be a non-empty list")
    steps: list[Step] = []
    for i, raw in enumerate(raw_steps, 1):
        if not isinstance(raw, dict) or len(raw) != 1:
            raise RecipeError(f"{source} step {i}: write it as '- train: {{...}}', '- export: {{...}}', "
                              "'- profile: {...}' or '- fit: {...}'")
        kind, options = next(iter(raw.items()))
        if kind not in _STEP_KEYS:
            raise RecipeError(f"{source} step {i}: unknown kind {kind!r}; use train, export, profile or fit")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise RecipeError(f"{source} step {i}: the options of {kind} must be a mapping")
        options = dict(options)
        where = f"{source} step {i} ({kind})" + (f" at tier {tier!r}" if tier else "")
        _refuse_unknown(options, _step_keys(kind, options, where), where)
        default_name = options.get("stage", "bptt") if kind == "train" else f"{kind}-{options.get('target', 'default')}"
        step_name = str(options.pop("name", default_name))
        if not _PLAIN_NAME.fullmatch(step_name):
            raise RecipeError(f"{source} step {i}: name {step_name!r} is not a plain folder name (letters, digits, "
                              "'.', '-', '_'; no '/' or '..'): every step writes inside the run folder")
        if step_name in {s.name for s in steps}:
            raise RecipeError(f"{source} step {i}: the name {step_name!r} is taken; give this step a 'name'")
        if kind == "train":
            options.update(changed_steps.get(step_name) or {})
        for key, value in options.items():
            if isinstance(value, str) and value.startswith("@") and value[1:] not in {s.name for s in steps}:
                raise RecipeError(f"{source} step {i}: {key} refers to {value!r}, which no earlier step wrote")
            if isinstance(value, str) and value.startswith("@") and any(s.cells for s in steps if s.name == value[1:]):
                raise RecipeError(f"{source} step {i}: {key} refers to {value!r}, a sweep of many checkpoints; "
                                  "refer to a step without sweep")
        if kind != "train" and "from" not in options:
            raise RecipeError(f"{source} step {i} ({kind}): 'from' names the checkpoint, e.g. from: '@{steps[-1].name if steps else 'bptt'}'")
        if "reuse" in options and ("sweep" not in options or not isinstance(options["reuse"], str)):
            raise RecipeError(f"{where}: reuse names another run's swept step folder (e.g. reuse: ../protocol-v2-esd/bptt) "
                              "and needs this step's sweep: the cells it takes from there")
        step = Step(kind, step_name, options)
        if kind == "train" and "sweep" in options:
            try:
                step.cells = expand(step_name, options["sweep"], _TRAIN_KEYS | _NEURON_KEYS, where)
            except SnnpipeError as err:
                raise RecipeError(str(err)) from None
        _check_values(step, defaults, where)
        steps.append(step)
    trained = [s.name for s in steps if s.kind == "train"]
    for tier_name, overrides in tiers.items():
        unknown = next((s for s in overrides.get("steps") or {} if s not in trained), None)
        if unknown is not None:
            raise RecipeError(f"{source} tier {tier_name!r}: steps names {unknown!r}, which is no train step of the "
                              f"recipe; its train steps: {', '.join(trained)}")
    try:
        arms = {s.name: Arm(bool(s.cells), {k: v for k, v in (s.options.get("sweep") or {}).items() if k != "seed"},
                            bool({**defaults, **s.options}.get("val_samples"))) for s in steps if s.kind == "train"}
        claims = parse_claims(data.get("claims"), arms, source)
    except SnnpipeError as err:
        raise RecipeError(str(err)) from None
    return Recipe(name, defaults, steps, source, claims, tier)


def _tiers(raw: Any, source: str) -> dict[str, dict[str, Any]]:
    """A recipe's ``tiers`` (module docstring), their keys checked: training options, and ``steps``
    mapping a step's name to training options."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise RecipeError(f"{source}: tiers must map a tier's name to the training options it changes, "
                          "e.g. tiers: {gpu: {device: cuda, batch_size: 128}}")
    for name, overrides in raw.items():
        where = f"{source} tier {name!r}"
        if not _PLAIN_NAME.fullmatch(str(name)):
            raise RecipeError(f"{where}: a tier's name is part of its run folder's: letters, digits, '.', '-', '_'")
        _refuse_unknown(overrides, _TRAIN_KEYS | _NEURON_KEYS | {"steps"}, where)
        steps = overrides.get("steps") or {}
        if not isinstance(steps, dict) or not all(isinstance(v, dict) for v in steps.values()):
            raise RecipeError(f"{where}: steps must map a train step's name to the training options it changes there")
        for step, options in steps.items():
            _refuse_unknown(options, _TRAIN_KEYS | _NEURON_KEYS, f"{where} step {step!r}")
    return raw


def _step_keys(kind: str, options: dict[str, Any], where: str) -> set[str]:
    """The keys a step of ``kind`` takes; an export step's depend on its target."""
    if kind == "train":
        return _STEP_KEYS["train"] | _NEURON_KEYS
    if kind == "export":
        if "target" not in options:
            raise RecipeError(f"{where}: 'target' names the export target, e.g. target: loihi")
        try:
            entry = _exporter(str(options["target"]))
        except SnnpipeError as err:
            raise RecipeError(f"{where}: {err}") from None
        return _EXPORT_KEYS | {f.name for f in fields(entry.options)}
    return _STEP_KEYS[kind]


def _check_values(step: Step, defaults: dict[str, Any], where: str) -> None:
    """Refuse a value that cannot work (a stage that does not exist, a wrong argument or option)
    before any step runs, as the CLI would."""
    try:
        for key in ("samples", "timesteps") if step.kind in ("export", "profile") else ():
            value = step.options.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise SnnpipeError(f"{key}={value!r} is out of range: an integer of at least 1")
        if step.kind == "train":
            for options in [cell.options(step.options) for cell in step.cells] or [step.options]:
                check_config(_train_config(defaults, options, lambda v: v, Path(".")))
        elif step.kind == "export":
            target = str(step.options["target"])
            parse_target_options(target, _exporter(target).options,
                                 {k: v for k, v in step.options.items() if k not in _EXPORT_KEYS})
        elif step.kind == "fit":
            from snnpipe.pipeline.fit import resolve_chips

            resolve_chips(step.options.get("chips"), step.options.get("require_fit", ()))
        elif step.options.get("target") is not None:
            from snnpipe.hw_targets.energy import get_target

            get_target(step.options["target"])
    except SnnpipeError as err:
        raise RecipeError(f"{where}: {err}") from None


def _exporter(target: str) -> ExporterInfo:
    """The catalog's entry of an export target; where its optional package is missing, the
    registry's own error, which names the package to install."""
    entry = catalog().exporter(target)
    if entry.options is None:
        from snnpipe.hw_targets import find_exporter

        find_exporter(target)
    return entry


def load_recipe(path: str | Path | None = None, tier: str | None = None) -> Recipe:
    path = Path(path) if path else DEFAULT_RECIPE
    return parse_recipe(read_yaml(path, "recipe", RecipeError), str(path), tier)


def _train_config(defaults: dict[str, Any], options: dict[str, Any], resolve: Callable[[Any], Any], out: Path) -> TrainConfig:
    merged = {**defaults, **options}
    merged.pop("sweep", None)
    merged.pop("reuse", None)
    preset = merged.pop("neuron", None)  # a paper's neuron by name (`models.params.NEURON_PRESETS`)
    if preset is not None and not isinstance(preset, str):
        raise RecipeError(f"neuron: {preset!r} must name a neuron ({', '.join(NEURON_PRESETS)}); give its "
                          "parameters (voltage_decay, surrogate, ...) as keys of their own")
    base = asdict(neuron_preset(preset)) if preset is not None else {}
    neuron = {**base, **{k: merged.pop(k) for k in list(merged) if k in _NEURON_KEYS}}
    for key in ("model_args", "stage_args"):
        if isinstance(merged.get(key), dict):
            merged[key] = {k: tuple(v) if isinstance(v, list) else v for k, v in merged[key].items()}
    merged = {k: resolve(v) for k, v in merged.items()}
    try:
        return TrainConfig(neuron=NeuronParams(**neuron), out=str(out), **merged)
    except TypeError as err:
        raise RecipeError(f"training options: {err}") from None


def run(
    recipe: Recipe | str | Path | None = None,
    out: str | Path | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    progress: bool = False,
    resume: str | Path | None = None,
    on_cell: Callable[[CellResult, bool, SweepProgress], None] | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Run every step of ``recipe`` (the embedded default when None) into one folder.

    The folder is claimed for the run's life (`files.claim_free_folder`: two runs of one recipe
    take ``runs/<name>`` and ``runs/<name>-2``). After each step, `STATE_NAME` records the step's
    result and the checksums of its files. ``resume`` (a folder of an earlier, interrupted run of the
    same recipe) skips the steps recorded there whose files still match, continues an interrupted
    training step from its checkpoint, redoes an interrupted export or profile, and runs the rest;
    of an interrupted sweep, the finished cells are kept (`sweep.run_cells`). ``on_cell`` is called
    after every cell of a sweep (`sweep.run_cells`); ``executor`` runs the cells (default
    `executors.Sequential`; closed when the run ends).
    """
    executor = executor or Sequential()
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if resume is not None:
        folder = Path(resume)
        _recorded_steps(folder, recipe)  # a folder that is no run of this recipe is refused untouched
        lock = _resume_lock(folder)
        try:
            remove_orphan_temporaries(folder, [step.name for step in recipe.steps]  # where its steps write
                                      + [f"{step.name}/{cell.name}" for step in recipe.steps for cell in step.cells])
            done = _finished_steps(folder, recipe)
            reused = _reused_cells(recipe, folder, done)
        except BaseException:
            lock.release()
            raise
    else:
        lock = None
        try:
            lock = claim_free_folder(Path(out) if out else Path("runs") / recipe.folder_name)
            folder, done = lock.folder, {}
            reused = _reused_cells(recipe, folder, done)  # refused with nothing written
            _write_state(folder, recipe, done)  # from the start: the folder is this recipe's run
        except BaseException as err:
            if lock is not None:
                lock.release()
                remove_if_unused(lock.folder)
            if not isinstance(err, OSError):
                raise
            raise RecipeError(f"cannot create the run folder ({err.strerror}); choose a writable --out") from None
    try:
        with progress_bars.quiet(not progress):
            return _run_steps(recipe, folder, done, reused, on_step, progress, on_cell, executor)
    finally:
        executor.close()
        lock.release()


def _run_steps(recipe: Recipe, folder: Path, done: dict[str, dict], reused: list[tuple[Path, CellResult]], on_step,
               progress: bool, on_cell, executor: Executor) -> RunResult:
    from snnpipe.pipeline.train import CHECKPOINT_NAME, TrainingInterrupted, train

    written: dict[str, Path] = {}

    def resolve(value: Any) -> Any:
        return str(written[value[1:]]) if isinstance(value, str) and value.startswith("@") else value

    @contextlib.contextmanager
    def stopped_hint(what: str):
        try:
            yield
        except TrainingInterrupted as err:  # the hint: the whole recipe, not this one step
            stop = StopRequested(f"{what} stopped by {signal.Signals(err.signum).name}; saved {err.path}; "
                                 f"continue the recipe with {recipe.command} --resume {folder}")
            stop.exit_code = err.exit_code
            raise stop from None

    def train_into(options: dict[str, Any], target: Path, what: str):
        config = _train_config(recipe.defaults, options, resolve, target)
        partial = target / CHECKPOINT_NAME
        if partial.exists():  # interrupted: go on from its last checkpoint
            config = replace(config, resume=str(partial))
        with stopped_hint(what):
            return train(config, progress=progress)

    for cell_folder, result in reused:  # their sweeps then read them as finished cells
        cell_folder.mkdir(parents=True, exist_ok=True)
        result.write(cell_folder)
    results: list[StepResult] = []
    cells: list[CellResult] = []
    failed: list[CellResult] = []
    swept: dict[str, tuple[list[CellResult], float]] = {}  # a batch's cells per step, and when its last ended

    def run_batch(batch: list[Step]) -> None:
        """The cells of consecutive swept steps, all on the executor at once: a step's last cells
        share the workers with the next step's first (no worker idles between them)."""
        jobs = [CellJob(cell, _train_config(recipe.defaults, cell.options(step.options), resolve,
                                            (folder / step.name / cell.name).resolve()), progress=progress)
                for step in batch for cell in step.cells]
        started, last = time.perf_counter(), {}

        def ended(result: CellResult, kept: bool, where) -> None:
            last[result.step] = time.perf_counter()
            if on_cell:
                on_cell(result, kept, where)

        with stopped_hint(f"step {', '.join(step.name for step in batch)}"):
            batch_cells = run_cells(jobs, executor, ended)
        previous = started  # each step's wall time: from the step before's last cell to its own last
        for step in batch:
            ended_at = max(last.get(step.name, previous), previous)
            swept[step.name] = ([r for r, job in zip(batch_cells, jobs) if job.cell.step == step.name],
                                ended_at - previous)
            previous = ended_at

    for step in progress_bars.steps(recipe.steps, lambda s: f"{s.name} ({s.kind})", desc=recipe.name):
        target = folder / step.name
        if step.name in done:  # its path is recorded relative to the run folder, its files checked
            result = StepResult(**{**done[step.name]["result"], "path": str(folder / done[step.name]["result"]["path"])})
            if step.kind in ("train", "export") and not step.cells:
                written[step.name] = Path(result.path).resolve()
            cells += [r for r in (CellResult.read(target / c.name) for c in step.cells) if r is not None]
            results.append(result)
            if on_step:
                on_step(result)
            continue
        started = time.perf_counter()
        if step.cells:
            if step.name not in swept:
                run_batch(_sweep_batch(recipe.steps, step, done))
            step_cells, seconds = swept.pop(step.name)
            cells += step_cells
            failed += [r for r in step_cells if r.failed]
            finished = [r for r in step_cells if not r.diverged and not r.failed]
            best = max(finished, key=lambda r: r.test_acc) if finished else None
            result = StepResult(step.name, "sweep", str(target), 0.0,
                                {"cells": len(step_cells), "diverged": sum(1 for r in step_cells if r.diverged),
                                 "failed": sum(1 for r in step_cells if r.failed),
                                 "best_test_acc": best.test_acc if best else None, "best_cell": best.cell if best else None})
        elif step.kind == "train":
            ckpt = train_into(step.options, target, f"step {step.name}")
            written[step.name] = Path(ckpt.path).resolve()  # whatever folder a later resume runs in
            last = ckpt.history[-1]
            result = StepResult(step.name, "train", str(ckpt.path), 0.0,
                                {"test_acc": last["test_acc"], "firing_rate": last["firing_rate"]})
        elif step.kind == "export":
            from snnpipe.hw_targets import find_exporter
            from snnpipe.pipeline.export import export

            options = {k: resolve(v) for k, v in step.options.items() if k not in ("from", "target")}
            source = resolve(step.options["from"])
            suffix = find_exporter(step.options["target"]).suffix
            exported = export(source, step.options["target"], out=target / f"{Path(source).parent.name}{suffix}",
                              force=True, **options)  # a file there is this run's own, from before an interruption
            written[step.name] = Path(exported.path).resolve()  # a later fit step reads the file
            result = StepResult(step.name, "export", str(exported.path), 0.0, _scalars(exported.report, 4))
        elif step.kind == "fit":
            from snnpipe.pipeline.fit import fit_to_report

            summary, path = fit_to_report(resolve(step.options["from"]), target, step.options.get("chips"),
                                          step.options.get("require_fit", ()))
            result = StepResult(step.name, "fit", str(path), 0.0, summary)
        else:
            from snnpipe.pipeline.profile import profile_to_reports

            options = {k: resolve(v) for k, v in step.options.items() if k != "from"}
            summary, path = profile_to_reports(resolve(step.options["from"]), out=target, force=True, **options)
            result = StepResult(step.name, "profile", str(path), 0.0, summary)
        result.seconds = seconds if step.cells else time.perf_counter() - started
        results.append(result)
        if not result.summary.get("failed"):  # a step with failed cells is not finished: --resume redoes them
            done[step.name] = {"result": {**asdict(result), "path": os.path.relpath(result.path, folder)},
                               "files": checksums(target)}
            _write_state(folder, recipe, done)
        if on_step:
            on_step(result)
    run_result = RunResult(folder, results, {r.step: read_verdict(Path(r.path)) for r in results if r.kind == "profile"},
                           failed)
    if cells:
        write_sweep_reports(cells, folder, recipe.name, recipe.claims)
    with atomic_path(folder / "summary.md") as tmp:
        tmp.write_text(f"# {recipe.name}\n\n{run_result.verdict_markdown()}{run_result.table()}\n")
    return run_result


def _sweep_batch(steps: list[Step], first: Step, done: dict[str, dict]) -> list[Step]:
    """``first`` and the swept steps right after it that have not run: their cells run as one batch. Any
    ``@`` reference among them names a step before ``first`` (a swept step cannot be referred to)."""
    batch = [first]
    for step in steps[steps.index(first) + 1:]:
        if not step.cells or step.name in done:
            break
        batch.append(step)
    return batch


def _reused_cells(recipe: Recipe, folder: Path, done: dict[str, dict]) -> list[tuple[Path, CellResult]]:
    """Every cell that a step not yet ``done`` takes from another run by ``reuse`` (module docstring):
    its folder in this run and its result there, renamed to this step. Refuses a run that is not
    there, a cell trained otherwise (``@`` references resolve in each run's own folder: another
    run's teacher is another file) and a cell not finished there."""
    out = []
    for step in (s for s in recipe.steps if "reuse" in s.options and s.name not in done):
        source = folder / step.options["reuse"]
        where = f"step {step.name}: reuse {step.options['reuse']}"
        try:
            record = json.loads((source.parent / STATE_NAME).read_text())["recipe"]
            theirs = parse_recipe({"name": record["name"], "defaults": record["defaults"], "steps": [
                {s["kind"]: {**s["options"], "name": s["name"]}} for s in record["steps"]]}, str(source.parent))
        except (OSError, ValueError, KeyError, TypeError, SnnpipeError):
            raise RecipeError(f"{where}: {source.parent} holds no run snnpipe can read ({STATE_NAME}); run that "
                              "recipe first, or drop reuse to train the cells here") from None
        other = next((s for s in theirs.steps if s.name == source.name and s.cells), None)
        if other is None:
            raise RecipeError(f"{where}: run {record['name']!r} has no swept step {source.name!r}")
        theirs_by_name = {c.name: c for c in other.cells}
        for cell in step.cells:
            if cell.name not in theirs_by_name:
                raise RecipeError(f"{where}: that step has no cell {cell.name}; reuse a step that swept the same values")
            mine = _flat_config(recipe, folder, step, cell)
            there = _flat_config(theirs, source.parent, other, theirs_by_name[cell.name])
            differ = next((k for k in mine if mine[k] != there[k]), None)
            if differ:
                raise RecipeError(f"{where}: {cell.name} was trained there with {differ}={there[differ]!r}, here it "
                                  f"would be {mine[differ]!r}; not the same baseline: train it here (drop reuse)")
            result = CellResult.read(source / cell.name)
            if result is None:
                raise RecipeError(f"{where}: {cell.name} has not finished there; finish that run first "
                                  f"(snnpipe run RECIPE --resume {source.parent})")
            out.append((folder / step.name / cell.name, replace(result, step=step.name)))
    return out


def _flat_config(recipe: Recipe, folder: Path, step: Step, cell: Cell) -> dict[str, Any]:
    """A cell's training options as one flat mapping (``neuron.NAME`` for the neuron's), ``@``
    references as paths in ``folder``."""
    config = asdict(_train_config(recipe.defaults, cell.options(step.options), lambda v: str(folder / v[1:]) if
                                  isinstance(v, str) and v.startswith("@") else v, Path(".")))
    return {**{f"neuron.{k}": v for k, v in config.pop("neuron").items()}, **config}


#: The record of a run in its folder, written when the run starts and after each step: the recipe,
#: and per finished step its result (its output's path relative to the run folder) and the SHA-256
#: of every file it wrote.
STATE_NAME = "run.json"


def _recipe_record(recipe: Recipe) -> dict[str, Any]:
    record = {"name": recipe.name, "defaults": recipe.defaults,
              "steps": [{"kind": s.kind, "name": s.name, "options": s.options} for s in recipe.steps]}
    if recipe.claims:  # a recipe without claims keeps the record older runs wrote
        record["claims"] = [c.record() for c in recipe.claims]
    if recipe.tier:  # and one run without a tier too
        record["tier"] = recipe.tier
    return record


def _write_state(folder: Path, recipe: Recipe, done: dict[str, dict]) -> None:
    with atomic_path(folder / STATE_NAME) as tmp:
        tmp.write_text(json.dumps({"recipe": _recipe_record(recipe), "steps": done}, indent=1, default=str) + "\n")


def _resume_lock(folder: Path) -> FolderLock:
    lock = lock_folder(folder)
    if lock is None:
        raise RecipeError(f"--resume {folder}: another snnpipe command is running there; wait for it to finish")
    return lock


def _finished_steps(folder: Path, recipe: Recipe) -> dict[str, dict]:
    """The steps of ``folder``'s record (`_recorded_steps`) whose files are as they were written;
    refuses a folder whose finished outputs were changed since."""
    steps = _recorded_steps(folder, recipe)
    for name, record in steps.items():
        changed = changed_files(folder / name, record["files"])
        if changed:
            raise RecipeError(f"the files of the finished step {name!r} in {folder} changed since it finished "
                              f"({', '.join(changed[:3])}); "
                              f"remove {folder / name} to redo it, or run the recipe again without --resume")
    return steps


def _recorded_steps(folder: Path, recipe: Recipe) -> dict[str, dict]:
    """The finished steps ``folder``'s record lists; refuses a folder that is no run of ``recipe``
    and a record naming as a step's output anything but one of the files it checks for that step."""
    path = folder / STATE_NAME
    if path.is_symlink() or folder.is_symlink():  # another run's record would vouch for this folder
        raise RecipeError(f"--resume {folder}: its {STATE_NAME} is a link, not a record snnpipe wrote there; give the "
                          "run folder itself, or run without --resume")
    if not path.is_file():
        raise RecipeError(f"--resume {folder}: it holds no {STATE_NAME}, so it is no run folder of {recipe.name!r}; "
                          f"give the folder an interrupted run of it made (runs/{recipe.name}...) or run without --resume")
    try:
        state = json.loads(path.read_text())
        recorded, steps = state["recipe"], dict(state["steps"])
        tier = recorded.get("tier")
        outputs = {name: Path(str(record["result"]["path"])) for name, record in steps.items()}
        files = {name: dict(record["files"]) for name, record in steps.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise RecipeError(f"{path} is damaged; run the recipe again without --resume") from None
    if tier != recipe.tier:
        what, how = (f"tier {tier!r} of its recipe", f"with --tier {tier}") if tier else ("its recipe without a tier",
                                                                                         "without --tier")
        raise RecipeError(f"--resume {folder}: that run is {what}; resume it {how}")
    if json.loads(json.dumps(_recipe_record(recipe), default=str)) != recorded or not steps.keys() <= {
            step.name for step in recipe.steps}:
        raise RecipeError(f"{folder} was made by another recipe (or another version of this one); "
                          "run it without --resume")
    for name, output in outputs.items():
        if output != Path(name) and (output.parts[:1] != (name,) or str(output.relative_to(name)) not in files[name]):
            raise RecipeError(f"{path} names {str(output)!r} as the output of step {name!r}, not a file that step "
                              "wrote there (a record of an older snnpipe?); run the recipe again without --resume")
    return steps


def _scalars(report: dict[str, Any], limit: int) -> dict[str, Any]:
    picked = {k: v for k, v in report.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    return dict(list(picked.items())[:limit])
