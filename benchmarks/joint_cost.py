"""A ``joint`` training step against a ``bptt`` step on the same network, side by side, and where
joint's time goes.

    OMP_NUM_THREADS=1 python benchmarks/joint_cost.py [--batch-size 64] [--timesteps 4] [--steps 12]
    python benchmarks/joint_cost.py --models convnet --batch-size 128 --threads 2   # stages.md's setting

For each model (default: the 4-stage ``vgg --model-arg config=[16,"A",32,"A",64,"A",128]``, which
gives joint 4 branches, and the zoo's ``convnet``) one process builds both stages from the same
initial weights and runs their full training steps (stage step, backward, Adam, ``after_step``)
alternately, joint then bptt, so that a change in the machine's load hits both alike. Input is random
[0, 1] images with the direct encoding (a stride-0 time axis, as `encode` makes it); timing does not
depend on the pixels. Reported per step: the thread CPU time (``time.thread_time``; with one thread,
insensitive to other processes taking the core) and the wall time, each as the minimum and the
median over ``--steps`` steps after two warm-up steps. The ratio joint / bptt is of the medians of
CPU time. The paper reports 1.4x (Guo et al., Joint A-SNN, Table 4: ResNet-18 on CIFAR-10, 36.7 s
against 26.7 s per epoch on a GPU).

The breakdown times joint's parts in extra steps: the weight composition U diag(sigma) V^T, the SNN
and the ANN forward (`forward_blocks`, wrapped with a timer), the loss, the backward, the optimizer
and ``after_step``. Prints a table and writes ``reports/bench/joint_cost.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "joint_cost.json"
MODELS = {
    "vgg4": ("vgg", {"config": [16, "A", 32, "A", 64, "A", 128]}),
    "convnet": ("convnet", {}),
}
PAPER_RATIO = 36.7 / 26.7  # Joint A-SNN Table 4: full method against the independently trained SNN


def _build(method: str, model_name: str, model_args: dict, timesteps: int):
    from snnpipe.models import MODELS as ZOO
    from snnpipe.models import create_model
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.data import DataSpec
    from snnpipe.pipeline.stages import get_stage

    torch.manual_seed(0)
    shape = ZOO[model_name].default_input
    model = create_model(model_name, **model_args)
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)  # as train() does
    spec = DataSpec("synthetic", shape, 10, (0.5,) * shape[0], (0.25,) * shape[0])
    config = TrainConfig(stage=method, timesteps=timesteps, model=model_name, model_args=model_args)
    stage = get_stage(method)(model, config, spec)
    stage.train()
    return stage, torch.optim.Adam(stage.trainable(), lr=1e-3), shape


def _step(stage, optimizer, x, labels, images) -> tuple[float, float]:
    cpu, wall = time.thread_time(), time.perf_counter()
    loss = stage.training_step(x, labels, images).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    stage.after_step()
    return time.thread_time() - cpu, time.perf_counter() - wall


def _breakdown(stage, optimizer, x, labels, images, steps: int) -> dict[str, float]:
    """Median CPU ms per step of joint's parts, timed by wrapping the functions its step calls."""
    from snnpipe.pipeline.stages import joint as joint_module

    parts: dict[str, list[float]] = {}

    def timed(label, fn):
        def wrapper(*args, **kwargs):
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                parts.setdefault(label(*args), []).append(time.thread_time() - start)
        return wrapper

    saved = {name: getattr(joint_module, name) for name in ("forward_blocks", "joint_loss")}
    joint_module.forward_blocks = timed(lambda model, *_: "SNN forward" if model is stage.model else "ANN forward",
                                        saved["forward_blocks"])
    joint_module.joint_loss = timed(lambda *_: "branches' loss", saved["joint_loss"])
    stage.composed = timed(lambda *_: "compose U diag(s) V^T", type(stage).composed.__get__(stage))
    try:
        per_step = []
        for _ in range(steps):
            before = {k: sum(v) for k, v in parts.items()}
            start = time.thread_time()
            loss = stage.training_step(x, labels, images).loss
            t0 = time.thread_time()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t1 = time.thread_time()
            optimizer.step()
            t2 = time.thread_time()
            stage.after_step()
            t3 = time.thread_time()
            record = {k: sum(v) - before.get(k, 0.0) for k, v in parts.items()}
            record["step: rest"] = (t0 - start) - sum(v for k, v in record.items())
            record.update({"backward": t1 - t0, "optimizer": t2 - t1, "after_step": t3 - t2, "total": t3 - start})
            per_step.append(record)
    finally:
        for name, fn in saved.items():
            setattr(joint_module, name, fn)
        del stage.composed
    return {k: 1000 * statistics.median(r.get(k, 0.0) for r in per_step) for k in per_step[-1]}


