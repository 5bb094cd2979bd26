"""``kd-activity``'s operating points: firing rate and accuracy against ``activity_weight``, each
against plain KD from the same teacher and the same initial weights.

    OMP_NUM_THREADS=1 python benchmarks/kd_activity_points.py [--weights 0,0.05,0.1,0.2,0.5,1.0] [--seeds 0,1,2]

One ANN teacher (``--stage ann``, seed 0) is trained first; then, for each seed, plain KD
(``kd-activity`` with ``activity_weight=0`` and ``logits_weight=0``, the comparison Louis et al.
make) and ``kd-activity`` at each activity weight (``logits_weight`` at its default, 0.01), all from
that seed's initial weights and data order. The firing rate is the test set's mean over all LIF
neurons and steps (spikes / (neurons x steps)), as ``snnpipe train`` reports it; with the network
and T fixed, its relative change is the change in spikes per inference. Defaults: digits, ``mlp
--model-arg hidden=[128,64]`` (the default recipe's network), T=4 direct, 10 epochs (the teacher 20).
Writes ``reports/bench/kd_activity_points.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "bench"
PAPER_REDUCTION = -0.1432  # Louis et al. 2024 (seed abstract): -14.32% spikes on CIFAR-10 at equal accuracy (-26.73% on GSC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--model-args", default='{"hidden": [128, 64]}', help="JSON")
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--encoding", default="direct")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--teacher-epochs", type=int, default=20)
    parser.add_argument("--weights", default="0,0.05,0.1,0.2,0.5,1.0", help="activity_weight values")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--runs", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=OUT / "kd_activity_points")
    args = parser.parse_args()

    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.runtime import tune_cpu_allocator
    from snnpipe.pipeline.train import train

    tune_cpu_allocator()
    weights = [float(w) for w in args.weights.split(",") if w]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    common = dict(dataset=args.dataset, model=args.model, model_args=json.loads(args.model_args),
                  timesteps=args.timesteps, encoding=args.encoding)
    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        runs = args.runs or Path(scratch)

        def run(name: str, **kw):
            print(f"training {name} ...", file=sys.stderr, flush=True)
            ckpt = train(TrainConfig(out=str(runs / name), **common, **kw), progress=False)
            last = ckpt.history[-1]
            return {"test_acc": last["test_acc"], "firing_rate": last["firing_rate"]}

        teacher_result = run("ann", stage="ann", epochs=args.teacher_epochs, seed=0)
        teacher = str(runs / "ann" / "checkpoint.pt")
        rows = []
        for seed in seeds:
            kd = run(f"kd-s{seed}", stage="kd-activity", epochs=args.epochs, seed=seed, teacher=teacher,
                     stage_args={"activity_weight": 0.0, "logits_weight": 0.0})
            rows.append({"seed": seed, "row": "kd", "activity_weight": 0.0, "logits_weight": 0.0, **kd})
            for weight in weights:
                result = run(f"kda-{weight}-s{seed}", stage="kd-activity", epochs=args.epochs, seed=seed,
                             teacher=teacher, stage_args={"activity_weight": weight})
                rows.append({"seed": seed, "row": "kd-activity", "activity_weight": weight, "logits_weight": 0.01,
                             **result, "rate_change": result["firing_rate"] / kd["firing_rate"] - 1,
                             "acc_change_pt": 100 * (result["test_acc"] - kd["test_acc"])})
    summary = []
    for key in [("kd", 0.0)] + [("kd-activity", w) for w in weights]:
        same = [r for r in rows if (r["row"], r["activity_weight"]) == key]
        entry = {"row": key[0], "activity_weight": key[1], "logits_weight": same[0]["logits_weight"],
                 "test_acc": statistics.mean(r["test_acc"] for r in same),
                 "firing_rate": statistics.mean(r["firing_rate"] for r in same)}
        if key[0] == "kd-activity":
            changes = [r["rate_change"] for r in same]
            entry.update(rate_change=statistics.mean(changes), rate_change_min=min(changes), rate_change_max=max(changes),
                         acc_change_pt=statistics.mean(r["acc_change_pt"] for r in same))
        summary.append(entry)
    command = " ".join(["python", "benchmarks/kd_activity_points.py"] + sys.argv[1:])
    load = os.getloadavg()
    report = {"benchmark": "kd_activity_points", "command": command, **common, "epochs": args.epochs,
              "teacher_epochs": args.teacher_epochs, "seeds": seeds, "teacher": teacher_result,
              "paper_rate_change": PAPER_REDUCTION, "seconds": time.time() - started, "load_average": load,
              "summary": summary, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# kd-activity: operating points against plain KD",
        "",
        f"`{command}`: {args.dataset}, `{args.model}` {json.dumps(common['model_args'])}, T={args.timesteps} "
        f"{args.encoding}, {args.epochs} epochs, seeds {', '.join(map(str, seeds))}, one ANN teacher "
        f"({args.teacher_epochs} epochs, {100 * teacher_result['test_acc']:.2f}%). Plain KD is kd-activity with "
        "activity_weight 0 and logits_weight 0; every other row keeps logits_weight 0.01. Changes are against "
        "plain KD of the same seed (same initial weights and data order), then averaged over the seeds "
        f"(range in brackets). Load average {load[0]:.2f}; {time.time() - started:.0f} s.",
        "",
        "| row | activity_weight | test accuracy | firing rate | spikes vs KD | accuracy vs KD |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in summary:
        if e["row"] == "kd":
            lines.append(f"| kd | 0 (logits 0) | {100 * e['test_acc']:.2f}% | {e['firing_rate']:.4f} | | |")
        else:
            lines.append(
                f"| kd-activity | {e['activity_weight']:g} | {100 * e['test_acc']:.2f}% | {e['firing_rate']:.4f} | "
                f"{100 * e['rate_change']:+.1f}% [{100 * e['rate_change_min']:+.1f}, {100 * e['rate_change_max']:+.1f}] | "
                f"{e['acc_change_pt']:+.2f} pt |")
    lines += ["", f"The paper (Louis et al. 2024) reports {100 * PAPER_REDUCTION:.2f}% spikes on CIFAR-10 (and -26.73% on GSC) "
              "at equal accuracy."]
    text = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {args.out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
