"""What the registries hold, read without importing torch: the CLI's choices, ``snnpipe models`` and
the checks of a user's options answer from it in milliseconds, where importing torch takes seconds.

The registries stay the one source: a dataset, model, stage or exporter carries its metadata where
it is registered, and adding one is one file. Their modules import torch, so this module reads them
(`build`) into a JSON document, ``catalog.json`` beside it, which lists the package's source files
that reading the registries imports (``sources``: every module whose code or constants the answers
come from, ``MAX_INPUT_BITS`` in ``hw_targets/loihi/graph.py`` as much as a registry's own file) and
is stamped with their SHA-256. `catalog()` then answers:

- from the registries themselves once torch is imported (reading them costs nothing more then, and
  it sees what a program registered at run time);
- else from ``catalog.json`` when the sources it lists still hash as stamped and it reads back whole;
- else (a source was edited since the file was written, or the file is damaged) from the
  registries, importing torch.

A stale or damaged file can therefore make the CLI slower, never wrong; ``python -m
snnpipe.pipeline.catalog`` rewrites it and ``tests/test_catalog.py`` fails until it is current. Rejected designs: reading the
decorators' arguments from the source (``ast``) cannot give parameter counts nor the annotations of
a stage's ``Args``, and a hand-kept table beside each registry would drift from it.

Annotations travel as the Python expression that spells them (``typing.Annotated[int, Range(low=1,
...)]``), defaults as their ``repr``; `build` refuses anything that does not read back equal. They are
read back by walking the expression's syntax tree over a fixed table of names (`_read`), never by
``eval``: the file runs no code.
"""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import difflib
import hashlib
import json
import subprocess
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnpipe import arguments
from snnpipe.errors import SnnpipeError

_ROOT = Path(__file__).resolve().parent.parent
CATALOG_FILE = Path(__file__).resolve().parent / "catalog.json"


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's registry entry without its loader (`snnpipe.pipeline.data.DatasetEntry`)."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    model: str
    epochs: int
    batch_size: int


@dataclass(frozen=True)
class ModelInfo:
    """A zoo model: its default input, description, parameter count at that input with 10
    classes (None until counted), its keyword arguments' annotations (``delay_shift`` too), and
    whether it holds an imported network (`snnpipe.models.zoo.ModelEntry`)."""

    name: str
    default_input: tuple[int, int, int]
    description: str
    parameters: int | None
    arguments: dict[str, Any]
    imported: bool = False


@dataclass(frozen=True)
class StageInfo:
    """A training stage: whether it needs ``--teacher``, and its ``Args`` dataclass (from the file,
    its fields' names, annotations and defaults)."""

    name: str
    needs_teacher: bool
    args: type


@dataclass(frozen=True)
class ExporterInfo:
    """An export target: the suffix of its file and its options dataclass (None where its
    optional package is missing)."""

    name: str
    suffix: str | None
    options: type | None


