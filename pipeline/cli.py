"""The ``snnpipe`` command: thin. Each command builds a config and calls one stage function.

User errors (`SnnpipeError`, click's usage errors) print one line, ``Error: ...``, and exit 2 with no
traceback; a failed gate exits 1. SIGTERM stops any command with one line and exit 143, the files
it was writing removed (`_stop_on_sigterm`; training saves a checkpoint first). ``--config
FILE.yaml`` fills in option defaults; an unknown key is refused with the nearest option name.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

import click
import yaml
from click.core import ParameterSource

from snnpipe import __version__, progress
from snnpipe.errors import SnnpipeError, StopRequested
from snnpipe.pipeline import process
from snnpipe.pipeline.catalog import catalog, parameters
from snnpipe.yaml_text import load_yaml


class _OneLineErrors(click.Group):
    """Print every user error as one line and exit 2 (1 for a failed gate), with no traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, whole_process=False, **extra):
        """``whole_process``: this is the ``snnpipe`` program (`main`), whose process ends with the
        command: the SIGTERM handler stays until then (`_stop_on_sigterm`)."""
        words = list(sys.argv[1:] if args is None else args)
        name = " ".join(["snnpipe", *[word for word in words if word in self.commands][:1]])
        with _stop_on_sigterm(name, whole_process) as stop:
            try:
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                stop.code = result if isinstance(result, int) else 0
            except BaseException as err:
                # once a stop was requested, whatever ends the command is that stop: a library that
                # wraps it (onnxruntime's import turned it into an ImportError) does not make it a bug
                stop.code, line = _exit_code(stop.requested or err)
                click.echo(line, err=True)
        sys.exit(stop.code)


def _exit_code(err: BaseException) -> tuple[int, str]:
    """The exit code and the one line for what ended a command; a bug (anything else) is raised
    again, keeping its traceback."""
    if isinstance(err, click.ClickException):
        return err.exit_code, f"Error: {_one_line(err.format_message())}"
    if isinstance(err, SnnpipeError):
        return 2, f"Error: {_one_line(str(err))}"
    if isinstance(err, StopRequested):
        return err.exit_code, _one_line(str(err))
    if isinstance(err, (click.Abort, KeyboardInterrupt)):
        return 130, "Aborted."
    raise err


class _Stop:
    """What `_stop_on_sigterm`'s handler did: the stop it requested, if any, and once known the
    command's exit code (a SIGTERM after that stops nothing)."""

    def __init__(self) -> None:
        self.requested: StopRequested | None = None
        self.code: int | None = None


