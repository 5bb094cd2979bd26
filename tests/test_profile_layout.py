"""The profiler's layout: reading a report never imports the counting stage, and no module of the
project imports itself back, even from inside a function."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository root is the package `snnpipe`


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("snnpipe", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _import_graph() -> dict[str, set[str]]:
    """snnpipe module -> the snnpipe modules it imports anywhere in its source (functions included)."""
    files = [p for folder in ("pipeline", "models", "hw_targets") for p in (ROOT / folder).rglob("*.py")]
    modules = {_module_name(p): p for p in [*files, ROOT / "errors.py"] if p.exists()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from package import submodule` imports the submodule; `from module import name` the module
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            # a package importing its own submodules to fill a registry (``stages/__init__``) is the
            # registry's plug-in pattern, not a dependency: only edges between separate modules count
            edges.update(t for t in targets if t in modules and t != name and not t.startswith(f"{name}."))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    return next((c for n in sorted(graph) if n not in state and (c := visit(n))), None)


def test_the_walker_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_the_projects_modules():
    graph = _import_graph()
    assert "snnpipe.pipeline.profile.schema" in graph["snnpipe.pipeline.report"]  # the walker sees imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_reading_a_report_does_not_import_the_profiling_stage(tmp_path):
    code = ("import sys, snnpipe.pipeline.report; "
            "print(sorted(m for m in sys.modules if m.startswith('snnpipe.pipeline.profile')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert eval(out) == ["snnpipe.pipeline.profile", "snnpipe.pipeline.profile.schema"]


def test_the_public_names_import_from_the_package():
    from snnpipe.pipeline import profile as package
    from snnpipe.pipeline.profile import stage

    assert package.profile_module is stage.profile_module and package.profile_checkpoint is stage.profile_checkpoint
    for name in package.__all__:
        assert getattr(package, name) is not None
