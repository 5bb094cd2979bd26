"""MkDocs hook: the pages that are read from the code at build time, so that they cannot drift from it.

- ``reference/cli.md``: every command of ``snnpipe`` from click's command tree (usage, help, options
  with their choices and defaults; the choices are the registries' own, as ``--help`` shows them);
- ``reference/registries.md``: what the registries hold (datasets, models, stages and their
  ``--stage-arg`` options, encodings, export targets and their options, energy targets, energy models,
  precisions, chips), each constant with its source;
- ``index.md``: the README (the front page of both);
- ``bench/...``: the committed benchmark reports of ``reports/bench/``, as they are in the repository;
- in a hand-written page, ``<!-- docstring: MODULE -->`` is replaced by that module's docstring and
  ``<!-- dataclasses: MODULE -->`` by a table of its dataclasses' fields (read from the source with
  ``ast``: the formats' pages show the schema the code writes).

Nothing here is committed output: ``mkdocs build`` writes it into the site only.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import typing
from pathlib import Path

import click

_ROOT = Path(__file__).resolve().parents[2]
_BENCH = _ROOT / "reports" / "bench"
_DIRECTIVE = re.compile(r"<!-- (docstring|dataclasses): ([\w.]+) -->")


def on_files(files, config):
    from mkdocs.structure.files import File  # the generators below need no mkdocs (tests/test_docs.py)

    files.append(File.generated(config, "index.md", content=home_page()))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    files.append(File.generated(config, "reference/registries.md", content=registries_reference()))
    for path in sorted(_BENCH.iterdir()):
        if path.is_file():
            files.append(File.generated(config, f"bench/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri.startswith("bench/"):  # written for reports/bench/ in the repository
        markdown = markdown.replace("](../../docs/", "](../")

    def expand(match: re.Match) -> str:
        tree = ast.parse(_source(match.group(2)).read_text())
        return module_docstring(tree) if match.group(1) == "docstring" else dataclass_tables(tree)

    return _DIRECTIVE.sub(expand, markdown)


def home_page() -> str:
    """The README, the repository's front page, as the site's: its links made relative to ``docs/``."""
    readme = (_ROOT / "README.md").read_text()
    return readme.replace("](docs/", "](").replace("](reports/bench/", "](bench/")


# -- the CLI ---------------------------------------------------------------------------------
def cli_reference() -> str:
    from snnpipe.pipeline.cli import cli

    lines = ["# Command-line reference", "",
             "Generated from `snnpipe`'s click command tree when this site was built: the choices are read from",
             "the registries (see [Registries](registries.md)), as `snnpipe COMMAND --help` shows them.", ""]
    lines += _command(["snnpipe"], cli) + ["`-h` and `--help` work everywhere: `snnpipe COMMAND --help`.", ""]
    for path, command in _commands(cli, ["snnpipe"]):
        lines += _command(path, command)
    return "\n".join(lines) + "\n"


def _commands(group: click.Group, path: list[str]):
    ctx = click.Context(group, info_name=path[-1])
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, [*path, name])
        else:
            yield [*path, name], command


def _command(path: list[str], command: click.Command) -> list[str]:
    ctx = click.Context(command, info_name=" ".join(path))
    usage = command.collect_usage_pieces(ctx)
    lines = [f"## `{' '.join(path)}`", "", "```text", " ".join([*path, *usage]), "```", "",
             _markdown_text(command.help or ""), "",
             "| option | value | default | what |", "| --- | --- | --- | --- |"]
    for param in command.get_params(ctx):
        if "--help" in param.opts:
            continue
        names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
        if isinstance(param, click.Argument):
            lines.append(f"| {param.human_readable_name} (argument) | {_cell(param.type.get_metavar(param, ctx) or param.type.name)} | | |")
            continue
        value = "flag" if param.is_flag else _cell(param.type.get_metavar(param, ctx) or param.type.name.upper())
        given = param.default is not None and type(param.default).__name__ != "Sentinel"  # click's UNSET
        default = "required" if param.required else f"`{param.default}`" if given and not param.is_flag else ""
        lines.append(f"| {names} | {value} | {default} | {_cell(param.help or '')} |")
    return [*lines, ""]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _markdown_text(text: str) -> str:
    return "\n\n".join(" ".join(part.split()) for part in text.split("\n\n"))


# -- the registries ----------------------------------------------------------------------------
def registries_reference() -> str:
    from snnpipe.hw_targets.chip import CHIPS
    from snnpipe.hw_targets.energy import TARGETS
    from snnpipe.hw_targets.precision import PRECISIONS
    from snnpipe.pipeline.catalog import catalog
    from snnpipe.pipeline.profile.estimators import ENERGY_MODELS

    book = catalog()
    out = ["# Registries", "",
           "Generated from the registries when this site was built: adding an entry (one file, see",
           "[Layout](../layout.md)) adds it here and to the CLI's choices.", "",
           "## Datasets (`--dataset`)", "", "| name | input (C, H, W) | classes | default model | epochs | batch |",
           "| --- | --- | ---: | --- | ---: | ---: |"]
    out += [f"| `{d.name}` | {'x'.join(map(str, d.input_shape))} | {d.num_classes} | `{d.model}` | {d.epochs} | {d.batch_size} |"
            for d in book.datasets.values()]
    out += ["", "## Models (`--model`, `--model-arg KEY=VALUE`)", "", "| name | default input | description | arguments |",
            "| --- | --- | --- | --- |"]
    for m in sorted(book.models.values(), key=lambda m: m.name):
        args = "<br>".join(f"`{k}`: `{_type(v)}`" for k, v in m.arguments.items())
        out.append(f"| `{m.name}` | {'x'.join(map(str, m.default_input))} | {_cell(m.description)} | {args} |")
    out += ["", "## Training stages (`--stage`, `--stage-arg KEY=VALUE`)", "", "| stage | needs `--teacher` | options (default) |",
            "| --- | --- | --- |"]
    for s in sorted(book.stages.values(), key=lambda s: s.name):
        args = "<br>".join(f"`{f.name}={_default(f)}`: `{_type(f.type)}`" for f in _fields(s.args))
        out.append(f"| `{s.name}` | {'yes' if s.needs_teacher else ''} | {args} |")
    out += ["", "## Input encodings (`--encoding`)", "", ", ".join(f"`{e}`" for e in book.encodings), "",
            "## Export targets (`snnpipe export --target`)", "", "| target | file | options |", "| --- | --- | --- |"]
    for e in sorted(book.exporters.values(), key=lambda e: e.name):
        opts = ("(its optional package is not installed where this site was built)" if e.options is None else
                "<br>".join(f"`--{f.name.replace('_', '-')}`: {_cell(f.metadata.get('help', ''))}"
                            for f in _fields(e.options)))
        out.append(f"| `{e.name}` | `{e.suffix or ''}` | {opts} |")
    out += ["", "## Energy targets (`snnpipe profile --target`)", ""]
    for t in TARGETS.values():
        out += [f"### `{t.name}`", "", t.description, "", "| constant | value (pJ) | source |", "| --- | ---: | --- |"]
        out += [f"| `{k}` | {getattr(t, k)} | {_cell(src)} |" for k, src in t.sources.items()]
        out.append("")
    out += ["## Energy models (`snnpipe profile --energy-model`)", "", "| model | prices | ANN baselines priced by |",
            "| --- | --- | --- |"]
    out += [f"| `{m.name}` | {_cell(m.description)} | `{m.baseline}` |" for m in ENERGY_MODELS.values()]
    out += ["", "Their equations: [Energy models](../energy-models.md).", "",
            "## Precisions (`snnpipe profile --precision`, the `memory` model)", "",
            "| precision | add (pJ) | multiply (pJ) | bits | state bits | source |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    out += [f"| `{p.name}` | {p.add_pj} | {p.mult_pj} | {p.bits} | {p.state_bits or ''} | {_cell(p.source)} |"
            for p in PRECISIONS.values()]
    out += ["", "## Chips (`snnpipe profile --energy-model chip --chip`, `snnpipe fit --chips`)", ""]
    for c in CHIPS.values():
        out += [f"### `{c.name}`", "", c.description, "", "| constant | value | source |", "| --- | ---: | --- |"]
        out += [f"| `{k}` | {_value(c.limits[k] if k in c.limits else getattr(c, k))} | {_cell(src)} |"
                for k, src in c.sources.items()]
        out.append("")
    return "\n".join(out) + "\n"


def _value(value) -> str:
    """A chip file's value in a table cell: a number as ``:g``, a list or a word as written."""
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else _cell(str(value))


