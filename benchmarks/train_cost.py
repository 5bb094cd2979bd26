"""Training step time and peak memory against T, for ``bptt`` and ``ratebp`` on the same model.

    python benchmarks/train_cost.py [--model convnet] [--batch-size 64] [--steps 10] [--threads 1] [--repeats 3]
    python benchmarks/train_cost.py --model resnet19 --timesteps 4 --methods bptt,ratebp --amp bf16 \
        --device cuda --out reports/bench/gpu_resnet19.json        # GPU throughput, CIFAR-shaped input

Each (method, T) runs in a fresh subprocess so that its peak memory is its own (``--threads N``
sets its ``OMP_NUM_THREADS``; ``--repeats R`` runs every (method, T) R times, the rounds one after
another with the methods of one T back to back in each, and keeps the median step time and the
largest peak, so that a burst of other work on a shared machine does not decide a ratio):
- step time: the median of ``--steps`` full training steps (encode, forward, backward, Adam step)
  after two warm-up steps;
- peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU the rise of the process's
  peak resident set (``ru_maxrss``) over its size just before the first step, so the interpreter,
  torch and the data are not counted and what remains is what training allocates.
Input is random [0, 1] images of the dataset's shape (timing does not depend on the pixels), with
direct encoding. A reference row trains the same network written with snnTorch ``Leaky`` neurons
by BPTT, when snnTorch is installed (conv net only). Throughput is ``batch / step time`` in images
per second. Prints a table and writes ``reports/bench/train_cost.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

TIMESTEPS = (1, 2, 4, 8)
METHODS = ("bptt", "ratebp", "snntorch-bptt")
OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "train_cost.json"


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _snntorch_convnet(channels=(32, 64), hidden=128):
    import snntorch as snn
    from torch import nn

    class Net(nn.Module):
        """The zoo's convnet with snnTorch Leaky neurons and its own time loop."""

        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(1, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0])
            self.c2, self.b2 = nn.Conv2d(channels[0], channels[1], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[1])
            self.f1, self.b3 = nn.Linear(channels[1] * 49, hidden, bias=False), nn.BatchNorm1d(hidden)
            self.f2 = nn.Linear(hidden, 10)
            self.l1, self.l2, self.l3 = (snn.Leaky(beta=0.5, reset_mechanism="zero") for _ in range(3))

        def forward(self, x):
            m1, m2, m3 = self.l1.init_leaky(), self.l2.init_leaky(), self.l3.init_leaky()
            out = []
            for x_t in x:
                s, m1 = self.l1(self.b1(self.c1(x_t)), m1)
                s, m2 = self.l2(self.b2(self.c2(F.avg_pool2d(s, 2))), m2)
                s, m3 = self.l3(self.b3(self.f1(F.avg_pool2d(s, 2).flatten(1))), m3)
                out.append(self.f2(s))
            return torch.stack(out)

    return Net()


