"""Each framework's conv and residual net, fine-tuned on digits in the framework, deployed to Loihi
without its NIR writer (`snnpipe.deploy`): float against fixed-point accuracy on the test set.

    python benchmarks/frameworks_to_loihi.py [--epochs 3] [--steps 4] [--seed 0] [--lava] [--only snntorch,sinabs]

The nets are the tests' (``tests/framework_nets.py``: digits' 1x8x8 images, direct encoding, the images
as they are). Per net: its accuracy by the framework itself on the 360 test images, then the Loihi
export's accuracy of the float model built from the graph (equal: the same network) and of the
bit-accurate fixed-point simulator, the drop, and with ``--lava`` the file run in Lava on 4 test
inputs (every layer's spikes equal to the simulator's). Prints a markdown table and writes
``reports/bench/frameworks_to_loihi.json``.
"""

from __future__ import annotations

import argparse
import json
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


def measure(framework: str, kind: str, epochs: int, steps: int, seed: int, lava: bool, folder: Path) -> dict:
    start = time.perf_counter()
    net = F.fine_tune(framework, F.build(framework, kind, steps, seed=seed), steps, epochs, seed=seed)
    row = {"framework": framework, "net": kind, "epochs": epochs, "T": steps, "seed": seed,
           "framework_accuracy": F.accuracy(framework, net, steps)}
    options = {"verify": "lava", "verify_samples": 4} if lava else {}
    try:
        report = deploy(net, torch.zeros(1, *F.INPUT_SHAPE), folder / f"{framework}-{kind}.h5", dataset=F.DATASET,
                        timesteps=steps, max_drop=100.0, force=True, **options).report
    except Exception as err:  # a row says why it failed
        row["error"] = f"{type(err).__name__}: {err}"
        return row
    row.update(float_accuracy=100 * report["accuracy_float"], fixed_accuracy=100 * report["accuracy_fixed_point"],
               drop_pt=report["accuracy_drop_pt"], format=report["format"], verified=report["verified"],
               seconds=round(time.perf_counter() - start, 1))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lava", action="store_true")
    parser.add_argument("--only", default=",".join(F.FRAMEWORKS))
    args = parser.parse_args()
    rows = []
    print("| framework | net | framework acc. % | float acc. % | fixed-point acc. % | drop pt | Lava |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for framework in args.only.split(","):
            for kind in F.KINDS:
                row = measure(framework, kind, args.epochs, args.steps, args.seed, args.lava, Path(folder))
                rows.append(row)
                if "error" in row:
                    print(f"| {framework} | {kind} | {row['framework_accuracy']:.2f} | {row['error']} ||||")
                else:
                    print(f"| {framework} | {kind} | {row['framework_accuracy']:.2f} | {row['float_accuracy']:.2f} | "
                          f"{row['fixed_accuracy']:.2f} | {row['drop_pt']:+.2f} | {row['verified']} |", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
