"""The papers' claims, tested on a finished protocol run (``recipes/protocol-*.yaml``).

    snnpipe run recipes/protocol-cpu.yaml -o runs/protocol-cpu
    python benchmarks/protocol.py runs/protocol-cpu [--causes runs/protocol-cpu-causes ...]
                                  [--notes benchmarks/protocol_notes.md]

Reads the run's ``sweep.json`` (every cell: final test accuracy, firing rate, compute energy) and
writes ``reports/bench/protocol.md``, ``protocol.json`` and ``protocol_pareto.png`` (the run's Pareto
plot). Each claim compares two settings by the difference of their means over seeds, with the
standard error of that difference, SE = sqrt(s_a^2 / n_a + s_b^2 / n_b) (s the sample std):

- "A > B" is *reproduced* when mean(A) - mean(B) > SE, *not reproduced* when it is < -SE, and *within
  noise* otherwise;
- "A >= B" is reproduced unless mean(A) - mean(B) < -SE;
- a spike reduction "at least 14%" compares the means of the firing rates;
- "within one seed-std" means |mean(A) - mean(B)| <= the larger of the two settings' stds.

``--causes`` adds the tables of runs of ``recipes/protocol-cpu-causes*.yaml`` (the same protocol with
one loss term off at a time, or another learning rate). The notes file (the causes found for the claims that did not hold,
written after reading both runs) is appended as it is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "bench"


def _setting(rows: list[dict], step: str) -> dict:
    for row in rows:
        if row["step"] == step:
            return row
    raise SystemExit(f"the run has no swept step {step!r}; run the whole protocol recipe first")


def _diff(a: dict, b: dict, field: str) -> tuple[float, float]:
    """mean(a) - mean(b) and its standard error."""
    var = sum((r[f"{field}_std"] or 0.0) ** 2 / r["n"] for r in (a, b))
    return a[field] - b[field], math.sqrt(var)


def _greater(a: dict, b: dict, field: str, strict: bool) -> str:
    d, se = _diff(a, b, field)
    if d < -se:
        return "not reproduced"
    if strict and d <= se:
        return "within noise"
    return "reproduced"


def _pm(row: dict, field: str, scale: float = 1.0, digits: int = 2) -> str:
    std = row[f"{field}_std"]
    return f"{row[field] * scale:.{digits}f}" + ("" if std is None else f" +/- {std * scale:.{digits}f}")


def claims(rows: list[dict]) -> list[dict]:
    """The four claims of issue #17, each with its numbers and verdict."""
    get = {name: _setting(rows, name) for name in
           ("bptt", "ratebp", "esd", "esd-bptt", "ann-guided", "kd", "kd-activity", "joint")}
    out = []

    def acc_rate(name: str) -> str:
        r = get[name]
        return f"{name}: {_pm(r, 'test_acc', 100)}% at rate {_pm(r, 'firing_rate', digits=4)}"

    for esd in ("esd", "esd-bptt"):
        acc = _greater(get[esd], get["bptt"], "test_acc", strict=False)
        lower = _greater(get["bptt"], get[esd], "firing_rate", strict=True)
        verdict = "reproduced" if acc == lower == "reproduced" else (
            "not reproduced" if "not reproduced" in (acc, lower) else "within noise")
        out.append({"claim": f"ESD ({esd}) >= BPTT accuracy at a lower firing rate", "verdict": verdict,
                    "accuracy": acc, "lower_rate": lower,
                    "numbers": "; ".join(acc_rate(n) for n in (esd, "bptt", "ratebp"))})
    out.append({"claim": "EAGD (ann-guided) > RateBP accuracy",
                "verdict": _greater(get["ann-guided"], get["ratebp"], "test_acc", strict=True),
                "numbers": "; ".join(acc_rate(n) for n in ("ann-guided", "ratebp"))})
    kd, act = get["kd"], get["kd-activity"]
    fewer = 1 - act["firing_rate"] / kd["firing_rate"]
    spread = max(kd["test_acc_std"] or 0.0, act["test_acc_std"] or 0.0)
    close = abs(act["test_acc"] - kd["test_acc"]) <= spread
    out.append({"claim": "kd-activity: >= 14% fewer spikes than plain KD at an accuracy within one seed-std",
                "verdict": "reproduced" if fewer >= 0.14 and close else "not reproduced",
                "spike_reduction": fewer, "accuracy_within_std": close,
                "numbers": "; ".join(acc_rate(n) for n in ("kd-activity", "kd")) + f"; spikes {-fewer:+.1%}"})
    out.append({"claim": "joint > BPTT accuracy", "verdict": _greater(get["joint"], get["bptt"], "test_acc", strict=True),
                "numbers": "; ".join(acc_rate(n) for n in ("joint", "bptt"))})
    return out


