"""Export targets: each turns a trained model into a file another runtime reads, and proves it.

An exporter registers with ``@register_exporter("name")`` and is called with an `ExportRequest`;
it writes ``request.out`` (atomically: a temporary file, then rename) and returns an
`ExportResult` whose ``report`` is a flat, JSON-ready dict. A layer a target cannot express raises
`UnsupportedLayerError` naming the module path and the target; nothing is ever dropped silently.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from snnpipe.arguments import from_options
from snnpipe.errors import SnnpipeError
from snnpipe.files import atomic_path  # noqa: F401  (the exporters' atomic writes)
from snnpipe.registry import register_into

if TYPE_CHECKING:  # annotations only: this registry, and the energy targets beside it, load without torch
    from torch import Tensor

    from snnpipe.models import SpikingModel


class ExportError(SnnpipeError):
    """An export that cannot be done as asked: the message names the cause and the fix."""


class UnsupportedLayerError(ExportError):
    """A module the target cannot express."""

    def __init__(self, path: str, module: object, target: str, hint: str = "", node: str | None = None) -> None:
        name = type(module).__name__
        kind = f"{name}, node {node!r}" if node else name  # node: the graph node the module was built from
        message = f"{path or '<model>'} ({kind}) cannot be exported to {target}"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.path, self.module_type, self.target, self.hint, self.module = path, name, target, hint, module


@dataclass
class ExportRequest:
    """What an exporter gets.

    Attributes:
        model: the trained model in eval mode, BatchNorm not yet folded (see `folding`).
        input_shape: (C, H, W) of one sample.
        timesteps: T the model was trained with.
        encoding: ``direct``, ``rate`` or ``latency``.
        out: the file to write.
        batches: a callable returning an iterator of (x, y) test batches, x encoded as (T, B, ...),
            for verification and accuracy; None where there is no data.
        options: the target's options, an instance of its entry's ``options`` dataclass (None:
            the defaults).
        force: replace files that exist (the exporter's side files included).
        metadata: what a reader of the file needs to run it on the same data (``dataset``,
            ``data_seed``, ``mean``, ``std``); an exporter keeps it where its format has room.
    """

    model: SpikingModel
    input_shape: tuple[int, ...]
    timesteps: int
    encoding: str
    out: Path
    batches: Callable[[], Iterable[tuple[Tensor, Tensor]]] | None = None
    options: Any = None
    force: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportResult:
    """What an export wrote and what it measured."""

    target: str
    path: Path
    report: dict[str, Any] = field(default_factory=dict)


Exporter = Callable[[ExportRequest], ExportResult]


@dataclass
class NoOptions:
    """An exporter without options."""


@dataclass(frozen=True)
class ExporterEntry:
    """A registered export target: its function, the file suffix it writes and its options.

    Attributes:
        options: a dataclass whose fields are the target's options, typed (`snnpipe.arguments`)
            and checked in ``__post_init__``; the exporter gets an instance as ``request.options``.
    """

    name: str
    fn: Exporter
    suffix: str
    options: type = NoOptions

    def parse_options(self, raw: dict[str, Any]) -> Any:
        """The options instance from user values (`parse_target_options`)."""
        return parse_target_options(self.name, self.options, raw)


def parse_target_options(target: str, options: type, raw: dict[str, Any]) -> Any:
    """An instance of a target's ``options`` dataclass from user values; an unknown, inapplicable
    or ill-typed one is an `ExportError` naming it and the target."""
    def flag(key: str) -> str:
        return "--" + key.replace("_", "-")

    return from_options(options, raw, f"--target {target}", ExportError, spell=flag, listed=flag, absent="omit the flag")


EXPORTERS: dict[str, ExporterEntry] = {}


def register_exporter(name: str, suffix: str, options: type = NoOptions) -> Callable[[Exporter], Exporter]:
    """Decorator: register an exporter under a target name, with the suffix of the file it writes
    and its options dataclass; a duplicate name is refused.

    The exporter of target ``name`` lives in ``hw_targets/<name>.py`` or
    ``hw_targets/<name>/export.py``: `find_exporter` imports it from there when asked for ``name``,
    so adding a target is adding that one file.
    """

    def wrap(fn: Exporter) -> Exporter:
        register_into(EXPORTERS, name, "exporter")(ExporterEntry(name, fn, suffix, options))
        return fn

    return wrap


def _exporter_module(name: str) -> str | None:
    """Where the exporter of target ``name`` lives by the rule of `register_exporter`, if anywhere."""
    here = Path(__file__).resolve().parent
    if (here / name / "export.py").is_file():
        return f"{__name__}.{name}.export"
    if (here / f"{name}.py").is_file():
        return f"{__name__}.{name}"
    return None


def find_exporter(target: str) -> ExporterEntry:
    """The registered exporter of ``target``, importing its module on first use.

    Raises:
        ExportError: no such target (the message lists those there are), or its optional package is
            not installed (the message says which to install).
    """
    if target not in EXPORTERS:
        module = _exporter_module(target) if target.replace("_", "").isalnum() else None
        if module is not None:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as err:
                if not err.name or err.name.split(".")[0] == "snnpipe":
                    raise
                raise ExportError(f"export target {target!r} needs the package {err.name!r}: pip install {err.name}") from None
    if target not in EXPORTERS:
        raise ExportError(f"unknown export target {target!r}: choose one of {', '.join(export_targets())}")
    return EXPORTERS[target]


def export_targets() -> list[str]:
    """Every target an exporter module in this package registers (importing them), and those whose
    optional package is missing, by their module's name."""
    here = Path(__file__).resolve().parent
    missing = set()
    for info in pkgutil.iter_modules([str(here)]):
        module = _exporter_module(info.name)
        if module is None or info.name in EXPORTERS:
            continue
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if not err.name or err.name.split(".")[0] == "snnpipe":
                raise
            missing.add(info.name)
    return sorted(set(EXPORTERS) | missing)