@contextlib.contextmanager
def _stop_on_sigterm(name: str, whole_process: bool = False):
    """SIGTERM raises `StopRequested` wherever the command is, so every ``finally`` on the way out
    runs: the temporaries of `files.atomic_path` and `files.atomic_folder` are removed and the locks
    released before the one line is printed (exit 143). A second SIGTERM meanwhile is ignored.
    One that comes after the command ended (its outcome known, its files in place or removed)
    stops nothing: it is said in one line and the process exits with the command's own code. In the
    program (``whole_process``) the handler stays until the interpreter's exit hooks run, then
    SIGTERM is ignored: Python restores the default action (ending the process silently) before
    it tears its modules down, which takes seconds after torch. Training sets its own handler
    while it trains: it finishes the step and saves first."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_sigterm(signum: int, _frame) -> None:
        signal.signal(signum, signal.SIG_IGN)
        if stop.code is not None:
            click.echo(f"{name} had already ended (exit {stop.code}) when {signal.Signals(signum).name} came; "
                       "nothing was stopped midway", err=True)
            return
        context = click.get_current_context(silent=True)
        stop.requested = StopRequested(f"{context.command_path if context else name} stopped by "
                                       f"{signal.Signals(signum).name}; the files it was writing were removed, those "
                                       "it had finished are kept")
        stop.requested.exit_code = 128 + signum
        raise stop.requested

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    if whole_process:
        atexit.register(signal.signal, signal.SIGTERM, signal.SIG_IGN)  # the first registered runs last
    try:
        yield stop
    finally:
        if not whole_process:
            signal.signal(signal.SIGTERM, previous)


def _one_line(message: str) -> str:
    return " ".join(message.split())


class RegistryChoice(click.ParamType):
    """A name from a registry, read when first needed (``snnpipe --help`` loads no registry): the
    choices that ``--help`` shows and the check of a value both come from the registry itself.
    ``shown`` narrows the names offered (in ``--help`` and in the list of an unknown name's
    message) to those the command can use; the others pass on, for the command to refuse with
    its reason."""

    name = "name"

    def __init__(self, what: str, names: Callable[[], Iterable[str]],
                 shown: Callable[[], Iterable[str]] | None = None) -> None:
        self.what, self.names, self.shown = what, names, shown or names

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(self.shown()) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in list(self.names()):
            return value
        shown = list(self.shown())
        close = difflib.get_close_matches(str(value), shown, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SnnpipeError(f"unknown {self.what} {value!r}{hint}: choose one of {', '.join(shown)}")


def _datasets() -> list[str]:
    return list(catalog().datasets)


def _models() -> list[str]:
    return sorted(catalog().models)


def _zoo_models() -> list[str]:
    """The models ``train`` builds from options (not the holders of imported networks)."""
    return sorted(name for name, model in catalog().models.items() if not model.imported)


def _stages() -> list[str]:
    return sorted(catalog().stages)


def _encodings() -> list[str]:
    return catalog().encodings


def _export_targets() -> list[str]:
    return sorted(catalog().exporters)


def _energy_targets() -> list[str]:
    from snnpipe.hw_targets.energy import TARGETS

    return list(TARGETS)


def _energy_models() -> list[str]:
    from snnpipe.pipeline.profile.estimators import ENERGY_MODELS

    return list(ENERGY_MODELS)


def _precisions() -> list[str]:
    from snnpipe.hw_targets.precision import PRECISIONS

    return list(PRECISIONS)


def _chips() -> list[str]:
    from snnpipe.hw_targets.chip import PRICED_CHIPS

    return list(PRICED_CHIPS)


def _threads_option(command: Callable) -> Callable:
    """``--threads N``: the thread count of the command's computation (`process`), set before
    torch is imported; without it the thread policy chooses."""

    def set_threads(_ctx, _param, value: int | None) -> None:
        if value is not None:
            if value < 1:
                raise SnnpipeError(f"--threads {value} is out of range: at least 1")
            process.start(value)

    return click.option("--threads", type=int, default=None, expose_value=False, is_eager=True, callback=set_threads,
                        help="CPU threads (default: 1 for small models or a busy machine, else every core).")(command)


def _at_least_one(_ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """Callback of a count option (``--samples``, ``--timesteps``): at least 1, refused in one line."""
    if value is not None and value < 1:
        raise SnnpipeError(f"{max(param.opts, key=len)} {value} is out of range: at least 1")
    return value


def _data_folder(_ctx: click.Context, _param: click.Parameter, data_dir: str | None) -> str | None:
    """Callback of ``--data-dir`` (fit, export, profile): a folder, refused in one line before anything
    else is looked at (`fit --accuracy` on digits, bundled, went on without a word about the path)."""
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():  # as the loaders read it
        raise SnnpipeError(f"--data-dir {data_dir} is not a folder; give the folder that holds the dataset")
    return data_dir


def _load_config_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Eager callback of ``--config``: YAML keys become option defaults; unknown keys are refused."""
    if value is None:
        return
    from snnpipe.pipeline.config import read_yaml

    path = Path(value)
    loaded = read_yaml(path, "config") or {}
    if not isinstance(loaded, dict):
        raise SnnpipeError(f"config {path} must be a mapping of option: value")
    params = {p.name: p for p in ctx.command.params if p.name and p.name != "config"}
    defaults: dict[str, Any] = {}
    for key, val in loaded.items():
        name = str(key).replace("-", "_")
        if name not in params:
            close = difflib.get_close_matches(name, sorted(params), n=1)
            hint = f"; did you mean {close[0].replace('_', '-')!r}?" if close else ""
            raise SnnpipeError(f"config {path}: unknown option {key!r}{hint}")
        if val is None:  # `key: null` leaves the option at its own default
            continue
        try:
            params[name].type_cast_value(ctx, val)
        except SnnpipeError as err:  # a registry's name: its own message lists the choices
            raise SnnpipeError(f"config {path}: {key}: {err}") from None
        except (click.BadParameter, TypeError, ValueError):
            raise SnnpipeError(
                f"config {path}: {key}: {val!r} is not a valid {params[name].type.name}"
            ) from None
        defaults[name] = val
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def _parse_model_args(_ctx, param, values: tuple[str, ...]) -> dict[str, Any]:
    """``--model-arg hidden=[256,128]`` (YAML values) into a dict; also ``--stage-arg``."""
    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SnnpipeError(f"--{param.name.replace('_', '-')[:-1]} {item!r} is not KEY=VALUE (e.g. hidden=[256,128])")
        try:
            value = load_yaml(raw, f"--{param.name.replace('_', '-')[:-1]} {key}")
        except yaml.YAMLError:
            raise SnnpipeError(f"--{param.name.replace('_', '-')[:-1]} {item!r}: the value is not valid YAML") from None
        parsed[key] = value  # typed and checked against the model or stage (`snnpipe.arguments`)
    return parsed


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="snnpipe")
def cli() -> None:
    """Train spiking networks, export them to Loihi, ONNX or NIR, and profile their energy."""


@cli.command("train")
@click.option("--config", type=click.Path(dir_okay=False), callback=_load_config_file, is_eager=True,
              expose_value=False, help="YAML file of option defaults (keys are option names).")
@click.option("--dataset", type=RegistryChoice("dataset", _datasets), default="digits", show_default=True,
              help="The dataset to train and test on.")
@click.option("--data-dir", default=None, help="Folder with the dataset files (IDX or CIFAR pickles).")
@click.option("--model", type=RegistryChoice("model", _models, shown=_zoo_models), default=None,
              help="Zoo model (see `snnpipe models`); default: the dataset's.")
@click.option("--model-arg", "model_args", multiple=True, callback=_parse_model_args,
              help="Model argument KEY=VALUE, repeatable (e.g. hidden=[256,128]).")
@click.option("--stage", type=RegistryChoice("stage", _stages), default="bptt", show_default=True,
              help="The training stage: its loss and the modules it adds.")
@click.option("--stage-arg", "stage_args", multiple=True, callback=_parse_model_args,
              help="Stage argument KEY=VALUE, repeatable (e.g. base=bptt, eta=0.1).")