def _fields(cls: type) -> list:
    import dataclasses

    return list(dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else []


def _default(f) -> str:
    import dataclasses

    return "" if f.default is dataclasses.MISSING else repr(f.default)


_RANGE = re.compile(r"Annotated\[(.*?), Range\(low=([^,]+), high=([^,]+), inclusive=(True|False)\)\]")


def _type(annotation) -> str:
    """An argument's annotation as a reader wants it: ``Annotated[int, Range(low=1, ...)]`` is ``int >= 1``."""
    text = re.sub(r"\btyping\.", "", annotation if isinstance(annotation, str) else typing._type_repr(annotation))

    def bounds(m: re.Match) -> str:
        low, high, closed = m.group(2), m.group(3), m.group(4) == "True"
        parts = [f"{'>=' if closed else '>'} {low}" if low != "None" else "", f"<= {high}" if high != "None" else ""]
        return f"{m.group(1)} {', '.join(p for p in parts if p)}"

    return _RANGE.sub(bounds, text).replace("|", "\\|")


# -- docstrings and dataclasses of a module, from its source -----------------------------------
def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"docs: no module {module!r} to read")
    return Path(spec.origin)


def module_docstring(tree: ast.Module) -> str:
    return _rest_to_markdown(ast.get_docstring(tree) or "")