def worker(method: str, timesteps: int, model_name: str, batch: int, steps: int, device: str,
           amp: str | None = None) -> dict:
    from snnpipe.models import MODELS, create_model
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.data import DataSpec
    from snnpipe.pipeline.stages import get_stage

    torch.manual_seed(0)
    shape = MODELS[model_name].default_input
    images = torch.rand(batch, *shape, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    x = ((images - 0.5) / 0.25).expand(timesteps, *images.shape)  # the direct encoding's static input
    if method == "snntorch-bptt":
        net = _snntorch_convnet().to(device).to(memory_format=torch.channels_last)

        def step_loss():
            return F.cross_entropy(net(x).mean(0), labels)

        params = net.parameters()
    else:
        model = create_model(model_name).to(device).to(memory_format=torch.channels_last)  # as train() does
        spec = DataSpec("synthetic", shape, 10, (0.5,) * shape[0], (0.25,) * shape[0])
        stage = get_stage(method)(model, TrainConfig(stage=method, timesteps=timesteps), spec).to(device)
        stage.train()

        def step_loss():
            return stage.training_step(x, labels, images).loss

        params = stage.trainable()
    optimizer = torch.optim.Adam(params, lr=1e-3)
    cuda = device.startswith("cuda")
    if amp:  # as train() does under --amp bf16
        plain_loss = step_loss

        def step_loss():
            with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16):
                return plain_loss()

    base_rss = _rss_mib()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated() / 2**20
    times = []
    for i in range(steps + 2):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20 - base_cuda
    step = statistics.median(times)
    return {"method": method, "timesteps": timesteps, "step_ms": 1000 * step, "images_per_s": batch / step,
            "peak_mib": peak, "memory": "cuda_max_allocated" if cuda else "rss_rise", "amp": amp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--timesteps", default=",".join(map(str, TIMESTEPS)), help="T values, e.g. 1,2,4,8")
    parser.add_argument("--methods", default=",".join(METHODS), help="e.g. bptt,ratebp")
    parser.add_argument("--amp", choices=["bf16"], default=None, help="bf16 autocast, as train --amp bf16")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of every run (default: torch's)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    from snnpipe.errors import SnnpipeError
    from snnpipe.pipeline.process import tune_cpu_allocator
    from snnpipe.pipeline.runtime import resolve_device

    try:  # a device this machine lacks: one line, before any run starts
        resolve_device(args.device)
    except SnnpipeError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")

    tune_cpu_allocator()  # as the snnpipe command does, for every method alike
    if args.worker:
        method, timesteps = args.worker[0], int(args.worker[1])
        print(json.dumps(worker(method, timesteps, args.model, args.batch_size, args.steps, args.device, args.amp)))
        return

    methods = [m for m in args.methods.split(",") if m]
    timesteps_list = [int(t) for t in args.timesteps.split(",") if t]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if "snntorch-bptt" in methods and (args.model != "convnet" or importlib.util.find_spec("snntorch") is None):
        methods.remove("snntorch-bptt")  # the snnTorch reference is the conv net, and needs snnTorch
    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    runs: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.repeats):
        for timesteps in timesteps_list:  # T outermost: the methods of one T run back to back
            for method in methods:
                cmd = [sys.executable, __file__, "--worker", method, str(timesteps), "--model", args.model,
                       "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--device", args.device]
                cmd += ["--amp", args.amp] if args.amp else []
                done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                runs.setdefault((method, timesteps), []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = []
    for (method, timesteps), samples in runs.items():
        step = statistics.median(r["step_ms"] for r in samples)
        rows.append({**samples[0], "step_ms": step, "images_per_s": args.batch_size / step * 1000,
                     "peak_mib": max(r["peak_mib"] for r in samples), "step_ms_runs": [r["step_ms"] for r in samples]})
    by = {(r["method"], r["timesteps"]): r for r in rows}
    first = timesteps_list[0]
    print(f"model {args.model}, batch {args.batch_size}, device {args.device}, amp {args.amp or 'off'}; "
          f"ratios are against T={first}\n")
    print(f"{'method':<15}{'T':>3}{'step ms':>10}{'img/s':>9}{'x T=' + str(first):>8}{'peak MiB':>10}{'x T=' + str(first):>8}")
    for method in methods:
        for timesteps in timesteps_list:
            r, one = by[(method, timesteps)], by[(method, first)]
            r["time_ratio"] = r["step_ms"] / one["step_ms"]
            r["memory_ratio"] = r["peak_mib"] / one["peak_mib"]
            print(f"{method:<15}{timesteps:>3}{r['step_ms']:>10.1f}{r['images_per_s']:>9.0f}{r['time_ratio']:>8.2f}"
                  f"{r['peak_mib']:>10.1f}{r['memory_ratio']:>8.2f}")
    targets = {}
    # growth with T from the first T of the multi-step path: at T=1 RateBP runs one fused pass
    # (its RECORD and RATE at once), a cheaper path than every T >= 2 takes
    base = next((t for t in timesteps_list if t >= 2 and t < 8), None)
    if base is not None and ("ratebp", base) in by and ("ratebp", 8) in by:
        rate_base, rate8 = by[("ratebp", base)], by[("ratebp", 8)]
        memory, time_ = rate8["peak_mib"] / rate_base["peak_mib"], rate8["step_ms"] / rate_base["step_ms"]
        targets = {f"ratebp_memory_T8_over_T{base}": memory, f"ratebp_time_T8_over_T{base}": time_,
                   "memory_target": 1.2, "time_target": 2.5, "met": memory <= 1.2 and time_ <= 2.5}
        print(f"\nratebp T=8 vs T={base}: memory {memory:.2f}x (target <= 1.2), "
              f"time {time_:.2f}x (target <= 2.5): {'met' if targets['met'] else 'NOT met'}")
    for timesteps in timesteps_list:
        if ("ratebp", timesteps) in by and ("bptt", timesteps) in by:
            rate, bptt = by[("ratebp", timesteps)], by[("bptt", timesteps)]
            targets[f"ratebp_over_bptt_throughput_T{timesteps}"] = rate["images_per_s"] / bptt["images_per_s"]
            targets[f"ratebp_over_bptt_memory_T{timesteps}"] = rate["peak_mib"] / bptt["peak_mib"]
            print(f"T={timesteps}: ratebp {rate['images_per_s']:.0f} img/s vs bptt {bptt['images_per_s']:.0f} img/s "
                  f"({rate['images_per_s'] / bptt['images_per_s']:.2f}x), memory "
                  f"{rate['peak_mib']:.0f} vs {bptt['peak_mib']:.0f} MiB")
    for timesteps in timesteps_list:
        if ("ratebp", timesteps) in by and ("snntorch-bptt", timesteps) in by:
            speed = by[("snntorch-bptt", timesteps)]["step_ms"] / by[("ratebp", timesteps)]["step_ms"]
            targets[f"ratebp_speed_over_snntorch_bptt_T{timesteps}"] = speed
            print(f"T={timesteps}: snnTorch BPTT step / ratebp step = {speed:.2f}x")
        if ("ratebp", timesteps) in by and ("bptt", timesteps) in by:
            speed = by[("bptt", timesteps)]["step_ms"] / by[("ratebp", timesteps)]["step_ms"]
            targets[f"ratebp_speed_over_bptt_T{timesteps}"] = speed
            print(f"T={timesteps}: bptt step / ratebp step = {speed:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "train_cost", "command": " ".join([Path(sys.executable).name] + sys.argv),
              "model": args.model, "batch_size": args.batch_size, "steps": args.steps, "device": args.device,
              "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
              "amp": args.amp,
              "torch": torch.__version__, "machine": platform.machine(), "load_average": os.getloadavg(),
              "threads": args.threads or torch.get_num_threads(), "repeats": args.repeats,
              "rows": rows, "targets": targets}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