@click.option("--teacher", default=None, help="Teacher checkpoint for the distillation stages.")
@click.option("--epochs", type=int, default=None, help="Epochs (default depends on the dataset).")
@click.option("--batch-size", type=int, default=None, help="Batch size (default depends on the dataset).")
@click.option("--optimizer", default="adam", show_default=True, help="adam or sgd.")
@click.option("--lr", type=float, default=None, help="Learning rate (adam 1e-3, sgd 0.1).")
@click.option("--schedule", type=click.Choice(["cosine", "plateau"]), default="cosine", show_default=True,
              help="cosine: the lr annealed to 0 over --epochs; plateau: divided by 10 on each plateau of the "
                   "training accuracy, twice, the third ending the run (--epochs caps it).")
@click.option("--patience", type=int, default=4, show_default=True,
              help="plateau: epochs in a row without a new best training accuracy that make a plateau.")
@click.option("--momentum", type=float, default=0.9, show_default=True, help="SGD's momentum.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True,
              help="L2 on conv and linear weights (not biases or BatchNorm).")
@click.option("--grad-scale", type=click.Choice(["1", "1/T"]), default="1", show_default=True,
              help="1/T divides the loss gradient by T in one-step stages (the official RateBP).")
@click.option("--augment", is_flag=True, help="Random crop, flip and Cutout as the dataset's entry says.")
@click.option("--train-samples", type=int, default=None, help="Train on this many images (a fixed subset).")
@click.option("--test-samples", type=int, default=None, help="Test each epoch on this many images (a fixed subset).")
@click.option("-T", "--timesteps", type=int, default=4, show_default=True, help="Timesteps T per sample.")
@click.option("--encoding", type=RegistryChoice("encoding", _encodings), default="direct", show_default=True,
              help="How images become input steps: analog (direct), Bernoulli spikes (rate), one spike each (latency).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the split, the initialization, the shuffling and the rate coding.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("-o", "--out", default=None, help="Run folder (default runs/<dataset>-<model>-<stage>).")
@click.option("--init", default=None, help="Start from this checkpoint's weights (e.g. an ann stage).")
@click.option("--resume", default=None, help="Continue the run of this checkpoint.")
@click.option("--checkpoint-every", type=int, default=None, help="Also write a checkpoint every N steps.")
@click.option("--keep", type=int, default=3, show_default=True, help="Keep the last K step checkpoints.")
@click.option("--amp", default=None, help="Mixed precision: bf16 (autocast).")
@click.option("--compile", is_flag=True, help="torch.compile the training step.")
@click.option("--quantize", type=click.Choice(["loihi"]), default=None,
              help="Quantization-aware training: compute with the weights `export --target loihi` writes.")
@click.option("--current-decay", type=float, default=1.0, show_default=True, help="a_u in [0, 1].")
@click.option("--voltage-decay", type=float, default=0.5, show_default=True, help="a_v in [0, 1].")
@click.option("--threshold", type=float, default=1.0, show_default=True, help="A neuron spikes where v > threshold.")
@click.option("--refractory-steps", type=int, default=0, show_default=True,
              help="Steps a neuron stays at rest after a spike (1: snnTorch's Synaptic).")
@click.option("--surrogate", default="atan", show_default=True,
              help="rectangular, triangular, sigmoid or atan.")
@click.option("--surrogate-width", type=float, default=1.0, show_default=True,
              help="The surrogate gradient's width (it peaks at 1/width).")
@click.option("--reset", type=click.Choice(["zero", "subtract"]), default="zero", show_default=True,
              help="After a spike: v = 0 (Loihi) or v - threshold (soft).")
@click.option("--quiet", is_flag=True, help="No progress bar and no text.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_threads_option
def train_command(quiet: bool, as_json: bool, **options: Any) -> None:
    """Train a model (default: a spiking MLP on the bundled digits) and write a checkpoint."""
    from snnpipe.models.params import NeuronParams
    from snnpipe.pipeline.checks import check_config
    from snnpipe.pipeline.config import TrainConfig

    neuron = NeuronParams(
        current_decay=options.pop("current_decay"), voltage_decay=options.pop("voltage_decay"),
        threshold=options.pop("threshold"), refractory_steps=options.pop("refractory_steps"),
        surrogate=options.pop("surrogate"), surrogate_width=options.pop("surrogate_width"),
        reset=options.pop("reset"),
    )
    config = TrainConfig(neuron=neuron, **options)
    if config.resume is None:
        check_config(config)  # every name and argument, before any work (and before torch)
    from snnpipe.pipeline.train import check_resume_options, train

    if config.resume is not None:
        ctx = click.get_current_context()
        unset = (None, ParameterSource.DEFAULT)
        check_resume_options(config, {p.name: max(p.opts, key=len) for p in ctx.command.params
                                      if p.name in ctx.params and ctx.get_parameter_source(p.name) not in unset})

    def report(record: dict) -> None:
        if not quiet and not as_json:
            test = (f"test {record['test_acc']:.2%}  rate {record['firing_rate']:.4f}" if "test_acc" in record
                    else f"rate {record['train_firing_rate']:.4f} (train; test set read after the last epoch)")
            progress.write(f"epoch {record['epoch']:>3}  loss {record['train_loss']:.4f}  train {record['train_acc']:.2%}  "
                           f"{test}  {record['epoch_seconds']:.1f}s")

    ckpt = train(config, progress=not quiet and not as_json, on_epoch=report,  # bars: on a terminal (`progress`)
                 on_note=None if quiet else lambda line: click.echo(line, err=True))
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun rank 0 says it, once
        return
    result = {"checkpoint": str(ckpt.path), **ckpt.history[-1]}
    if as_json:
        click.echo(json.dumps(result))
    elif not quiet:
        click.echo(
            f"{result['stage']}: test accuracy {result['test_acc']:.2%}, "
            f"mean firing rate {result['firing_rate']:.4f}; checkpoint {result['checkpoint']}"
        )


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def models_command(as_json: bool) -> None:
    """List the model zoo with parameter counts (at each model's default input, 10 classes)."""
    rows = [{"name": m.name, "parameters": parameters(m), "input": list(m.default_input), "description": m.description}
            for m in catalog().models.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'model':<10} {'parameters':>11}  {'input':<10} description")
    for row in rows:
        shape = "x".join(map(str, row["input"]))
        click.echo(f"{row['name']:<10} {row['parameters']:>11,}  {shape:<10} {row['description']}")


@cli.command("fit")
@click.argument("model")
@click.option("--chips", default=None,
              help="Comma-separated chips (names, or chip files' paths); default loihi2,loihi,speck,xylo,akida,spinnaker2.")
@click.option("--require-fit", "require_fit", multiple=True,
              help="Gate: exit 1 unless the network fits this chip (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print every chip's mapping and resources as JSON.")
@click.option("-o", "--out", default=None, help="Also write fit.json, fit.md and fit.png into this folder.")
@click.option("--force", is_flag=True, help="Replace the fit report already in --out.")
@click.option("--accuracy", is_flag=True,
              help="Also measure each chip's quantization in test accuracy (a checkpoint: Loihi's fixed-point "
                   "simulator, the other chips' weights rounded to their bits).")
@click.option("--samples", type=int, default=None, callback=_at_least_one,
              help="With --accuracy: the first N test samples only.")
@click.option("--data-dir", default=None, callback=_data_folder, help="With --accuracy: where the checkpoint's dataset is.")
@click.option("--quiet", is_flag=True, help="No output but errors and a failed gate.")
def fit_command(model: str, chips: str | None, require_fit: tuple[str, ...], as_json: bool, out: str | None,
                force: bool, accuracy: bool, samples: int | None, data_dir: str | None, quiet: bool) -> None:
    """Does MODEL fit each chip, and if not, which resource fails where and what to change.

    MODEL is a checkpoint, a NIR file or a Loihi file (netx or graph file). Each chip's layers are placed as its vendor's mapper would
    (Loihi's cores, Speck's core layers, Xylo's populations, Akida's NPs); every resource is counted
    against the chip file's limits (hw_targets/chips/*.toml, each with its source)."""
    from snnpipe.hw_targets.hdf5_file import is_loihi_file
    from snnpipe.pipeline.fit import FIT_FILES, fit_file, resolve_chips, write_fit

    if out and not force and any(os.path.lexists(Path(out) / name) for name in FIT_FILES):
        raise SnnpipeError(f"{out} already holds a fit report; pass --force to replace it or --out to write elsewhere")
    names, require_fit = resolve_chips(chips, require_fit)
    if not accuracy and (samples is not None or data_dir is not None):
        raise SnnpipeError("--samples and --data-dir choose --accuracy's test samples: add --accuracy")
    if accuracy and (Path(model).suffix.lower() == ".nir" or is_loihi_file(Path(model))):
        raise SnnpipeError(f"--accuracy measures a checkpoint; {model} is not one: give the checkpoint it came from")
    report = fit_file(model, names)
    if accuracy:
        from snnpipe.pipeline.fit import chip_accuracy

        report.accuracy = chip_accuracy(model, names, data_dir, samples)
    if out:
        write_fit(report, out)
    failed = [name for name in require_fit if not report.get(name).fits]
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "require_fit": {name: name not in failed for name in require_fit}}))
    elif not quiet:
        click.echo("\n".join(report.table()))
    if failed:
        raise GateFailed("; ".join(report.get(name).summary() for name in failed))


