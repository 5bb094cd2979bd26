"""Wall times of the commands the README quotes, on the machine as it is or beside busy processes.

    python benchmarks/times.py --busy 0 [--items cli,train,tour,run,tests] [--before OLD_CHECKOUT]
    python benchmarks/times.py --busy 1          # the same beside one process spinning a core

Each command runs as a user runs it (``python -m snnpipe ...`` in a fresh folder, the package from
this checkout), one after another, and its wall time is taken; ``--before DIR`` (a checkout of an
earlier commit, e.g. ``git archive REV | tar -x -C DIR``) runs each command of ``run`` and ``train``
with that code too, right after this checkout's, so that the two are side by side under the same
load. ``--busy N`` starts N processes that spin a core each for the whole measurement. The load
average is read before and after every command. The rows are merged into
``reports/bench/times.json`` under the load's name (``quiet`` for ``--busy 0``, else ``busy-N``);
the table printed is this run's. ``--label`` names a load the script does not make (e.g. another
user's training run on the machine).

Items: ``cli`` (``--help``, ``--version``, ``models``, ``train --help``, a bad option), ``train``
(the default ``snnpipe train``), ``tour`` (the tour's profile and RateBP commands), ``run`` (the
default recipe), ``tests`` (``python -m pytest -q``, the default test run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "bench" / "times.json"
SNNPIPE = [sys.executable, "-m", "snnpipe"]
ITEMS = {
    "cli": [("--help", ["--help"]), ("--version", ["--version"]), ("models", ["models"]),
            ("train --help", ["train", "--help"]), ("a bad option", ["train", "--model-arg", "hidden=[0]"])],
    "train": [("train (digits MLP, BPTT, T=4)", ["train", "--quiet"])],
    "tour": [("profile (the MLP above)", ["profile", "runs/digits-mlp-bptt/checkpoint.pt", "--quiet"]),
             ("train --stage ratebp -T 8", ["train", "--stage", "ratebp", "-T", "8", "--quiet"])],
    "run": [("run (the default recipe)", ["run", "--quiet"])],
}
#: Items whose commands also run with --before's code.
COMPARED = ("train", "run")


def _package_path(checkout: Path, scratch: Path) -> str:
    """A PYTHONPATH entry under which ``import snnpipe`` is ``checkout`` (the repository root is
    the package)."""
    entry = scratch / f"path-{abs(hash(str(checkout)))}"
    entry.mkdir(exist_ok=True)
    link = entry / "snnpipe"
    if not link.exists():
        link.symlink_to(checkout.resolve())
    return str(entry)


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> dict:
    before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    row = {"seconds": seconds, "exit_code": done.returncode, "load_before": before, "load_after": os.getloadavg()[0]}
    if done.returncode not in (0, 2):
        row["stderr_tail"] = done.stderr[-400:]
    if "pytest" in cmd:
        row["summary"] = (done.stdout.strip().splitlines() or [""])[-1]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=0, help="processes spinning a core each, beside the commands")
    parser.add_argument("--items", default="cli,train,tour,run,tests")
    parser.add_argument("--before", type=Path, default=None, help="a checkout of earlier code to time beside this one")
    parser.add_argument("--label", default=None, help="the load's name in the JSON (default: quiet or busy-N)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    items = [i for i in args.items.split(",") if i]
    unknown = sorted(set(items) - set(ITEMS) - {"tests"})
    if unknown:
        parser.error(f"unknown item(s) {', '.join(unknown)}; choose from {', '.join([*ITEMS, 'tests'])}")
    load = args.label or ("quiet" if args.busy == 0 else f"busy-{args.busy}")
    rows = []
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory(prefix="snnpipe-times-") as scratch_name:
            scratch = Path(scratch_name)
            versions = {"this": ROOT} | ({"before": args.before} if args.before else {})
            env_of = {name: {**os.environ, "PYTHONPATH": _package_path(path, scratch)} for name, path in versions.items()}
            for env in env_of.values():
                for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "SNNPIPE_THREADS", "MKL_NUM_THREADS"):
                    env.pop(name, None)  # each version's own thread policy
            time.sleep(1.0 if spinners else 0.0)
            work = {name: scratch / f"work-{name}" for name in versions}
            for folder in work.values():
                folder.mkdir()
            for item in items:
                if item == "tests":
                    row = _timed([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"], ROOT, env_of["this"])
                    rows.append({"item": item, "command": "python -m pytest -q -x", "version": "this", "load": load, **row})
                    print(f"{'tests':<40}{'this':<8}{row['seconds']:>9.1f} s  load {row['load_before']:.2f}  {row.get('summary', '')}")
                    continue
                for label, command in ITEMS[item]:
                    for version in (versions if item in COMPARED else ["this"]):
                        row = _timed([*SNNPIPE, *command], work[version], env_of[version])
                        rows.append({"item": item, "command": "snnpipe " + " ".join(command), "label": label,
                                     "version": version, "load": load, **row})
                        print(f"{label:<40}{version:<8}{row['seconds']:>9.1f} s  load {row['load_before']:.2f}"
                              f"  exit {row['exit_code']}")
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    report = json.loads(args.out.read_text()) if args.out.is_file() else {"benchmark": "times", "runs": {}}
    report["runs"][load] = {"command": " ".join([Path(sys.executable).name] + sys.argv), "busy_processes": args.busy,
                            "cpu_count": os.cpu_count(), "machine": platform.machine(),
                            "before": str(args.before) if args.before else None, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
