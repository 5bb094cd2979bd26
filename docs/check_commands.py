"""Run every shell command the README and the docs show, so that none fails as written.

Every fenced ``bash`` or ``console`` block of ``README.md`` and ``docs/**/*.md`` is run, command by
command (a ``\\`` continues a line; in a ``console`` block only the lines after ``$ `` are commands),
and every ``python`` block as one program,
each page in a fresh folder holding the repository's ``recipes/`` and ``reports/baseline.json``, the
pages' blocks in order; a command that exits non-zero fails the check. An HTML comment on the line
before a block says how to run it, and nothing else may change it:

- ``<!-- docs-check: skip REASON -->``: not run, for the reason given (a GPU, two machines, a set-up
  step that ``.ci/run`` runs itself); a skip without a reason is an error;
- ``<!-- docs-check: reduced train="--epochs 1" export="--samples 64" replace="A=>B" -->``: run with
  the options given appended to each ``snnpipe train`` (``export``, ``profile``, ``run``) command
  (click keeps an option's last value), and ``A`` replaced by ``B`` (a file the shorter run names
  otherwise); the page says what the full command costs.

A page that needs a finished run says so once, anywhere in it: ``<!-- docs-check: setup COMMAND -->``
runs COMMAND in its folder before its first block.

Usage: ``python docs/check_commands.py [PAGE.md ...] [--list]`` (``--list`` prints the commands
without running them). Exit 1 if any command failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!-- docs-check: (\w[\w-]*)\s*(.*?)\s*-->$")
_SUBCOMMANDS = ("train", "export", "profile", "run")


@dataclass
class Block:
    """One fenced shell block: its page and line, its commands, and how it is run."""

    page: Path
    line: int
    commands: list[str]
    skip: str | None = None
    reduced: dict[str, str] = field(default_factory=dict)

    def runnable(self) -> list[str]:
        """The commands as the check runs them (`reduced` applied)."""
        out = []
        for command in self.commands:
            if "replace" in self.reduced:
                old, new = self.reduced["replace"].split("=>")
                command = command.replace(old, new)
            words = command.split("#")[0].split()
            if len(words) > 1 and words[0] == "snnpipe" and words[1] in self.reduced:
                command = f"{command.split(' #')[0].rstrip()} {self.reduced[words[1]]}"
            out.append(command)
        return out


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "hooks" not in p.parts)]


def setups(page: Path) -> list[str]:
    return [m.group(2) for line in page.read_text().splitlines()
            if (m := _DIRECTIVE.match(line.strip())) and m.group(1) == "setup"]


def blocks(page: Path) -> list[Block]:
    """The page's shell blocks, with the directive on the line before each (module docstring)."""
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if fence.group(1) in ("bash", "console", "sh", "shell", "python"):
            if fence.group(1) == "python":  # the whole block is one program
                program = "\n".join(lines[i + 1:end])
                block = Block(page, i + 1, [f"python - <<'SNNPIPE_DOCS_PYTHON'\n{program}\nSNNPIPE_DOCS_PYTHON"])
            else:
                block = Block(page, i + 1, _commands(lines[i + 1:end], console=fence.group(1) == "console"))
            directive = _DIRECTIVE.match(lines[i - 1].strip()) if i else None
            if directive and directive.group(1) == "skip":
                if not directive.group(2):
                    raise ValueError(f"{page.name}:{i}: a docs-check skip needs its reason")
                block.skip = directive.group(2)
            elif directive and directive.group(1) == "reduced":
                block.reduced = dict(word.split("=", 1) for word in shlex.split(directive.group(2)))
            elif directive and directive.group(1) != "setup":
                raise ValueError(f"{page.name}:{i}: unknown docs-check directive {directive.group(1)!r}")
            found.append(block)
        i = end + 1
    return found


def _commands(lines: list[str], console: bool) -> list[str]:
    commands, current = [], ""
    for line in lines:
        if console:
            if not current and not line.startswith("$ "):
                continue  # output shown after a command
            line = line[2:] if not current else line
        text = line.strip()
        if not current and (not text or text.startswith("#")):
            continue
        current = f"{current} {text[:-1].strip()}" if text.endswith("\\") else f"{current} {text}"
        if not text.endswith("\\"):
            commands.append(current.strip())
            current = ""
    return commands


def run_page(page: Path, out=sys.stdout) -> list[str]:
    """Run the page's blocks in a fresh folder; the failures, one line each."""
    page_blocks = [b for b in blocks(page) if b.skip is None]
    if not page_blocks:
        return []
    failures = []
    with tempfile.TemporaryDirectory(prefix="snnpipe-docs-") as folder:
        shutil.copytree(ROOT / "recipes", Path(folder) / "recipes")
        (Path(folder) / "reports").mkdir()
        shutil.copy(ROOT / "reports" / "baseline.json", Path(folder) / "reports" / "baseline.json")
        env = {k: v for k, v in os.environ.items() if k != "SNNPIPE_PROGRESS"}  # no progress bars in the log
        todo = [(page.name + " (setup)", c) for c in setups(page)]
        todo += [(f"{_name(page)}:{b.line}", c) for b in page_blocks for c in b.runnable()]
        for where, command in todo:
            start = time.monotonic()
            done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True)
            seconds = time.monotonic() - start
            print(f"{'ok  ' if done.returncode == 0 else 'FAIL'} {seconds:6.1f} s  {where}  {command}", file=out, flush=True)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
                failures.append(f"{where}: `{command}` exited {done.returncode}: {tail[0]}")
    return failures


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path)
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    chosen = [p.resolve() for p in args.pages] or pages()
    if args.list:
        for page in chosen:
            for block in blocks(page):
                for command in block.runnable():
                    print(f"{_name(page)}:{block.line}  {'skip (' + block.skip + ')' if block.skip else 'run'}  {command}")
        return 0
    failures = [failure for page in chosen for failure in run_page(page)]
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
