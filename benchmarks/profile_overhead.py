"""Profiled inference against plain inference: the same model and the same data, side by side.

    python benchmarks/profile_overhead.py [--model convnet] [--samples 1000] [--batch-size 100] [--repeats 15]

For each encoding (``rate``: 0/1 spikes into every layer; ``direct``: the analog image into the
first layer, which the zoo computes once per batch), the profiled path is ``profile_module`` over
all the batches (counting hooks, the checks of the contract, the per-layer summary and energy), the
plain path ``model(x).mean(0)`` under ``torch.no_grad`` on a copy of the model. They are
interleaved batch by batch: ``profile_module`` reads its batches from a generator that runs the plain
copy on each batch beside it (before it on even batches, after it on odd ones), timing it apart,
so that the drift of a shared machine (plain runs of the same data here vary by 30% within a
minute) falls on both alike. One repeat is one ``profile_module`` call: profiled seconds = its wall
time less the plain runs inside it. The ratio is the median over ``--repeats`` of profiled / plain
(each repeat's ratio is in the JSON). Target: profiled <= 1.15 x plain. The data are the first
``--samples`` Fashion-MNIST test images where the Debian package is installed, else seeded uniform
noise (the JSON says which). Prints a table and writes ``reports/bench/profile_overhead.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Iterator

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
    parser.add_argument("--repeats", type=int, default=15)
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
    twin = copy.deepcopy(model)  # the plain runs: no profiler hooks on it
    images, source = _images(args.samples, shape)
    generator = torch.Generator().manual_seed(0)
    mean, std = [0.5] * shape[0], [0.25] * shape[0]
    cases = {}
    load = os.getloadavg()[0]
    for encoding in ("rate", "direct"):
        batches = [(encode(images[i:i + args.batch_size], encoding, args.timesteps, mean, std, generator),
                    torch.zeros(len(images[i:i + args.batch_size]), dtype=torch.long))
                   for i in range(0, len(images), args.batch_size)]

        def interleaved() -> tuple[float, float]:
            """(plain seconds, profiled seconds) of one profile_module call over the batches."""
            plain = 0.0

            def data() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
                nonlocal plain
                for i, (x, y) in enumerate(batches):
                    if i % 2:
                        yield x, y
                    start = time.perf_counter()
                    twin(x).mean(0)  # under profile_module's no_grad
                    plain += time.perf_counter() - start
                    if not i % 2:
                        yield x, y

            start = time.perf_counter()
            profile_module(model, data(), args.timesteps)
            return plain, time.perf_counter() - start - plain

        interleaved()  # warm up: allocator, first calls
        times: dict[str, list[float]] = {"plain": [], "profiled": []}
        for _ in range(args.repeats):
            plain, profiled = interleaved()
            times["plain"].append(plain)
            times["profiled"].append(profiled)
        medians = {k: statistics.median(v) for k, v in times.items()}
        ratios = [q / p for p, q in zip(times["plain"], times["profiled"])]
        cases[encoding] = {"seconds": times, "median_seconds": medians, "repeat_ratios": ratios,
                           "ratio": statistics.median(ratios)}

    print(f"{args.model}, T={args.timesteps}, {len(images)} samples ({source}), batch {args.batch_size}, "
          f"{args.repeats} repeats, plain and profiled interleaved batch by batch, {torch.get_num_threads()} threads\n")
    print(f"{'encoding':<10}{'plain s':>10}{'profiled s':>12}{'ratio':>8}   target <= {TARGET} (ratio: median of the repeats)")
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
