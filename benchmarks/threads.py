"""Training step time of the zoo models at 1 and 2 threads, on a quiet machine and beside a busy one.

    python benchmarks/threads.py [--steps 12] [--repeats 2] [--busy 1] [--cases "digits mlp,fm convnet"]

Each row is a fresh process whose OpenMP environment is set before torch starts its pool:
``OMP_NUM_THREADS`` (1 or 2) and ``OMP_WAIT_POLICY`` (``active``: threads spin between parallel
regions, libgomp's default behaviour for a while; ``passive``: they sleep). It trains ``--steps``
BPTT steps (T=4, direct input, Adam, each dataset's default batch and model as ``snnpipe train``
runs it) on random images and reports the median step time, after two warm-up steps. The rows run
first on the machine as it is ("quiet"), then with ``--busy`` processes spinning a core each
(``busy``), the settings of one model side by side, ``--repeats`` times alternating (the median is
kept). The load average is recorded before each half.

``values/step`` is the batch times the model's neurons (one sample, one step; `memory.model_size`):
the size of the elementwise operations of a step, which decides whether a second thread can pay
(torch splits an operation over threads only past 32768 elements, ``at::internal::GRAIN_SIZE``).
The script prints the table, the threshold it supports and writes ``reports/bench/threads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "threads.json"
#: (label, dataset, model, model arguments): the zoo as `snnpipe train` and the default recipe run it.
CASES = (
    ("digits mlp", "digits", "mlp", {}),
    ("digits mlp 128-64", "digits", "mlp", {"hidden": [128, 64]}),
    ("fm convnet", "fashion-mnist", "convnet", {}),
    ("fm vgg", "fashion-mnist", "vgg", {}),
    ("fm resnet", "fashion-mnist", "resnet", {}),
)
SETTINGS = ((1, "passive"), (2, "passive"), (2, "active"))


def worker(dataset: str, model_name: str, model_args: dict, steps: int) -> dict:
    import torch

    from snnpipe.models import create_model
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.catalog import catalog
    from snnpipe.pipeline.data import DataSpec
    from snnpipe.pipeline.memory import model_size
    from snnpipe.pipeline.process import tune_cpu_allocator
    from snnpipe.pipeline.stages import get_stage

    tune_cpu_allocator()
    entry = catalog().dataset(dataset)
    shape, batch, timesteps = entry.input_shape, entry.batch_size, 4
    torch.manual_seed(0)
    images = torch.rand(batch, *shape)
    labels = torch.randint(0, entry.num_classes, (batch,))
    x = ((images - 0.5) / 0.25).expand(timesteps, *images.shape)
    model = create_model(model_name, input_shape=shape, num_classes=entry.num_classes, **model_args)
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)  # as train() does
    spec = DataSpec(dataset, shape, entry.num_classes, (0.5,) * shape[0], (0.25,) * shape[0])
    stage = get_stage("bptt")(model, TrainConfig(stage="bptt", timesteps=timesteps), spec)
    stage.train()
    optimizer = torch.optim.Adam(stage.trainable(), lr=1e-3)
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = stage.training_step(x, labels, images).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    size = model_size(model_name, model_args, shape, entry.num_classes)
    return {"step_ms": 1000 * statistics.median(times), "batch": batch, "neurons": size.neurons,
            "values_per_step": batch * size.neurons, "threads_seen": torch.get_num_threads()}


def _measure(case, threads: int, policy: str, steps: int) -> dict:
    label, dataset, model, args = case
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": policy}
    env.pop("SNNPIPE_THREADS", None)
    cmd = [sys.executable, __file__, "--worker", json.dumps([dataset, model, args]), "--steps", str(steps)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--busy", type=int, default=1, help="busy processes beside the busy half")
    parser.add_argument("--cases", default=",".join(c[0] for c in CASES), help="labels of CASES to run")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        dataset, model, model_args = json.loads(args.worker)
        print(json.dumps(worker(dataset, model, model_args, args.steps)))
        return

    cases = [c for c in CASES if c[0] in args.cases.split(",")]
    rows, loads = [], {}
    for load in ("quiet", "busy"):
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy if load == "busy" else 0)]
        try:
            time.sleep(1.0 if spinners else 0.0)
            loads[load] = os.getloadavg()
            for case in cases:
                samples: dict[tuple[int, str], list[dict]] = {s: [] for s in SETTINGS}
                for _ in range(args.repeats):  # the settings of one model side by side, alternating
                    for setting in SETTINGS:
                        samples[setting].append(_measure(case, *setting, args.steps))
                for (threads, policy), runs in samples.items():
                    print(f"{case[0]:<20}{load:<6}{threads}t {policy:<8}{statistics.median(r['step_ms'] for r in runs):>9.1f} ms",
                          file=sys.stderr, flush=True)
                    rows.append({**runs[0], "case": case[0], "load": load, "threads": threads, "wait_policy": policy,
                                 "step_ms": statistics.median(r["step_ms"] for r in runs),
                                 "step_ms_runs": [r["step_ms"] for r in runs]})
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()

    by = {(r["case"], r["load"], r["threads"], r["wait_policy"]): r for r in rows}
    print(f"BPTT, T=4, direct input, median of {args.steps} steps x {args.repeats} runs; load average "
          + ", ".join(f"{k}: {v[0]:.2f}" for k, v in loads.items()) + f"; busy = {args.busy} spinning process(es)\n")
    head = f"{'model':<20}{'values/step':>12}  {'load':<6}" + "".join(f"{f'{t}t {p}':>13}" for t, p in SETTINGS)
    print(head + f"{'2t/1t':>8}")
    for case in cases:
        for load in ("quiet", "busy"):
            cells = [by[(case[0], load, t, p)] for t, p in SETTINGS]
            ratio = by[(case[0], load, 2, "passive")]["step_ms"] / by[(case[0], load, 1, "passive")]["step_ms"]
            print(f"{case[0]:<20}{cells[0]['values_per_step']:>12,}  {load:<6}"
                  + "".join(f"{c['step_ms']:>10.1f} ms" for c in cells) + f"{ratio:>8.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "threads", "command": " ".join([Path(sys.executable).name] + sys.argv),
              "cpu_count": os.cpu_count(), "machine": platform.machine(), "load_average": loads,
              "busy_processes": args.busy, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
