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
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from snnpipe.errors import SnnpipeError
from snnpipe.models import NeuronParams
from snnpipe.pipeline.config import TrainConfig, read_yaml

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "default.yaml"
_TRAIN_KEYS = {f.name for f in fields(TrainConfig)} - {"out", "resume"}
_NEURON_KEYS = {f.name for f in fields(NeuronParams)}
#: An export step's own keys; the rest are its target's options (`ExporterEntry.options`).
_EXPORT_KEYS = {"from", "target", "name", "samples", "timesteps", "data_dir"}
_PROFILE_KEYS = {"from", "target", "name", "samples", "target_file", "data_dir"}
_STEP_KEYS = {"train": _TRAIN_KEYS | {"name"}, "export": _EXPORT_KEYS, "profile": _PROFILE_KEYS}


class RecipeError(SnnpipeError):
    """A recipe that cannot run: the message names the step and the key."""


@dataclass
class Step:
    kind: str
    name: str
    options: dict[str, Any]


@dataclass
class Recipe:
    name: str
    defaults: dict[str, Any]
    steps: list[Step]
    source: str = "recipe"


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


def parse_recipe(data: Any, source: str = "recipe") -> Recipe:
    """Check a loaded recipe mapping and return it as a `Recipe`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source} must be a mapping with 'steps'")
    _refuse_unknown(data, {"name", "defaults", "steps"}, source)
    name = str(data.get("name") or Path(source).stem)
    if not name or "/" in name or name.startswith("."):
        raise RecipeError(f"{source}: name {name!r} cannot name a folder")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise RecipeError(f"{source}: defaults must be a mapping of training options")
    _refuse_unknown(defaults, _TRAIN_KEYS | _NEURON_KEYS, f"{source} defaults")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RecipeError(f"{source}: steps must be a non-empty list")
    steps: list[Step] = []
    for i, raw in enumerate(raw_steps, 1):
        if not isinstance(raw, dict) or len(raw) != 1:
            raise RecipeError(f"{source} step {i}: write it as '- train: {{...}}', '- export: {{...}}' or '- profile: {{...}}'")
        kind, options = next(iter(raw.items()))
        if kind not in _STEP_KEYS:
            raise RecipeError(f"{source} step {i}: unknown kind {kind!r}; use train, export or profile")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise RecipeError(f"{source} step {i}: the options of {kind} must be a mapping")
        options = dict(options)
        where = f"{source} step {i} ({kind})"
        _refuse_unknown(options, _step_keys(kind, options, where), where)
        default_name = options.get("stage", "bptt") if kind == "train" else f"{kind}-{options.get('target', 'default')}"
        step_name = str(options.pop("name", default_name))
        if step_name in {s.name for s in steps}:
            raise RecipeError(f"{source} step {i}: the name {step_name!r} is taken; give this step a 'name'")
        for key, value in options.items():
            if isinstance(value, str) and value.startswith("@") and value[1:] not in {s.name for s in steps}:
                raise RecipeError(f"{source} step {i}: {key} refers to {value!r}, which no earlier step wrote")
        if kind != "train" and "from" not in options:
            raise RecipeError(f"{source} step {i} ({kind}): 'from' names the checkpoint, e.g. from: '@{steps[-1].name if steps else 'bptt'}'")
        step = Step(kind, step_name, options)
        _check_values(step, defaults, where)
        steps.append(step)
    return Recipe(name, defaults, steps, source)


def _step_keys(kind: str, options: dict[str, Any], where: str) -> set[str]:
    """The keys a step of ``kind`` takes; an export step's depend on its target."""
    if kind == "train":
        return _STEP_KEYS["train"] | _NEURON_KEYS
    if kind == "export":
        from snnpipe.hw_targets import find_exporter

        if "target" not in options:
            raise RecipeError(f"{where}: 'target' names the export target, e.g. target: loihi")
        try:
            entry = find_exporter(str(options["target"]))
        except SnnpipeError as err:
            raise RecipeError(f"{where}: {err}") from None
        return _EXPORT_KEYS | {f.name for f in fields(entry.options)}
    return _STEP_KEYS[kind]


def _check_values(step: Step, defaults: dict[str, Any], where: str) -> None:
    """Refuse a value that cannot work (a stage that does not exist, a wrong argument or option)
    before any step runs, as the CLI would."""
    try:
        if step.kind == "train":
            from snnpipe.pipeline.train import check_config

            check_config(_train_config(defaults, step.options, lambda v: v, Path(".")))
        elif step.kind == "export":
            from snnpipe.hw_targets import find_exporter

            entry = find_exporter(str(step.options["target"]))
            entry.parse_options({k: v for k, v in step.options.items() if k not in _EXPORT_KEYS})
        elif step.options.get("target") is not None:
            from snnpipe.hw_targets.energy import get_target

            get_target(step.options["target"])
    except SnnpipeError as err:
        raise RecipeError(f"{where}: {err}") from None


def load_recipe(path: str | Path | None = None) -> Recipe:
    path = Path(path) if path else DEFAULT_RECIPE
    return parse_recipe(read_yaml(path, "recipe", RecipeError), str(path))


def _train_config(defaults: dict[str, Any], options: dict[str, Any], resolve: Callable[[Any], Any], out: Path) -> TrainConfig:
    merged = {**defaults, **options}
    neuron = {k: merged.pop(k) for k in list(merged) if k in _NEURON_KEYS}
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
) -> RunResult:
    """Run every step of ``recipe`` (the embedded default when None) into one folder."""
    from snnpipe.pipeline.train import train

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    folder = _free_folder(Path(out) if out else Path("runs") / recipe.name)
    written: dict[str, Path] = {}

    def resolve(value: Any) -> Any:
        return str(written[value[1:]]) if isinstance(value, str) and value.startswith("@") else value

    results: list[StepResult] = []
    for step in recipe.steps:
        started = time.perf_counter()
        target = folder / step.name
        if step.kind == "train":
            ckpt = train(_train_config(recipe.defaults, step.options, resolve, target), progress=progress)
            written[step.name] = ckpt.path
            last = ckpt.history[-1]
            result = StepResult(step.name, "train", str(ckpt.path), 0.0,
                                {"test_acc": last["test_acc"], "firing_rate": last["firing_rate"]})
        elif step.kind == "export":
            from snnpipe.hw_targets import find_exporter
            from snnpipe.pipeline.export import export

            options = {k: resolve(v) for k, v in step.options.items() if k not in ("from", "target")}
            source = resolve(step.options["from"])
            suffix = find_exporter(step.options["target"]).suffix
            exported = export(source, step.options["target"], out=target / f"{Path(source).parent.name}{suffix}", **options)
            result = StepResult(step.name, "export", str(exported.path), 0.0, _scalars(exported.report, 4))
        else:
            from snnpipe.pipeline.profile import profile_to_reports

            options = {k: resolve(v) for k, v in step.options.items() if k != "from"}
            summary, path = profile_to_reports(resolve(step.options["from"]), out=target, **options)
            result = StepResult(step.name, "profile", str(path), 0.0, summary)
        result.seconds = time.perf_counter() - started
        results.append(result)
        if on_step:
            on_step(result)
    run_result = RunResult(folder, results)
    (folder / "summary.md").write_text(f"# {recipe.name}\n\n{run_result.table()}\n")
    return run_result


def _scalars(report: dict[str, Any], limit: int) -> dict[str, Any]:
    picked = {k: v for k, v in report.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    return dict(list(picked.items())[:limit])


def _free_folder(base: Path) -> Path:
    path, n = base, 1
    while path.exists() and any(path.iterdir()):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True, exist_ok=True)
    return path
