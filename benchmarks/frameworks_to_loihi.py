"""Each framework's conv and residual net, fine-tuned on digits in the framework, deployed to Loihi
without its NIR writer (`snnpipe.deploy`): float against fixed-point accuracy on the test set.

    python benchmarks/frameworks_to_loihi.py [--epochs 3] [--steps 4] [--seed 0] [--lava] [--only snntorch,sinabs]
        [--nets conv,residual] [--qat-epochs 1]

The nets are the tests' (``tests/framework_nets.py``: digits' 1x8x8 images, direct encoding, the images
as they are). Per net: its accuracy by the framework itself on the 360 test images, then the Loihi
export's accuracy of the float model built from the graph (equal: the same network) and of the
bit-accurate fixed-point simulator, the drop, and with ``--lava`` the file run in Lava on 4 test
inputs (every layer's spikes equal to the simulator's). Where fixed point drops by more than the
export's default gate (1 point), the short fine-tune: ``snnpipe train --init CKPT --quantize loihi``
for ``--qat-epochs`` epochs on the deployed checkpoint (Loihi's timing and weights), exported again.
Prints a markdown table and writes ``reports/bench/frameworks_to_loihi.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "bench" / "frameworks_to_loihi.json"
sys.path.insert(0, str(ROOT / "tests"))

import framework_nets as F  # noqa: E402

from snnpipe import deploy  # noqa: E402


def _exported(report: dict) -> dict:
    return {"float_accuracy": 100 * report["accuracy_float"], "fixed_accuracy": 100 * report["accuracy_fixed_point"],
            "drop_pt": report["accuracy_drop_pt"], "format": report["format"], "verified": report["verified"]}


def fine_tune_for_loihi(checkpoint: Path, epochs: int, steps: int, seed: int, lava: bool, folder: Path) -> dict:
    """``snnpipe train --init CKPT --quantize loihi``, then ``snnpipe export --target loihi``: the report."""
    run = folder / f"{checkpoint.stem}-qat"
    subprocess.run([sys.executable, "-m", "snnpipe", "train", "--init", str(checkpoint), "--quantize", "loihi",
                    "--epochs", str(epochs), "--dataset", F.DATASET, "-T", str(steps), "--seed", str(seed),
                    "--out", str(run), "--quiet"], check=True)
    verify = ["--verify", "lava"] if lava else []
    out = subprocess.run([sys.executable, "-m", "snnpipe", "export", str(run / "checkpoint.pt"), "--target", "loihi",
                          "--out", str(run / "net.h5"), "--json", *verify], check=True, capture_output=True, text=True)
    return _exported(json.loads(out.stdout))


def measure(framework: str, kind: str, epochs: int, steps: int, seed: int, lava: bool, folder: Path,
            qat_epochs: int = 0) -> dict:
    start = time.perf_counter()
    net = F.fine_tune(framework, F.build(framework, kind, steps, seed=seed), steps, epochs, seed=seed)
    row = {"framework": framework, "net": kind, "epochs": epochs, "T": steps, "seed": seed,
           "framework_accuracy": F.accuracy(framework, net, steps)}
    options = {"verify": "lava", "verify_samples": 4} if lava else {}
    try:
        checkpoint = folder / f"{framework}-{kind}.pt"
        report = deploy(net, torch.zeros(1, *F.INPUT_SHAPE), folder / f"{framework}-{kind}.h5", dataset=F.DATASET,
                        timesteps=steps, max_drop=100.0, force=True, checkpoint=checkpoint, **options).report
    except Exception as err:  # a row says why it failed
        row["error"] = f"{type(err).__name__}: {err}"
        return row
    row.update(_exported(report))
    if qat_epochs and row["drop_pt"] > 1.0:
        row["fine_tuned"] = {"epochs": qat_epochs, **fine_tune_for_loihi(checkpoint, qat_epochs, steps, seed, lava, folder)}
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lava", action="store_true")
    parser.add_argument("--only", default=",".join(F.FRAMEWORKS))
    parser.add_argument("--nets", default=",".join(F.KINDS))
    parser.add_argument("--qat-epochs", type=int, default=0)
    args = parser.parse_args()
    rows = []
    print("| framework | net | framework acc. % | float acc. % | fixed-point acc. % | drop pt | Lava |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for framework in args.only.split(","):
            for kind in args.nets.split(","):
                row = measure(framework, kind, args.epochs, args.steps, args.seed, args.lava, Path(folder), args.qat_epochs)
                rows.append(row)
                if "error" in row:
                    print(f"| {framework} | {kind} | {row['framework_accuracy']:.2f} | {row['error']} ||||")
                else:
                    print(f"| {framework} | {kind} | {row['framework_accuracy']:.2f} | {row['float_accuracy']:.2f} | "
                          f"{row['fixed_accuracy']:.2f} | {row['drop_pt']:+.2f} | {row['verified']} |", flush=True)
                tuned = row.get("fine_tuned")
                if tuned:
                    print(f"| {framework} | {kind} + {tuned['epochs']} epoch(s) in Loihi's timing | | {tuned['float_accuracy']:.2f} | "
                          f"{tuned['fixed_accuracy']:.2f} | {tuned['drop_pt']:+.2f} | {tuned['verified']} |", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    name = OUT if args.only == ",".join(F.FRAMEWORKS) and args.nets == ",".join(F.KINDS) else OUT.with_name(
        f"{OUT.stem}-{args.only.replace(',', '-')}-{args.nets.replace(',', '-')}.json")
    name.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
