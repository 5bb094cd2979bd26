"""The README and the docs: the README's set-up is what CI runs, its tour states every command's time,
every shell block the docs show is run by ``docs/check_commands.py`` (or says why not), and the
reference pages list what the CLI and the registries hold. ``.ci/run`` builds the site
(``mkdocs build --strict``) and runs the commands."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check = _load(ROOT / "docs" / "check_commands.py", "docs_check_commands")
reference = _load(ROOT / "docs" / "hooks" / "reference.py", "docs_reference_hook")


def _readme_block(heading: str) -> list[check.Block]:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {heading}")
    first = text[:start].count("\n") + 1
    end = text.find("\n## ", start + 1)
    last = text[:end].count("\n") + 1 if end != -1 else text.count("\n") + 1
    return [b for b in check.blocks(ROOT / "README.md") if first <= b.line <= last]


def test_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_ci_runs_the_readme_test_command():
    """The second set-up command's last part is the test command; .ci/run runs it as it is, and
    installs the same packages without their requirements."""
    setup = _readme_block("Set-up")[0].commands
    assert len(setup) == 2
    parts = [part.strip() for part in setup[1].split("&&")]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert parts[-1] == "python -m pytest"
    assert parts[-1] in ci
    no_deps = next(p for p in parts if "--no-deps" in p)
    ci_no_deps = next(line for line in ci if "--no-deps" in line and "--target" not in line)
    assert {w for w in shlex.split(no_deps) if "==" in w} == {w for w in shlex.split(ci_no_deps) if "==" in w}


def test_every_tour_command_states_its_time():
    (tour,) = _readme_block("A tour")
    assert len(tour.commands) >= 5 and tour.skip is None and not tour.reduced
    for command in tour.commands:
        assert re.search(r"#\s*\d+(\.\d+)?\s*(s|min)\b", command), command


def test_every_shell_block_is_run_or_says_why():
    for page in check.pages():
        for block in check.blocks(page):
            assert block.commands, f"{page}:{block.line}: no command"
            if block.skip is None:
                assert all(c.split()[0] in ("snnpipe", "python", "torchrun") for c in block.runnable()), block


def test_check_reads_blocks_as_written(tmp_path):
    """Continuations joined, comments and console output left out, ``reduced`` appended to its
    subcommand only (before the trailing comment), ``replace`` applied."""
    page = tmp_path / "page.md"
    page.write_text(
        "text\n"
        '<!-- docs-check: reduced train="--epochs 1" replace="a.pt=>b.pt" -->\n'
        "```bash\n"
        "# a comment\n"
        "snnpipe train --stage ann \\\n"
        "    --out runs/x   # 5 s\n"
        "snnpipe export runs/x/a.pt --target loihi\n"
        "```\n"
        "```console\n"
        "$ snnpipe models\n"
        "mlp  9,610\n"
        "```\n"
        "<!-- docs-check: skip needs a GPU -->\n"
        "```bash\n"
        "snnpipe train --device cuda\n"
        "```\n")
    first, second, third = check.blocks(page)
    assert first.runnable() == ["snnpipe train --stage ann --out runs/x --epochs 1",
                                "snnpipe export runs/x/b.pt --target loihi"]
    assert second.runnable() == ["snnpipe models"]
    assert third.skip == "needs a GPU"


def test_check_refuses_a_skip_without_reason(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- docs-check: skip -->\n```bash\nsnnpipe train\n```\n")
    with pytest.raises(ValueError, match="needs its reason"):
        check.blocks(page)


def test_check_fails_a_command_that_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\npython -c 'import sys; sys.exit(3)'\npython -c 'print(1)'\n```\n")
    failures = check.run_page(page, out=open(tmp_path / "log", "w"))
    assert len(failures) == 1 and "exited 3" in failures[0]


def test_cli_reference_lists_every_command_and_option():
    import click

    from snnpipe.pipeline.cli import cli

    text = reference.cli_reference()
    for path, command in reference._commands(cli, ["snnpipe"]):
        assert f"## `{' '.join(path)}`" in text
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}`" in text, opt
            assert isinstance(param, click.Argument) or param.help, f"{path}: {param.opts} has no help"
    assert "`snnpipe import nir`" in text and "`--max-drop`" in text  # a subgroup; an exporter's option


def test_registry_reference_lists_every_entry():
    from snnpipe.hw_targets.chip import CHIPS
    from snnpipe.hw_targets.energy import TARGETS
    from snnpipe.pipeline.catalog import catalog
    from snnpipe.pipeline.profile.estimators import ENERGY_MODELS

    text = reference.registries_reference()
    book = catalog()
    for name in [*book.datasets, *book.models, *book.stages, *book.encodings, *book.exporters, *TARGETS,
                 *ENERGY_MODELS, *CHIPS]:
        assert f"`{name}`" in text, name
    assert "`activity_weight=0.5`" in text  # a stage's option with its default


def test_formats_read_from_the_code():
    """A format page's directive is replaced by the module's docstring or its dataclasses' fields."""
    page = (ROOT / "docs" / "formats" / "profile-json.md").read_text()
    text = reference.on_page_markdown(page, _Page("formats/profile-json.md"), None, None)
    assert "<!-- " not in text
    assert "snnpipe.profile/2" in text and "### `SynapseProfile`" in text and "| `acs` |" in text


class _Page:
    def __init__(self, src_uri: str) -> None:
        self.file = type("F", (), {"src_uri": src_uri})()
