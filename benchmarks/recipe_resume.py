"""``snnpipe run`` killed with SIGKILL during each step of a recipe, resumed, compared with a whole run.

    python benchmarks/recipe_resume.py [RECIPE.yaml] [--work DIR] [--out reports/bench/recipe_resume.json]

Runs the recipe (default: the embedded default recipe) once uninterrupted, then once per step: killed
(SIGKILL) while that step runs (a training step once its first checkpoint is written, an export or a
profile once its folder, or the temporary folder its report is written into, appears), then ``snnpipe run RECIPE --resume FOLDER``. Each resumed run's
outputs are compared with the whole run's: every checkpoint's weights bit for bit, every export and
profile file byte for byte, the ``*.report.json`` files equal but for timings and the folder's name.
Prints a table and writes JSON and Markdown (exit 1 when any output differs).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "recipe_resume.json"


def differences(whole: Path, resumed: Path) -> list[str]:
    """What differs between two run folders of one recipe (nothing: an empty list)."""
    found = []
    for path in sorted(whole.rglob("*")):
        name = str(path.relative_to(whole))
        other = resumed / name
        if not path.is_file() or name in ("run.json", "summary.md") or path.name.startswith(".") \
                or path.name.startswith("step-") or path.name == "metrics.jsonl":
            continue  # run records with timings; step files are named by when they were written
        if not other.is_file():
            found.append(f"{name}: missing")
        elif path.suffix == ".pt":
            a = torch.load(path, weights_only=True)["state_dict"]
            b = torch.load(other, weights_only=True)["state_dict"]
            if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
                found.append(f"{name}: weights differ")
        elif name.endswith(".report.json"):
            def clean(p: Path) -> dict:
                report = json.loads(p.read_text().replace(p.parents[1].name, "RUN"))
                return {k: v for k, v in report.items() if "seconds" not in k}
            if clean(path) != clean(other):
                found.append(f"{name}: report differs")
        elif path.read_bytes() != other.read_bytes():
            found.append(f"{name}: bytes differ")
    return found


def _wait(condition, proc: subprocess.Popen, limit: float = 3600) -> None:
    deadline = time.monotonic() + limit
    while not condition() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default=None)
    parser.add_argument("--work", default="runs/recipe-resume", help="folder for the runs")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    from snnpipe.files import TEMP_MARK
    from snnpipe.pipeline.run import load_recipe

    recipe = load_recipe(args.recipe)
    source = [args.recipe] if args.recipe else []
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    whole = subprocess.run(["snnpipe", "run", *source, "-o", str(work / "whole"), "--quiet"], capture_output=True, text=True)
    if whole.returncode:
        print(whole.stderr, file=sys.stderr)
        return 1
    rows = []
    for step in recipe.steps:
        folder = work / f"killed-{step.name}"
        proc = subprocess.Popen(["snnpipe", "run", *source, "-o", str(folder), "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = folder / step.name
        if step.kind == "train":
            _wait(lambda: (target / "checkpoint.pt").exists(), proc)
        else:  # its folder, or the one a report is written into before it is swapped in
            _wait(lambda: target.exists() or any(folder.glob(f".{step.name}{TEMP_MARK}*")), proc)
        finished_before = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = folder / "run.json"
        recorded = list(json.loads(state.read_text())["steps"]) if state.exists() else []
        resumed = subprocess.run(["snnpipe", "run", *source, "--resume", str(folder), "--quiet"], capture_output=True, text=True)
        diff = differences(work / "whole", folder) if resumed.returncode == 0 else [resumed.stderr.strip()]
        rows.append({"killed_in": step.name, "kind": step.kind, "steps_done_at_kill": recorded,
                     "killed_while_running": not finished_before and step.name not in recorded,
                     "resume_exit": resumed.returncode, "differences": diff, "equal": not diff})
    result = {"recipe": recipe.name, "seconds": round(time.perf_counter() - started, 1), "rows": rows,
              "command": " ".join(["python", "benchmarks/recipe_resume.py", *source])}
    lines = ["| killed in | steps done at the kill | resumed | outputs equal to the whole run |", "| --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['killed_in']} ({row['kind']}) | {', '.join(row['steps_done_at_kill']) or '-'} | "
                     f"exit {row['resume_exit']} | {'yes' if row['equal'] else '; '.join(row['differences'])} |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(f"# Recipe resume: {recipe.name}\n\n`{result['command']}`, {result['seconds']} s\n\n{table}\n")
    return 0 if all(row["equal"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