def measure(key: str, batch: int, timesteps: int, steps: int) -> dict:
    model_name, model_args = MODELS[key]
    (bptt, bptt_opt, shape), (joint, joint_opt, _) = (_build(m, model_name, model_args, timesteps) for m in ("bptt", "joint"))
    torch.manual_seed(1)
    images = torch.rand(batch, *shape)
    labels = torch.randint(0, 10, (batch,))
    x = ((images - 0.5) / 0.25).expand(timesteps, *images.shape)  # the direct encoding's static input
    times: dict[str, list[tuple[float, float]]] = {"joint": [], "bptt": []}
    for i in range(steps + 2):
        for name, stage, opt in (("joint", joint, joint_opt), ("bptt", bptt, bptt_opt)):
            t = _step(stage, opt, x, labels, images)
            if i >= 2:
                times[name].append(t)
    row = {"model": key, "model_name": model_name, "model_args": model_args, "branches": len(joint.points)}
    for name, ts in times.items():
        cpu, wall = [1000 * t[0] for t in ts], [1000 * t[1] for t in ts]
        row[name] = {"cpu_ms_min": min(cpu), "cpu_ms_median": statistics.median(cpu),
                     "wall_ms_min": min(wall), "wall_ms_median": statistics.median(wall)}
    row["ratio_cpu_median"] = row["joint"]["cpu_ms_median"] / row["bptt"]["cpu_ms_median"]
    row["ratio_cpu_min"] = row["joint"]["cpu_ms_min"] / row["bptt"]["cpu_ms_min"]
    row["ratio_wall_median"] = row["joint"]["wall_ms_median"] / row["bptt"]["wall_ms_median"]
    row["joint_breakdown_cpu_ms"] = _breakdown(joint, joint_opt, x, labels, images, steps)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"from {', '.join(MODELS)}")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--label", default="", help="a name for this code state, kept in the JSON")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from snnpipe.pipeline.runtime import tune_cpu_allocator

    tune_cpu_allocator()  # as the snnpipe command does
    torch.set_num_threads(args.threads)
    rows = [measure(key, args.batch_size, args.timesteps, args.steps) for key in args.models.split(",") if key]
    load = os.getloadavg()
    print(f"batch {args.batch_size}, T={args.timesteps} direct, {args.threads} thread(s), load average "
          f"{load[0]:.2f}; ms per full step (CPU time of the thread; wall in brackets), median of {args.steps}\n")
    print(f"{'model':<9}{'branches':>9}{'bptt ms':>18}{'joint ms':>18}{'joint/bptt':>12}{'(min)':>7}{'paper':>7}")
    for r in rows:
        b, j = r["bptt"], r["joint"]
        print(f"{r['model']:<9}{r['branches']:>9}{b['cpu_ms_median']:>9.1f} [{b['wall_ms_median']:>6.1f}]"
              f"{j['cpu_ms_median']:>9.1f} [{j['wall_ms_median']:>6.1f}]{r['ratio_cpu_median']:>12.2f}"
              f"{r['ratio_cpu_min']:>7.2f}{PAPER_RATIO:>7.2f}")
    for r in rows:
        print(f"\njoint's step on {r['model']}, CPU ms (median of {args.steps}):")
        for part, ms in r["joint_breakdown_cpu_ms"].items():
            print(f"  {part:<24}{ms:8.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "joint_cost", "command": " ".join([Path(sys.executable).name] + sys.argv),
              "label": args.label, "batch_size": args.batch_size, "timesteps": args.timesteps, "steps": args.steps,
              "threads": args.threads, "load_average": load, "torch": torch.__version__,
              "machine": platform.machine(), "paper_ratio": PAPER_RATIO, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
