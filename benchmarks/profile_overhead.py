"""Profiled inference against plain inference: the same model and the same data, side by side.

    python benchmarks/profile_overhead.py [--model convnet] [--samples 1000] [--batch-size 100] [--repeats 9]

For each encoding (``rate``: 0/1 spikes into every layer; ``direct``: the analog image into the
first layer, which the zoo computes once per batch), the plain path runs ``model(x).mean(0)`` under
``torch.no_grad``, the profiled path ``profile_module`` on the same batches (counting hooks, the
checks of the contract, the per-layer summary). They run in back-to-back pairs, ``--repeats``
pairs, each first in half of them; the ratio is the median over the pairs of profiled / plain
(the medians of each are printed too). Target: profiled <= 1.15 x plain. The data are the first ``--samples``
Fashion-MNIST test images where the Debian package is installed, else seeded uniform noise (the
JSON says which). Prints a table and writes ``reports/bench/profile_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "profile_overhead.json"
TARGET = 1.15


def _images(samples: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, str]:
    from snnpipe.errors import SnnpipeError
    from snnpipe.pipeline.data import load_dataset

    try:
        data = load_dataset("fashion-mnist")
        if tuple(data.spec.input_shape) == shape:
            return data.test_x[:samples], "fashion-mnist test images"
    except SnnpipeError:
        pass
    return torch.rand(samples, *shape, generator=torch.Generator().manual_seed(0)), "uniform noise (seed 0)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from snnpipe.models import MODELS, create_model
    from snnpipe.pipeline.encoding import encode
    from snnpipe.pipeline.profile import profile_module
    from snnpipe.pipeline.process import tune_cpu_allocator

    tune_cpu_allocator()
    torch.manual_seed(0)
    shape = tuple(MODELS[args.model].default_input)
    model = create_model(args.model).eval()
    images, source = _images(args.samples, shape)
    generator = torch.Generator().manual_seed(0)
    mean, std = [0.5] * shape[0], [0.25] * shape[0]
    cases = {}
    load = os.getloadavg()[0]
    for encoding in ("rate", "direct"):
        batches = [(encode(images[i:i + args.batch_size], encoding, args.timesteps, mean, std, generator),
                    torch.zeros(len(images[i:i + args.batch_size]), dtype=torch.long))
                   for i in range(0, len(images), args.batch_size)]

        def plain() -> None:
            with torch.no_grad():
                for x, _ in batches:
                    model(x).mean(0)

        def profiled() -> None:
            profile_module(model, batches, args.timesteps)

        plain(), profiled()  # warm up: allocator, fan-out caches of the first call
        times: dict[str, list[float]] = {"plain": [], "profiled": []}
        pairs = [("plain", plain), ("profiled", profiled)]
        for repeat in range(args.repeats):
            for name, fn in pairs if repeat % 2 == 0 else pairs[::-1]:  # each goes first half the time
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        medians = {k: statistics.median(v) for k, v in times.items()}
        # the ratio within each pair, run back to back, cancels the drift of a shared machine
        ratios = [q / p for p, q in zip(times["plain"], times["profiled"])]
        cases[encoding] = {"seconds": times, "median_seconds": medians, "pair_ratios": ratios,
                           "ratio": statistics.median(ratios)}

    print(f"{args.model}, T={args.timesteps}, {len(images)} samples ({source}), batch {args.batch_size}, "
          f"{args.repeats} back-to-back pairs, {torch.get_num_threads()} threads\n")
    print(f"{'encoding':<10}{'plain s':>10}{'profiled s':>12}{'ratio':>8}   target <= {TARGET} (ratio: median of the pairs)")
    for encoding, case in cases.items():
        m = case["median_seconds"]
        print(f"{encoding:<10}{m['plain']:>10.3f}{m['profiled']:>12.3f}{case['ratio']:>8.3f}   "
              f"{'met' if case['ratio'] <= TARGET else 'NOT met'}")
    report = {
        "benchmark": "profile_overhead",
        "command": " ".join(["python", "benchmarks/profile_overhead.py", *sys.argv[1:]]),
        "model": args.model, "timesteps": args.timesteps, "samples": len(images), "data": source,
        "batch_size": args.batch_size, "repeats": args.repeats, "target": TARGET, "cases": cases,
        "met": all(case["ratio"] <= TARGET for case in cases.values()),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "load_average_at_start": load,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
