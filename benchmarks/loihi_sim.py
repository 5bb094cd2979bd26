"""The project's bit-accurate Loihi simulator against Lava's CPU simulator, on the same file and inputs.

    python benchmarks/loihi_sim.py [--checkpoint CKPT] [--model convnet] [--samples 16] [--timesteps 32]

The network is a checkpoint's (exported as ``snnpipe export --target loihi`` would: a netx file for a
chain, a Loihi graph file for a residual network, whose Lava process graph ``lava_runner.py`` builds)
or, by default, a zoo model with seeded weights on Fashion-MNIST's input shape. The inputs are seeded
rate-coded spikes. Both run every sample from rest for T + depth steps:

- Lava: ``Loihi2SimCfg(select_tag="fixed_pt")`` in its own Python 3.10 environment, one sample at a
  time (how Lava runs); its time is measured inside the runner (``seconds_run``: compile and run,
  not Python start-up nor imports), and also as the whole subprocess;
- ours: `LoihiSimulator`, all samples as one batch, on the CPU, the median of 3 runs.

Every layer's spikes are compared (they must be equal: otherwise the timing compares different
work). Prints a table and writes ``reports/bench/loihi_sim.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
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
    from snnpipe.models import create_model
    from snnpipe.pipeline.checkpoint import Checkpoint

    if args.checkpoint:
        ckpt = Checkpoint.load(args.checkpoint)
        model, shape, name = ckpt.build_model().eval(), tuple(ckpt.data.input_shape), ckpt.model_name
    else:
        torch.manual_seed(0)
        shape = (1, 28, 28)
        kwargs = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.model_arg)}
        model, name = create_model(args.model, input_shape=shape, **kwargs).eval(), args.model
    return quantize_model(model, shape, args.timesteps).graph, name


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
        ours_times, result = [], None
        for _ in range(3):
            started = time.perf_counter()
            result = simulator.run(x, record_spikes=True)
            ours_times.append(time.perf_counter() - started)
        lava = run_lava(path, lava_input(x, steps), python)
    equal = all(np.array_equal(result.spikes[i].transpose(0, 1).numpy(), lava.spikes[i]) for i in range(len(net.nodes)))
    ours = statistics.median(ours_times)
    row = {
        "network": name, "format": "netx" if net.is_chain() else "snnpipe.loihi.graph/1", "layers": len(net.nodes),
        "relays": sum(n.relay for n in net.nodes), "neurons": sum(n.neurons for n in net.nodes),
        "samples": args.samples, "timesteps": args.timesteps, "steps": steps,
        "spikes": int(sum(int(s.sum()) for s in result.spikes)), "spikes_equal": equal,
        "ours_seconds": ours, "lava_seconds_run": lava.seconds_run, "lava_seconds_total": lava.seconds_total,
        "speedup_run": lava.seconds_run / ours, "speedup_total": lava.seconds_total / ours,
    }
    met = equal and row["speedup_run"] >= 100
    command = " ".join(["python", "benchmarks/loihi_sim.py", *sys.argv[1:]])
    lines = [
        f"# Loihi simulator vs Lava ({name}, {args.samples} samples x {steps} steps)",
        "",
        f"Command: `{command}`; {platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| runtime | seconds | per sample-step (ms) | speedup |",
        "| --- | ---: | ---: | ---: |",
        f"| snnpipe LoihiSimulator (batched) | {ours:.4f} | {1000 * ours / (args.samples * steps):.4f} | 1x |",
        f"| Lava fixed_pt, run (in the runner) | {lava.seconds_run:.2f} | "
        f"{1000 * lava.seconds_run / (args.samples * steps):.2f} | {row['speedup_run']:.0f}x |",
        f"| Lava fixed_pt, whole subprocess | {lava.seconds_total:.2f} | "
        f"{1000 * lava.seconds_total / (args.samples * steps):.2f} | {row['speedup_total']:.0f}x |",
        "",
        f"Spikes equal in every layer: {'yes' if equal else 'NO'} ({row['spikes']:,} spikes). "
        f"Target: >= 100x (run time): {'met' if met else 'NOT met'}.",
    ]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "loihi_sim", "command": command, **row, "target": 100,
                                    "met": met}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