def dataclass_tables(tree: ast.Module) -> str:
    """One section per dataclass: its docstring and its fields (name, annotation, default)."""
    out = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or not any(_decorator_name(d) == "dataclass" for d in node.decorator_list):
            continue
        out += [f"### `{node.name}`", "", _rest_to_markdown(ast.get_docstring(node) or ""), "",
                "| field | type | default |", "| --- | --- | --- |"]
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and "ClassVar" not in ast.unparse(item.annotation):
                default = "" if item.value is None else f"`{_cell(ast.unparse(item.value))}`"
                out.append(f"| `{item.target.id}` | `{_cell(ast.unparse(item.annotation))}` | {default} |")
        out.append("")
    return "\n".join(out)


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _rest_to_markdown(text: str) -> str:
    """A docstring's reStructuredText, as far as the project's docstrings use it: ``code`` and a
    literal block after ``::`` (indented) become Markdown code."""
    out, block, section = [], False, False
    for line in text.splitlines():
        if re.fullmatch(r"(Attributes|Args|Returns|Raises|Yields):", line.strip()):
            out += [f"**{line.strip()[:-1]}**", ""]
            section = True
            continue
        if section and not block:
            item = re.match(r"    ([\w, ]+): (.*)", line)
            if item and not line.startswith("     "):
                out.append(f"- `{item.group(1)}`: {_code(item.group(2))}")
                continue
            if line.startswith("    "):
                out.append("  " + _code(line.strip()))
                continue
            section = False
        if block and line.strip() and not line.startswith(" "):
            out.append("```")
            block = False
        if not block:
            line = _code(line)
            if line.rstrip().endswith("::"):
                out += [line.rstrip()[:-1], "", "```text"]
                block = True
                continue
        out.append(line[4:] if block and line.startswith("    ") else line)
    if block:
        out.append("```")
    return "\n".join(out)


def _code(text: str) -> str:
    return re.sub(r"``([^`]+)``", r"`\1`", text)
