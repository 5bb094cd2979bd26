"""Wall time of a 4-cell sweep run sequentially, on 2 local workers and on a local Ray of 2 CPUs.

    python benchmarks/sweep_executors.py [--epochs 4] [--repeats 1] [--out reports/bench/sweep_executors.json]

One recipe (digits ``mlp`` [128, 64], T=4, ``bptt``, 4 seeds) is run by ``snnpipe run`` in a fresh
process per command, each into its own folder: ``--threads 1`` (one cell after another, one thread),
``--workers 2`` and ``--executor ray --workers 2`` (one thread per cell). The wall time is the whole
command's, from start to exit (Python, torch and Ray starting included), so what it shows is what a
user waits for; the cells' own seconds (``sweep.json``) are kept beside it. Every parallel run's
``sweep.json`` is compared with the sequential one's but for the seconds and the folder (exit 1 when
any number differs), and so does a parallel run whose cells' own seconds sum to no more than its wall
time (no two cells ran at once). The commands alternate ``--repeats`` times; the load average is recorded
before each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "sweep_executors.json"
RUNS = {"sequential": ["--threads", "1"], "2 local workers": ["--workers", "2"],
        "local ray, 2 CPUs": ["--executor", "ray", "--workers", "2"]}


def recipe(epochs: int) -> dict:
    return {"name": "sweep-bench", "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [128, 64]},
                                                "timesteps": 4, "epochs": epochs, "batch_size": 32},
            "steps": [{"train": {"stage": "bptt", "sweep": {"seed": [0, 1, 2, 3]}}}]}


def numbers(folder: Path) -> list[dict]:
    """sweep.json's cells but for the seconds and the folder."""
    cells = json.loads((folder / "sweep.json").read_text())["cells"]
    return [{k: v for k, v in c.items() if k not in ("seconds", "checkpoint")} for c in cells]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe(args.epochs)))
    times: dict[str, list[float]] = {name: [] for name in RUNS}
    cell_seconds: dict[str, list[list[float]]] = {name: [] for name in RUNS}
    loads, differ, serial = [], [], []
    for repeat in range(args.repeats):
        for name, options in RUNS.items():
            folder = work / f"{name.replace(' ', '-').replace(',', '')}-{repeat}"
            loads.append(os.getloadavg()[0])
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "snnpipe", "run", str(path), "-o", str(folder), "--quiet",
                                   *options], capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            times[name].append(seconds)
            cell_seconds[name].append([c["seconds"] for c in json.loads((folder / "sweep.json").read_text())["cells"]])
            reference = work / f"sequential-{repeat}"
            if numbers(folder) != numbers(reference):
                differ.append(f"{name}, repeat {repeat}")
            if name != "sequential" and sum(cell_seconds[name][-1]) <= seconds:  # no two cells ran at once
                serial.append(f"{name}, repeat {repeat}")
            print(f"{name}: {seconds:.1f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    report = {"recipe": recipe(args.epochs), "cells": 4, "wall_seconds": times, "median_wall_seconds": medians,
              "speedup_over_sequential": {n: medians["sequential"] / m for n, m in medians.items()},
              "cell_seconds": cell_seconds, "same_numbers_as_sequential": not differ, "differ": differ,
              "ran_one_cell_at_a_time": serial,
              "cpu_count": os.cpu_count(), "machine": platform.machine(), "load_average_before": loads,
              "python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, median in medians.items():
        print(f"{name:>20}: {median:6.1f} s  ({medians['sequential'] / median:.2f}x)")
    print(f"same numbers as sequential: {not differ}; wrote {args.out}")
    if serial:
        print(f"its cells' own seconds sum to no more than the wall time, so no two ran at once: {'; '.join(serial)}")
    return 1 if differ or serial else 0


if __name__ == "__main__":
    sys.exit(main())
