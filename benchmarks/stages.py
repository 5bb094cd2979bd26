"""Every training stage against the ``bptt`` baseline, on the same model, data, epochs, T and seed.

    python benchmarks/stages.py [--dataset fashion-mnist] [--epochs 4] [--seed 0] [--runs runs/stages]

Trains (or reuses, if its checkpoint exists) one run per row: the ANN teacher, ``bptt``,
``ratebp``, ``esd``, ``ann-guided``, ``kd`` (kd-activity with both regularizers off: the
comparison the KD paper makes) and ``kd-activity``, ``joint``. For each: test accuracy, mean
firing rate, compute-only energy per inference at 45 nm (``compute energy on cmos45nm (ops, no data
movement)``, key ``compute_energy_ops_cmos45nm_uj``: `snnpipe.pipeline.energy_report`) and training
time per epoch. Writes ``reports/bench/stages.md`` and ``stages.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "bench"
TARGET = "cmos45nm"

ROWS = [
    # (row name, stage, stage args, needs the ANN teacher)
    ("bptt", "bptt", {}, False),
    ("ratebp", "ratebp", {}, False),
    ("esd", "esd", {}, False),
    ("ann-guided", "ann-guided", {}, True),
    ("kd", "kd-activity", {"activity_weight": 0.0, "logits_weight": 0.0}, True),
    ("kd-activity", "kd-activity", {}, True),
    ("joint", "joint", {}, False),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "stages")
    parser.add_argument("--only", nargs="*", help="rows to (re)train; the others are read from --runs")
    parser.add_argument("--energy-samples", type=int, default=1000)
    args = parser.parse_args()

    from snnpipe.pipeline.checkpoint import Checkpoint
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.energy_report import compute_key
    from snnpipe.pipeline.process import tune_cpu_allocator
    from snnpipe.pipeline.train import train

    tune_cpu_allocator()
    common = dict(dataset=args.dataset, model=args.model, epochs=args.epochs, timesteps=args.timesteps, seed=args.seed)

    def run(name: str, stage: str, stage_args: dict, teacher: str | None) -> Checkpoint:
        path = args.runs / name / "checkpoint.pt"
        if path.exists() and (args.only is None or name not in args.only):
            return Checkpoint.load(path)
        if path.exists():
            for old in path.parent.iterdir():
                old.unlink()
        print(f"training {name} ...", file=sys.stderr, flush=True)
        config = TrainConfig(stage=stage, stage_args=stage_args, teacher=teacher, out=str(path.parent), **common)
        return train(config, progress=False)

    teacher = run("ann", "ann", {}, None)
    results = []
    for name, stage, stage_args, needs_teacher in ROWS:
        ckpt = run(name, stage, stage_args, str(teacher.path) if needs_teacher else None)
        epochs = ckpt.training["epochs"]
        results.append({
            "row": name, "stage": stage, "stage_args": stage_args, "checkpoint": str(ckpt.path),
            "test_acc": ckpt.history[-1]["test_acc"], "firing_rate": ckpt.history[-1]["firing_rate"],
            "epoch_seconds": sum(e["epoch_seconds"] for e in epochs) / len(epochs),
            compute_key(TARGET): _compute_uj(ckpt, args.energy_samples),
        })
    _write(results, teacher, args)


def _compute_uj(ckpt, samples: int) -> float:
    """The compute-only energy per inference at `TARGET` (no data movement)."""
    from snnpipe.pipeline.profile import profile

    return profile(ckpt, samples=samples, target=TARGET).totals.compute_energy_uj


def _write(results: list[dict], teacher, args) -> None:
    base = next(r for r in results if r["row"] == "bptt")
    kd = next(r for r in results if r["row"] == "kd")
    from snnpipe.pipeline.energy_report import compute_key, compute_name, unit_of

    key = compute_key(TARGET)
    unit = unit_of(min(r[key] for r in results) * 1e6)
    command = " ".join(["python", "benchmarks/stages.py", *sys.argv[1:]])
    lines = [
        "# Training stages against the bptt baseline",
        "",
        f"`{command}` — {args.dataset}, model `{args.model}`, T={args.timesteps}, {args.epochs} epochs, "
        f"seed {args.seed}, direct encoding, Adam 1e-3 cosine, batch 128, 2-core CPU. "
        f"ANN teacher (`--stage ann`, same epochs): {teacher.history[-1]['test_acc']:.2%}.",
        "",
        f"| stage | test accuracy | vs bptt | mean firing rate | vs bptt | {compute_name(TARGET)} ({unit[0]}) | s / epoch |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        energy = f"{r[key] * 1e6 / unit[1]:.4g}"
        lines.append(
            f"| {r['row']} | {r['test_acc']:.2%} | {100 * (r['test_acc'] - base['test_acc']):+.2f} pt | "
            f"{r['firing_rate']:.4f} | {100 * (r['firing_rate'] / base['firing_rate'] - 1):+.1f}% | {energy} | "
            f"{r['epoch_seconds']:.0f} |"
        )
    act = next(r for r in results if r["row"] == "kd-activity")
    lines += [
        "",
        f"`kd-activity` against `kd` (the same KD without the regularizers): firing rate "
        f"{100 * (act['firing_rate'] / kd['firing_rate'] - 1):+.1f}%, accuracy "
        f"{100 * (act['test_acc'] - kd['test_acc']):+.2f} pt.",
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "stages.md").write_text("\n".join(lines) + "\n")
    (OUT / "stages.json").write_text(json.dumps({"command": command, "rows": results}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