class Catalog:
    """The names and metadata of every registry (module docstring)."""

    def __init__(self, datasets: dict[str, DatasetInfo], models: dict[str, ModelInfo], stages: dict[str, StageInfo],
                 encodings: list[str], exporters: dict[str, ExporterInfo], source: str) -> None:
        self.datasets, self.models, self.stages = datasets, models, stages
        self.encodings, self.exporters, self.source = encodings, exporters, source

    def dataset(self, name: str) -> DatasetInfo:
        if name not in self.datasets:
            raise SnnpipeError(f"unknown dataset {name!r}: choose one of {', '.join(self.datasets)}")
        return self.datasets[name]

    def model(self, name: str) -> ModelInfo:
        if name not in self.models:
            raise SnnpipeError(f"unknown model {name!r}: choose one of {', '.join(sorted(self.models))}")
        return self.models[name]

    def stage(self, name: str) -> StageInfo:
        if name not in self.stages:
            close = difflib.get_close_matches(name, self.stages, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SnnpipeError(f"unknown stage {name!r}{hint}: choose one of {', '.join(sorted(self.stages))}")
        return self.stages[name]

    def exporter(self, name: str) -> ExporterInfo:
        if name not in self.exporters:
            raise SnnpipeError(f"unknown export target {name!r}: choose one of {', '.join(sorted(self.exporters))}")
        return self.exporters[name]


def catalog() -> Catalog:
    """The registries' catalog, from the cheapest source that is right (module docstring)."""
    if "torch" not in sys.modules:
        stored = _read_stored()
        if stored is not None:
            return stored
    return _live()


# -- reading the registries ------------------------------------------------------------------
def _live(count_parameters: bool = False) -> Catalog:
    from snnpipe.hw_targets import EXPORTERS, export_targets
    from snnpipe.models import MODELS
    from snnpipe.models.zoo import MODEL_KEYWORDS, model_arguments
    from snnpipe.pipeline.data import DATASETS
    from snnpipe.pipeline.encoding import ENCODINGS
    from snnpipe.pipeline.stages import STAGES

    datasets = {name: DatasetInfo(name, tuple(e.input_shape), e.num_classes, e.model, e.epochs, e.batch_size)
                for name, e in DATASETS.items()}
    models = {}
    for name, entry in MODELS.items():
        args = {**model_arguments(name), **MODEL_KEYWORDS}
        models[name] = ModelInfo(name, tuple(entry.default_input), entry.description,
                                 _count_parameters(name, entry.default_input) if count_parameters else None, args,
                                 entry.imported)
    stages = {name: StageInfo(name, cls.needs_teacher, cls.Args) for name, cls in STAGES.items()}
    names = export_targets()
    exporters = {name: ExporterInfo(name, EXPORTERS[name].suffix, EXPORTERS[name].options) if name in EXPORTERS
                 else ExporterInfo(name, None, None) for name in names}
    return Catalog(datasets, models, stages, list(ENCODINGS), exporters, "registries")


def _count_parameters(name: str, shape: tuple[int, ...]) -> int:
    from snnpipe.models import count_parameters, create_model

    return count_parameters(create_model(name, input_shape=shape, num_classes=10))


def parameters(info: ModelInfo) -> int:
    """The model's parameter count at its default input with 10 classes."""
    return info.parameters if info.parameters is not None else _count_parameters(info.name, info.default_input)


# -- the stored file ---------------------------------------------------------------------------
#: Lists the package's files that `_live` imports, run in a fresh interpreter (what this one imported
#: before does not count).
_IMPORTED = """
import json, sys
from pathlib import Path
from snnpipe.pipeline.catalog import _ROOT, _live
_live(count_parameters=True)
print(json.dumps(sorted(str(Path(m.__file__).resolve().relative_to(_ROOT)) for name, m in list(sys.modules.items())
                        if name.split(".")[0] == "snnpipe" and getattr(m, "__file__", None))))
"""


def sources() -> list[str]:
    """The package's source files (relative to its root) that reading the registries imports."""
    done = subprocess.run([sys.executable, "-c", _IMPORTED], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def fingerprint(files: list[str]) -> str:
    """SHA-256 over the paths and contents of ``files`` (relative to the package root).

    Raises:
        ValueError: a path outside the package or no file there (a catalog naming it is stale).
    """
    digest = hashlib.sha256()
    for name in sorted(files):
        path = (_ROOT / _of(str, name)).resolve()
        if not path.is_relative_to(_ROOT) or not path.is_file():
            raise ValueError(f"{name!r} is no source file of the package")
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build() -> dict[str, Any]:
    """The catalog as the JSON document `catalog()` reads, with parameter counts; refuses an
    annotation or default that would not read back equal."""
    live = _live(count_parameters=True)
    files = sources()
    return {
        "sources": files,
        "fingerprint": fingerprint(files),
        "datasets": {n: {k: v for k, v in dataclasses.asdict(d).items() if k != "name"} for n, d in live.datasets.items()},
        "models": {n: {"default_input": list(m.default_input), "description": m.description, "parameters": m.parameters,
                       "imported": m.imported,
                       "arguments": {a: _spell(t, f"model {n!r} argument {a!r}") for a, t in m.arguments.items()}}
                   for n, m in live.models.items()},
        "stages": {n: {"needs_teacher": s.needs_teacher, "args": _fields(s.args, f"stage {n!r}")}
                   for n, s in live.stages.items()},
        "encodings": live.encodings,
        "exporters": {n: None if e.options is None else {"suffix": e.suffix, "options": _fields(e.options, f"--target {n}")}
                      for n, e in live.exporters.items()},
    }


#: What reading a damaged or hand-made catalog.json can raise: the registries answer instead.
_DAMAGE = (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, SyntaxError, RecursionError)


def _read_stored() -> Catalog | None:
    """The catalog from ``catalog.json``; None where it is stale or does not read back whole."""
    try:
        data = json.loads(CATALOG_FILE.read_text())
        if data["fingerprint"] != fingerprint(data["sources"]):
            return None
        datasets = {n: DatasetInfo(n, _shape(d["input_shape"]), _of(int, d["num_classes"]), _of(str, d["model"]),
                                   _of(int, d["epochs"]), _of(int, d["batch_size"])) for n, d in data["datasets"].items()}
        models = {n: ModelInfo(n, _shape(m["default_input"]), _of(str, m["description"]),
                               None if m["parameters"] is None else _of(int, m["parameters"]),
                               {_of(str, a): _read(t) for a, t in m["arguments"].items()}, _of(bool, m["imported"]))
                  for n, m in data["models"].items()}
        stages = {n: StageInfo(n, _of(bool, s["needs_teacher"]), _dataclass(f"{n}_args", s["args"]))
                  for n, s in data["stages"].items()}
        exporters = {n: ExporterInfo(n, None, None) if e is None else
                     ExporterInfo(n, _of(str, e["suffix"]), _dataclass(f"{n}_options", e["options"]))
                     for n, e in data["exporters"].items()}
        return Catalog(datasets, models, stages, [_of(str, e) for e in data["encodings"]], exporters, str(CATALOG_FILE))
    except _DAMAGE:
        return None


def _of(kind: type, value: Any) -> Any:
    """``value``, which the catalog records as a ``kind`` (a bool is no int here)."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(_of(int, n) for n in value)


def _fields(cls: type, where: str) -> list[dict[str, Any]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        if default is dataclasses.MISSING:
            raise ValueError(f"{where}: option {f.name!r} has no default; the catalog records defaults")
        if ast.literal_eval(repr(default)) != default:
            raise ValueError(f"{where}: the default of {f.name!r} ({default!r}) does not read back from its repr")
        out.append({"name": f.name, "annotation": _spell(hints[f.name], f"{where} option {f.name!r}"),
                    "default": repr(default), "help": f.metadata.get("help")})
    return out


def _dataclass(name: str, fields: list[dict[str, Any]]) -> type:
    """A dataclass with the recorded fields (annotations and defaults; not the original's
    ``__post_init__``, whose checks run when the real one is built)."""
    return dataclasses.make_dataclass(name, [
        (_of(str, f["name"]), _read(f["annotation"]),
         dataclasses.field(default=ast.literal_eval(_of(str, f["default"])), metadata={"help": f["help"]} if f["help"] else {}))
        for f in fields])


#: Every name an `_expression` spelling uses, and what it stands for.
_NAMES = {"typing.Annotated": typing.Annotated, "typing.Literal": typing.Literal, "typing.Union": typing.Union,
          "typing.Sequence": typing.Sequence, "typing.Any": typing.Any, "collections.abc.Sequence": collections.abc.Sequence,
          "Range": arguments.Range, **{t.__name__: t for t in (bool, bytes, dict, float, int, list, str, tuple)}}


def _read(spelled: str) -> Any:
    """The annotation ``spelled`` (`_expression`'s spelling) names, built from its syntax tree with
    `_NAMES` alone: no code in it runs.

    Raises:
        ValueError: anything but names of `_NAMES`, subscripts of them, ``Range(key=literal, ...)``
            and literals.
    """
    return _build(ast.parse(_of(str, spelled), mode="eval").body)


def _build(node: ast.expr) -> Any:
    if isinstance(node, (ast.Name, ast.Attribute)) and ast.unparse(node) in _NAMES:
        return _NAMES[ast.unparse(node)]
    if isinstance(node, ast.Subscript):
        args = [_build(arg) for arg in (node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice])]
        return _build(node.value)[tuple(args) if len(args) > 1 else args[0]]
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "Range" and not node.args:
        return arguments.Range(**{_of(str, k.arg): ast.literal_eval(k.value) for k in node.keywords})
    if isinstance(node, (ast.Constant, ast.UnaryOp)):
        return ast.literal_eval(node)
    raise ValueError(f"{ast.unparse(node)!r} is not part of an annotation")


def _spell(annotation: Any, where: str) -> str:
    """The expression that `_read` turns back into ``annotation``."""
    text = _expression(annotation)
    if _read(text) != annotation:
        raise ValueError(f"{where}: the annotation {annotation!r} does not read back from {text!r}")
    return text


def _expression(a: Any) -> str:
    if a is type(None):
        return "None"
    if a is Any:
        return "typing.Any"
    if a is Ellipsis:
        return "..."
    if isinstance(a, type) and a.__module__ == "builtins" and not typing.get_args(a):
        return a.__qualname__
    origin, args = typing.get_origin(a), typing.get_args(a)
    if origin is typing.Annotated:
        return f"typing.Annotated[{_expression(args[0])}, {', '.join(map(repr, a.__metadata__))}]"
    if origin is typing.Literal:
        return f"typing.Literal[{', '.join(map(repr, args))}]"
    if origin in (typing.Union, types.UnionType):
        return f"typing.Union[{', '.join(map(_expression, args))}]"
    if origin is tuple:
        return f"tuple[{', '.join(map(_expression, args))}]"
    if a is typing.Sequence or a is collections.abc.Sequence:
        return "typing.Sequence" if a is typing.Sequence else "collections.abc.Sequence"
    if origin is collections.abc.Sequence:  # typing.Sequence[X] and collections.abc.Sequence[X] differ
        where = "typing" if isinstance(a, typing._GenericAlias) else "collections.abc"
        return f"{where}.Sequence[{', '.join(map(_expression, args))}]"
    raise ValueError(f"cannot spell the annotation {a!r}")


def write() -> Path:
    """Write ``catalog.json`` from the registries (atomically)."""
    from snnpipe.files import atomic_path

    with atomic_path(CATALOG_FILE) as tmp:
        tmp.write_text(json.dumps(build(), indent=1) + "\n")
    return CATALOG_FILE


if __name__ == "__main__":
    print(f"wrote {write()}")