class _ExportCommand(click.Command):
    """``export``, whose target options come from the exporters' option dataclasses
    (`ExporterEntry.options`): one ``--option`` per field name across the targets, with the field's
    ``help`` metadata and the targets that take it. ``export()`` refuses one the target lacks."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not any(getattr(p, "target_option", False) for p in self.params):
            self.params.extend(_target_options())  # built once, when first parsed or shown
        return super().get_params(ctx)


def _target_options() -> list[click.Option]:
    import dataclasses
    import types
    import typing

    fields: dict[str, tuple[dataclasses.Field, Any, list[str]]] = {}
    for name, entry in sorted(catalog().exporters.items()):
        if entry.options is None:  # its optional package is missing
            continue
        hints = typing.get_type_hints(entry.options, include_extras=True)
        for f in dataclasses.fields(entry.options):
            fields.setdefault(f.name, (f, hints[f.name], []))[2].append(name)
    options = []
    for key, (f, hint, targets) in fields.items():
        kind = str
        for option in typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,):
            base = typing.get_args(option)[0] if typing.get_origin(option) is typing.Annotated else option
            kind = {int: int, float: float}.get(base, kind)
        option = click.Option([f"--{key.replace('_', '-')}"], type=kind, default=None,
                              help=f"{f.metadata.get('help', key)} (--target {', '.join(targets)}).")
        option.target_option = True  # type: ignore[attr-defined]
        options.append(option)
    return options


@cli.command("export", cls=_ExportCommand)
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--target", required=True, type=RegistryChoice("export target", _export_targets),
              help="The format to write; each has its own options below.")
@click.option("-o", "--out", default=None, help="File to write (default: beside the checkpoint, in export/).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--data-dir", default=None, callback=_data_folder,
              help="Where the checkpoint's dataset is (for verification).")
@click.option("--samples", type=int, default=None, callback=_at_least_one, help="Use only the first N test samples.")
@click.option("--timesteps", type=int, default=None, callback=_at_least_one,
              help="Run the exported network T steps per input (default: as trained).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar and no text but errors.")
@_threads_option
def export_command(checkpoint: str, target: str, out: str | None, force: bool, data_dir: str | None,
                   samples: int | None, timesteps: int | None, as_json: bool, quiet: bool, **options: Any) -> None:
    """Export a checkpoint (or a NIR graph) to Loihi (Lava netx HDF5), ONNX or NIR, and verify it."""
    from snnpipe.hw_targets import parse_target_options
    from snnpipe.pipeline.checkpoint_file import check_checkpoint_file, is_nir_file

    options = {k: v for k, v in options.items() if v is not None}
    exporter = catalog().exporter(target)
    if exporter.options is not None:  # else export() names the package to install
        parse_target_options(target, exporter.options, options)
    if not is_nir_file(checkpoint):
        check_checkpoint_file(checkpoint)
    from snnpipe.pipeline.export import export

    with progress.quiet(quiet or as_json):
        result = export(checkpoint, target, out=out, force=force, data_dir=data_dir, samples=samples,
                        timesteps=timesteps, **options)
    if quiet and not as_json:
        return
    if as_json:
        click.echo(json.dumps({"target": result.target, "file": str(result.path), **result.report}, default=str))
        return
    click.echo(f"wrote {result.path}")
    for key, value in result.report.items():
        if not isinstance(value, (dict, list)):
            click.echo(f"  {key}: {value}")


@cli.command("run")
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--out", default=None, help="Run folder (default runs/<recipe name>, never overwritten).")
@click.option("--resume", default=None, type=click.Path(file_okay=False),
              help="Continue an interrupted run of this recipe in its folder: finished steps are kept.")
@click.option("--quiet", is_flag=True, help="Only the summary table.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--workers", type=int, default=None,
              help="Run up to N sweep cells at once (local processes, one thread each unless --threads).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where sweep cells run: this machine, or a Ray cluster (pip install 'snnpipe[ray]').")
@click.option("--address", default=None, help="The Ray cluster's HOST:PORT (default: a local Ray for this run).")
@click.option("--tier", default=None, help="Run the recipe at one of its sizes (its tiers:, e.g. gpu-fm); a run resumes at its own.")
@_threads_option
def run_command(recipe: str | None, out: str | None, resume: str | None, quiet: bool, as_json: bool,
                workers: int | None, executor: str, address: str | None, tier: str | None) -> None:
    """Run a recipe of train, export and profile steps (default: the embedded digits pipeline)."""
    from dataclasses import asdict

    from snnpipe.pipeline.executors import make_executor
    from snnpipe.pipeline.run import load_recipe, run

    parsed = load_recipe(recipe, tier)

    def report(step) -> None:
        if not quiet and not as_json:
            progress.write(f"{step.step}: {step.kind} done in {step.seconds:.1f}s -> {step.path}")

    def report_cell(cell, reused: bool, where) -> None:
        if not quiet and not as_json:
            how = "kept from before" if reused else f"{cell.seconds:.0f}s"
            result = (f"FAILED: {cell.failed}" if cell.failed else cell.diverged if cell.diverged else
                      f"test {cell.test_acc:.2%}  rate {cell.firing_rate:.4f}  {cell.energy_text()}")
            click.echo(f"{cell.step} cell {where.done}/{where.count} {cell.cell}: {result}  "
                       f"({how}; {where.running} running, {where.left} left)")

    if resume and out:
        raise SnnpipeError("give --resume FOLDER or --out FOLDER, not both: a resumed run stays in its folder")
    result = run(parsed, out=out, on_step=report, resume=resume, progress=not quiet and not as_json,
                 on_cell=report_cell, executor=make_executor(executor, workers, address, process.chosen_threads()))
    if as_json:
        click.echo(json.dumps({"folder": str(result.folder), "steps": [asdict(s) for s in result.steps],
                               "verdicts": result.verdicts, "failed": [asdict(c) for c in result.failed]}, default=str))
    else:
        click.echo(f"\n{result.verdict_text()}{result.table()}\n\nall outputs in {result.folder}")
        for cell in result.failed:
            click.echo(f"FAILED {cell.step} cell {cell.cell}: {cell.failed}")
    if result.failed:
        raise CellsFailed(f"{len(result.failed)} sweep cell(s) failed, the others finished; run them again with "
                          f"{parsed.command} --resume {result.folder}")


class CellsFailed(click.ClickException):
    """Some cells of a sweep failed (each printed with its cause): exit code 1."""

    exit_code = 1


class GateFailed(click.ClickException):
    """The firing-rate gate failed: exit code 1."""

    exit_code = 1


@cli.command("profile")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data-dir", default=None, callback=_data_folder, help="Where the checkpoint's dataset is.")
@click.option("--dataset", type=RegistryChoice("dataset", _datasets), default=None,
              help="Profile on another dataset of the same input shape (a Loihi file: the dataset it runs on).")
@click.option("--encoding", type=RegistryChoice("encoding", _encodings), default=None,
              help="A Loihi file's input encoding (default: the one it was exported with).")
@click.option("-T", "--timesteps", type=int, default=None, callback=_at_least_one,
              help="Timesteps T per sample (default: as trained).")
@click.option("--deployed", default=None, type=click.Path(dir_okay=False),
              help="The checkpoint's Loihi file: profile it in fixed point on the same input, side by side.")
@click.option("--samples", type=int, default=1000, show_default=True, callback=_at_least_one,
              help="The first N test samples to run.")
@click.option("--target", type=RegistryChoice("energy target", _energy_targets), default=None,
              help="Energy target (default: cmos45nm).")
@click.option("--target-file", default=None, help="A TOML or YAML energy target of your own (instead of --target).")
@click.option("--energy-model", type=RegistryChoice("energy model", _energy_models), default="ops", show_default=True,
              help="How the SNN and its ANN baselines are priced.")
@click.option("--precision", type=RegistryChoice("precision", _precisions), default="int8", show_default=True,
              help="The SNN's arithmetic and weights under --energy-model memory (int8: the Loihi export's).")
@click.option("--chip", type=RegistryChoice("chip", _chips), default=None,
              help="The chip under --energy-model chip (default: loihi2).")
@click.option("--chip-file", default=None, help="A TOML or YAML chip of your own (instead of --chip).")
@click.option("--chips", "fit_chips", default=None,
              help="Also fit the network onto these chips (comma-separated, as `snnpipe fit --chips`).")
@click.option("-o", "--out", default=None, help="Report folder (default reports/<run name>/).")
@click.option("--force", is_flag=True, help="Replace an existing report.")
@click.option("--baseline", default=None, help="Firing-rate (and energy) gate: compare with this profile.json.")
@click.option("--max-increase", default="5%", show_default=True, help="Firing-rate gate tolerance, relative: 5% or 0.05.")
@click.option("--max-energy-increase", default=None,
              help="Energy gate tolerance, relative (5% or 0.05): gate the SNN's energy estimate too, per layer and total.")
@click.option("--update-baseline", is_flag=True, help="Write this profile as the new --baseline instead of gating.")
@click.option("--json", "as_json", is_flag=True, help="Print the totals (and the gate) as one JSON line.")
@click.option("--quiet", is_flag=True, help="No output but errors and a failed gate's table.")
@_threads_option
def profile_command(checkpoint: str, data_dir, dataset, encoding, timesteps, deployed, samples, target, target_file,
                    energy_model, precision, chip, chip_file, fit_chips, out, force, baseline, max_increase,
                    max_energy_increase, update_baseline, as_json, quiet) -> None:
    """Count spikes and synaptic operations per layer, estimate energy, write reports, gate the firing
    rate (and the energy).

    CHECKPOINT is a checkpoint; a NIR graph (FILE.nir, from any framework's NIR writer), run as it is
    with the settings `snnpipe import nir` would give it (--dataset, -T, --encoding); or a Loihi file
    (netx, from snnpipe or lava-dl, or a Loihi graph): that runs in Loihi's bit-accurate fixed point,
    and its spikes are profiled."""
    from snnpipe.files import atomic_path, lock_output
    from snnpipe.pipeline.checkpoint_file import check_checkpoint_file
    from snnpipe.pipeline.profile import energy_gate, firing_rate_gate, parse_fraction, read_profile
    from snnpipe.pipeline.energy_report import figure_key, figure_name, in_unit, report_unit
    from snnpipe.pipeline.report import check_report_folder, json_safe, profile_json, write_reports
    from snnpipe.hw_targets.hdf5_file import is_loihi_file
    from snnpipe.pipeline.verdict_block import TITLE, as_text, verdict_lines

    nir_file = Path(checkpoint).suffix.lower() == ".nir"  # a NIR graph, run as `snnpipe import nir` reads it
    loihi_file = not nir_file and is_loihi_file(Path(checkpoint))
    if loihi_file and deployed:
        raise SnnpipeError(f"--deployed puts a Loihi file beside its checkpoint; {checkpoint} is a Loihi file itself: "
                           "give the checkpoint first")
    if encoding and not (loihi_file or nir_file):
        raise SnnpipeError("--encoding is for a Loihi file or a NIR file (a checkpoint profiles in its own encoding)")
    tolerance = parse_fraction(max_increase)
    energy_tolerance = parse_fraction(max_energy_increase, "--max-energy-increase") if max_energy_increase else None
    if energy_tolerance is not None and not baseline:
        raise SnnpipeError("--max-energy-increase needs --baseline FILE to gate against")
    if chip and chip_file:
        raise SnnpipeError("give --chip or --chip-file, not both")
    if update_baseline and not baseline:
        raise SnnpipeError("--update-baseline needs --baseline FILE to write")
    if not baseline and click.get_current_context().get_parameter_source("max_increase") != ParameterSource.DEFAULT:
        raise SnnpipeError("--max-increase is the tolerance of the gate against --baseline FILE: give one")
    if target and target_file:
        raise SnnpipeError("give --target or --target-file, not both")
    # what can fail without the work fails before it: the inputs first (a missing one is named, not a
    # report folder it would have written), then the baseline to gate against and an old report
    if loihi_file and not Path(checkpoint).is_file():
        raise SnnpipeError(f"Loihi file {checkpoint} does not exist; give the path of a .net.h5 file")
    fitted = None
    if fit_chips:
        from snnpipe.pipeline.fit import fit_file, resolve_chips

        fit_names, _ = resolve_chips(fit_chips)
        fitted = fit_file(checkpoint, fit_names)
    if nir_file:
        from snnpipe.pipeline.importer import nir_checkpoint

        source = nir_checkpoint(checkpoint, dataset=dataset, timesteps=timesteps, encoding=encoding)
    elif not loihi_file:
        source = check_checkpoint_file(checkpoint)
    if deployed and not Path(deployed).is_file():
        raise SnnpipeError(f"--deployed {deployed} does not exist; give the path of the checkpoint's .net.h5 file")
    from snnpipe.pipeline.profile.stage import energy_settings

    energy_settings(target, target_file, energy_model, precision, chip, chip_file)
    reference = read_profile(baseline) if baseline and not update_baseline else None
    if update_baseline and os.path.lexists(baseline):  # what it replaces must be a baseline, not a file of yours
        try:
            read_profile(baseline)
        except SnnpipeError as err:
            raise SnnpipeError(f"--update-baseline replaces a profile baseline; {baseline} is none ({err}): choose "
                               "another path, or remove it first") from None
    folder = Path(out) if out else Path("reports") / _report_name(Path(checkpoint), loihi_file or nir_file)
    check_report_folder(folder, force)
    import torch

    from snnpipe.pipeline import distributed
    from snnpipe.pipeline.profile import profile

    # under torchrun each rank counts its share of the batches (gloo, on the CPU) and the sums are reduced
    world = distributed.setup(torch.device("cpu"))
    if world.is_main:  # the report folder is this command's until it ends (a second profile there is refused)
        click.get_current_context().with_resource(lock_output(folder))
    progress = not (quiet or as_json)
    fixed_point = None
    try:
        energy = dict(target=target, target_file=target_file, energy_model=energy_model, precision=precision,
                      chip=chip, chip_file=chip_file)
        if loihi_file:
            from snnpipe.pipeline.profile.deployed import profile_deployed

            result = profile_deployed(checkpoint, data_dir, dataset=dataset, encoding=encoding, timesteps=timesteps,
                                      samples=samples, progress=progress, **energy)
        else:
            result = profile(source, data_dir, timesteps, samples=samples, dataset=dataset, progress=progress,
                             world=world, **energy)
            if deployed:
                from snnpipe.pipeline.profile.deployed import profile_deployed
                from snnpipe.pipeline.profile.side_by_side import check_same_network

                fixed_point = profile_deployed(deployed, data_dir, checkpoint=source, dataset=dataset,
                                               timesteps=timesteps, samples=samples, progress=progress, **energy)
                check_same_network(result, fixed_point, deployed)
    finally:
        distributed.teardown(world)
    if not world.is_main:
        return
    if result.samples_requested and not quiet:
        click.echo(f"note: --samples {samples}: the {result.dataset} test set holds {result.samples} samples; "
                   f"profiled {result.samples}", err=True)
    # a baseline of another model, T or sample count is refused before anything is written
    gate = firing_rate_gate(result, reference, tolerance) if reference is not None else None
    egate = energy_gate(result, reference, energy_tolerance) if reference is not None and energy_tolerance is not None else None
    if fitted is not None:
        from snnpipe.pipeline.fit import chip_cost

        result.fit = [{**chip, "cost": chip_cost(result, name, chips=chip["chips"])}
                      for chip, name in zip(fitted.to_dict()["chips"], fit_names)]
    write_reports(result, folder, force=force, deployed=fixed_point)
    if update_baseline:
        try:
            with atomic_path(Path(baseline)) as tmp:  # the old baseline stays whole until the new one is
                tmp.write_text(profile_json(result))
        except OSError as err:
            raise SnnpipeError(f"cannot write the baseline {baseline} ({err.strerror or err})") from None
    t = result.totals
    if as_json:
        summary = {"report": str(folder), "accuracy": result.accuracy, **t.to_dict(), **result.comparison}
        snn = result.estimates.get("snn")
        if snn is not None:
            summary["energy"] = {"model": result.energy_model, "precision": snn.precision,
                                 **{figure_key(e): e.total_uj for e in result.estimates.values()},
                                 "snn_min_uj": snn.min_pj * 1e-6, "snn_max_uj": snn.max_pj * 1e-6,
                                 "snn_stderr_uj": snn.stderr_pj * 1e-6}
        if fixed_point is not None:
            summary["deployed"] = {"accuracy": fixed_point.accuracy, **fixed_point.totals.to_dict()}
            fixed_snn = fixed_point.estimates.get("snn")
            if fixed_snn is not None:
                summary["deployed"]["energy"] = {"model": fixed_point.energy_model, "precision": fixed_snn.precision,
                                                 figure_key(fixed_snn): fixed_snn.total_uj,
                                                 "snn_stderr_uj": fixed_snn.stderr_pj * 1e-6}
        for key, g, tol in (("gate", gate, tolerance), ("energy_gate", egate, energy_tolerance)):
            if g:
                summary[key] = {"passed": g.passed, "max_increase": tol,
                                "rows": [dict(zip(("layer", "baseline", "now", "change"), row)) for row in g.rows]}
        if fitted is not None:
            summary["fit"] = result.fit
        click.echo(json.dumps(json_safe(summary), allow_nan=False))
    elif not quiet:
        click.echo(f"{TITLE}: {as_text(verdict_lines(result))}")
        accuracy = f"accuracy {result.accuracy:.2%}, " if result.accuracy is not None else ""
        click.echo(f"{result.model}: {accuracy}firing rate {result.totals.firing_rate:.4f}, {t.acs:.4g} ACs + "
                   f"{t.macs:.4g} MACs per inference; reports in {folder}/")
        snn = result.estimates.get("snn")
        if fixed_point is not None:
            f, d = result.totals, fixed_point.totals
            fixed_snn = fixed_point.estimates.get("snn")
            energy_text = (f", deployed {figure_name(fixed_snn)} {in_unit(fixed_snn.total_pj, report_unit(result))} "
                           f"(float {in_unit(snn.total_pj, report_unit(result))})"
                           if fixed_snn is not None and snn is not None else "")
            click.echo(f"deployed ({fixed_point.model}): "
                       + (f"accuracy {fixed_point.accuracy:.2%}, " if fixed_point.accuracy is not None else "")
                       + f"{d.spikes:.4g} spikes (float {f.spikes:.4g}), {d.acs:.4g} ACs (float {f.acs:.4g}), "
                       f"{d.macs:.4g} MACs (float {f.macs:.4g}){energy_text} per inference; "
                       f"side by side in {folder}/deployed.md")
        if fitted is not None:
            from snnpipe.pipeline.fit import fit_table

            click.echo("\n".join(fit_table(result.fit)))
        if update_baseline:
            click.echo(f"baseline written to {baseline}")
    for g in (gate, egate):
        if g and (not g.passed or not (quiet or as_json)):
            click.echo(g.table())
    failed = [f"{what} rose by more than {tol:.1%}" for what, g, tol in
              (("firing rate", gate, tolerance), ("energy", egate, energy_tolerance)) if g and not g.passed]
    if failed:
        raise GateFailed(f"{' and '.join(failed)} over the baseline {baseline}")


def _report_name(path: Path, loihi_file: bool) -> str:
    """The default report folder's name: a checkpoint's run folder; a Loihi file's run (the folder
    above ``export/``, or its own folder) and name, as ``<run>-<file>``."""
    run = path.resolve().parent
    if not loihi_file:
        return run.name
    if run.name.startswith("export"):
        run = run.parent
    return f"{run.name}-{path.name.split('.')[0]}"


def _parse_numbers(kind: type):
    """Callback: ``1,28,28`` or ``0.5,0.5,0.5`` into a tuple of ``kind`` (None when not given)."""

    def parse(_ctx, param, value: str | None):
        if value is None:
            return None
        try:
            return tuple(kind(v) for v in value.replace(" ", "").split(","))
        except ValueError:
            raise SnnpipeError(f"--{param.name.replace('_', '-')} {value!r} is not a comma-separated list of {kind.__name__}s") from None

    return parse


@cli.group("import")
def import_group() -> None:
    """Turn a network written by another tool into an snnpipe checkpoint."""


@import_group.command("nir")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--out", default=None, help="Checkpoint to write (default: FILE with .pt).")
@click.option("-T", "--timesteps", type=int, default=None, help="Timesteps T per sample (default: the file's, else 4).")
@click.option("--encoding", type=RegistryChoice("encoding", _encodings), default=None,
              help="Input encoding (default: the file's, else direct).")
@click.option("--dataset", type=RegistryChoice("dataset", _datasets), default=None,
              help="Dataset for profile and export (default: the file's, else guessed from the shapes).")
@click.option("--input-shape", callback=_parse_numbers(int), default=None, help="C,H,W for a graph with flat input.")
@click.option("--mean", callback=_parse_numbers(float), default=None, help="Per-channel mean (default: the file's, else 0).")
@click.option("--std", callback=_parse_numbers(float), default=None, help="Per-channel std (default: the file's, else 1).")
@click.option("--dt", type=float, default=None, help="Seconds per step of the file's time constants (default: its own, else 1e-4).")
@click.option("--refractory-steps", type=int, default=0, show_default=True,
              help="For every CubaLIF; 1 reproduces snnTorch's default Synaptic.")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def import_nir_command(file: str, as_json: bool, **options: Any) -> None:
    """Import a NIR graph (e.g. from snnTorch's export_to_nir) as a checkpoint to profile or export."""
    from snnpipe.pipeline.importer import import_nir

    ckpt = import_nir(file, **options)
    result = {"checkpoint": str(ckpt.path), "model": ckpt.model_name, "dataset": ckpt.data.name,
              "input_shape": list(ckpt.data.input_shape), "classes": ckpt.data.num_classes,
              "timesteps": ckpt.timesteps, "encoding": ckpt.encoding, "mean": list(ckpt.data.mean),
              "std": list(ckpt.data.std), "dt": ckpt.history[-1]["dt"],
              "settings_from": ckpt.history[-1]["settings_from"]}
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"wrote {result['checkpoint']}: {result['model']} model, {result['dataset']} "
               f"{'x'.join(map(str, result['input_shape']))} -> {result['classes']} classes, T={result['timesteps']}, "
               f"{result['encoding']} encoding, mean {result['mean']}, std {result['std']}, dt={result['dt']:g} s")
    origin = result["settings_from"]
    labels = {"file": "from the file's metadata", "option": "as given", "default": "defaults", "guessed": "guessed"}
    click.echo("; ".join(f"{label}: {', '.join(key for key, how in origin.items() if how == kind)}"
                         for kind, label in labels.items() if kind in origin.values()))


def main() -> None:
    process.start()  # before anything imports torch
    cli.main(whole_process=True)
