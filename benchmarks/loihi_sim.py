"""The project's bit-accurate Loihi simulator against Lava's CPU simulator, on the same file and inputs.

    python benchmarks/loihi_sim.py [--checkpoint CKPT] [--model convnet] [--samples 16] [--timesteps 32]

The network is a checkpoint's (exported as ``snnpipe export --target loihi`` would: a netx file for a
chain, a Loihi graph file for a residual network, whose Lava process graph ``lava_runner.py`` builds)
or, by default, a zoo model with seeded weights on the model's default input shape (the zoo's
registry: 1x28x28 for ``convnet``, 1x8x8 for ``mlp``). The inputs are seeded rate-coded spikes. Both
run every sample from rest for T + depth steps:

- Lava: ``Loihi2SimCfg(select_tag="fixed_pt")`` in its own Python 3.10 environment, one sample at a
  time (how Lava runs); its time is measured inside the runner (``seconds_run``: compile and run,
  not Python start-up nor imports), and also as the whole subprocess;
- ours: `LoihiSimulator` on the CPU, the median of 3 runs, twice: all samples as one batch, and one
  sample at a time as Lava runs them (the sum over the samples).

The ratio depends on which of the two and on the network's size: on the digits MLP (138 neurons)
ours batched beat ours one sample at a time 13x, so Lava's time over ours was 124x batched and
9.5x one sample at a time (``reports/bench/loihi_sim_mlp.md``). The table gives both ratios beside
the network's neurons and synapses. Every layer's spikes are compared (they must be equal: otherwise
the timing compares different work). Prints a table and writes ``reports/bench/loihi_sim.json`` and
``.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "loihi_sim.json"


def build_network(args):
    from snnpipe.hw_targets.loihi.quantize import quantize_model
    from snnpipe.models import MODELS, create_model
    from snnpipe.pipeline.checkpoint import Checkpoint

    if args.checkpoint:
        ckpt = Checkpoint.load(args.checkpoint)
        model, shape, name = ckpt.build_model().eval(), tuple(ckpt.data.input_shape), ckpt.model_name
    else:
        torch.manual_seed(0)
        shape = tuple(MODELS[args.model].default_input)
        kwargs = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.model_arg)}
        model, name = create_model(args.model, input_shape=shape, **kwargs).eval(), args.model
    return quantize_model(model, shape, args.timesteps).graph, name


def markdown(row: dict) -> list[str]:
    """The report of one run (a row of the JSON): each runtime's time over ours batched and over ours
    one sample at a time, beside the network's size."""
    work = row["samples"] * row["steps"]
    ours, alone = row["ours_seconds"], row["ours_seconds_per_sample"]

    def ratio(r: float) -> str:
        return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"

    def line(runtime: str, seconds: float) -> str:
        return f"| {runtime} | {seconds:.4g} | {1000 * seconds / work:.4g} | {ratio(seconds / ours)} | {ratio(seconds / alone)} |"

    return [
        f"# Loihi simulator vs Lava ({row['network']}, {row['samples']} samples x {row['steps']} steps)",
        "",
        f"Network: {row['layers']} layers ({row['relays']} relays), {row['neurons']:,} neurons, "
        f"{row['synapses']:,} synapses ({row['format']}).",
        "",
        f"Command: `{row['command']}`; {row['machine']}, torch {row['torch']}, {row['threads']} threads, "
        f"load average {row['load_average']:.2f}.",
        "",
        "| runtime | seconds | per sample-step (ms) | over ours batched | over ours one sample at a time |",
        "| --- | ---: | ---: | ---: | ---: |",
        line("snnpipe LoihiSimulator, batched", ours),
        line("snnpipe LoihiSimulator, one sample at a time (as Lava runs)", alone),
        line("Lava fixed_pt, run (in the runner)", row["lava_seconds_run"]),
        line("Lava fixed_pt, whole subprocess", row["lava_seconds_total"]),
        "",
        f"Spikes equal in every layer: {'yes' if row['spikes_equal'] else 'NO'} ({row['spikes']:,} spikes). Lava's run "
        f"time over ours: {row['speedup_run']:.0f}x batched, {row['speedup_run_per_sample']:.1f}x one sample at a time. "
        f"Target: >= 100x (run time, batched): {'met' if row['met'] else 'NOT met'}.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--timesteps", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.2, help="input spike probability per step")
    parser.add_argument("--lava-python", default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--model-arg", action="append", default=[], help="KEY=VALUE (JSON value), for --model")
    args = parser.parse_args()

    from snnpipe.hw_targets.loihi.graph_file import write_graph
    from snnpipe.hw_targets.loihi.lava_bridge import lava_input, lava_python, run_lava
    from snnpipe.hw_targets.loihi.netx import write_netx
    from snnpipe.hw_targets.loihi.simulator import LoihiSimulator

    net, name = build_network(args)
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(args.timesteps, args.samples, *net.input_shape, generator=generator) < args.rate).float()
    steps = net.steps_for(args.timesteps)
    python = lava_python(args.lava_python)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.h5"
        if net.is_chain():
            write_netx(net.as_network(), path)
        else:
            write_graph(net, path)
        simulator = LoihiSimulator(net)
        simulator.run(x[:, :1])  # warm-up
        ours_times, alone_times, result = [], [], None
        for _ in range(3):
            started = time.perf_counter()
            result = simulator.run(x, record_spikes=True)
            ours_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            for sample in range(args.samples):
                simulator.run(x[:, sample:sample + 1], record_spikes=True)
            alone_times.append(time.perf_counter() - started)
        lava = run_lava(path, lava_input(x, steps), python)
    equal = all(np.array_equal(result.spikes[i].transpose(0, 1).numpy(), lava.spikes[i]) for i in range(len(net.nodes)))
    ours, alone = statistics.median(ours_times), statistics.median(alone_times)
    row = {
        "network": name, "format": "netx" if net.is_chain() else "snnpipe.loihi.graph/1", "layers": len(net.nodes),
        "relays": sum(n.relay for n in net.nodes), "neurons": sum(n.neurons for n in net.nodes),
        "synapses": sum(n.synapses() for n in net.nodes),
        "samples": args.samples, "timesteps": args.timesteps, "steps": steps,
        "spikes": int(sum(int(s.sum()) for s in result.spikes)), "spikes_equal": equal,
        "ours_seconds": ours, "ours_seconds_per_sample": alone,
        "lava_seconds_run": lava.seconds_run, "lava_seconds_total": lava.seconds_total,
        "speedup_run": lava.seconds_run / ours, "speedup_total": lava.seconds_total / ours,
        "speedup_run_per_sample": lava.seconds_run / alone, "speedup_total_per_sample": lava.seconds_total / alone,
        "load_average": os.getloadavg()[0], "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": platform.machine(), "command": " ".join(["python", "benchmarks/loihi_sim.py", *sys.argv[1:]]),
    }
    row["met"] = equal and row["speedup_run"] >= 100
    lines = markdown(row)
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "loihi_sim", **row, "target": 100}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