def _plateau(folder: Path, step: str) -> list[list[float]]:
    """Per cell of ``step``: the test accuracy of its last three epochs (from metrics.jsonl)."""
    curves = []
    for cell in sorted((folder / step).iterdir()):
        lines = (cell / "metrics.jsonl").read_text().splitlines()
        curves.append([round(json.loads(line)["test_acc"] * 100, 2) for line in lines[-3:]])
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the folder of a finished protocol run")
    parser.add_argument("--causes", type=Path, nargs="*", default=[], help="folders of finished protocol-cpu-causes* runs")
    parser.add_argument("--notes", type=Path, default=ROOT / "benchmarks" / "protocol_notes.md")
    parser.add_argument("--name", default="protocol")
    args = parser.parse_args()
    sweep = json.loads((args.run / "sweep.json").read_text())
    rows = sweep["settings"]
    state = json.loads((args.run / "run.json").read_text())
    recipe = state["recipe"]
    found = claims(rows)
    hours = sum(c["seconds"] for c in sweep["cells"]) / 3600
    from snnpipe.pipeline.sweep import table

    lines = [
        f"# The training stages under one protocol: {recipe['name']}", "",
        f"Command: `snnpipe run recipes/{recipe['name']}.yaml -o {args.run}` then "
        f"`python benchmarks/protocol.py {args.run}`.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"one thread per process (OMP_NUM_THREADS=1), shared with other work; {hours:.2f} h of cell training.",
        f"Recipe defaults: `{json.dumps(recipe['defaults'])}`.", "",
        "## Every setting (mean +/- sample std over seeds)", "", table(rows), "",
        "## The claims", "",
        "| claim | verdict | numbers |", "| --- | --- | --- |",
        *[f"| {c['claim']} | **{c['verdict']}** | {c['numbers']} |" for c in found], "",
        "Verdicts: a difference of means beyond one standard error of the difference (see "
        "`benchmarks/protocol.py`).", "",
        "## Did BPTT plateau?", "",
        "Test accuracy (%) of the last three epochs of each BPTT seed: "
        + "; ".join(str(c) for c in _plateau(args.run, "bptt")), "",
        "![Pareto](protocol_pareto.png)", "",
    ]
    causes = {}
    for folder in args.causes:
        name = json.loads((folder / "run.json").read_text())["recipe"]["name"]
        causes[name] = json.loads((folder / "sweep.json").read_text())
        lines += [f"## Causes: {name}", "", f"`snnpipe run recipes/{name}.yaml -o {folder}` (the protocol's "
                  "defaults; a teacher where it needs one, its own, trained the same way).", "",
                  table(causes[name]["settings"]), ""]
    if args.notes.is_file():
        lines += [args.notes.read_text().strip(), ""]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.name}.md").write_text("\n".join(lines))
    (OUT / f"{args.name}.json").write_text(json.dumps(
        {"recipe": recipe, "settings": rows, "claims": found, "cells": sweep["cells"],
         "causes": causes}, indent=1) + "\n")
    shutil.copyfile(args.run / "pareto.png", OUT / f"{args.name}_pareto.png")
    print("\n".join(lines[: lines.index("## Did BPTT plateau?")]))
    print(f"wrote {OUT / (args.name + '.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
