"""Where one training epoch's time goes: data, encoding, forward, backward, optimizer, test, checkpoint.

    python benchmarks/epoch_profile.py [--dataset digits] [--stage bptt] [-T 4] [--encoding direct] [--epochs 1]

Runs ``train()`` as ``snnpipe train`` does (thread policy included) under ``cProfile`` and splits
the wall time of the run by the functions it spends it in (cumulative time, so that each share
includes what it calls): encoding a batch (`train.prepare_input`), indexing the batch out of the
training set, the stage's forward pass, ``backward``, the optimizer step, the per-epoch test
(`train.evaluate`), the checkpoint write, the memory check, and the building of the optimizer (where
torch imports ``torch._dynamo``, once a process). What is left is the first imports of snnpipe's
modules, Python and bookkeeping. Prints a table
and writes ``reports/bench/epoch_profile.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "epoch_profile.json"
#: share name -> (file suffix, function name) whose cumulative time it is
SHARES = {
    "encode (prepare_input)": ("pipeline/train.py", "prepare_input"),
    "forward (training_step)": ("pipeline/train.py", "forward"),
    "backward": ("torch/_tensor.py", "backward"),
    "optimizer step": ("torch/optim/optimizer.py", "wrapper"),
    "test set (evaluate)": ("pipeline/train.py", "evaluate"),
    "checkpoint write": ("pipeline/train.py", "_save"),
    "data load (load_dataset)": ("pipeline/data.py", "load_dataset"),
    "memory check (model_size)": ("pipeline/memory.py", "model_size"),
    "optimizer built (torch imports torch._dynamo)": ("torch/optim/optimizer.py", "__init__"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--stage", default="bptt")
    parser.add_argument("-T", "--timesteps", type=int, default=4)
    parser.add_argument("--encoding", default="direct")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from snnpipe.pipeline import process

    process.start()
    import torch

    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.train import train

    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(dataset=args.dataset, stage=args.stage, timesteps=args.timesteps, encoding=args.encoding,
                             epochs=args.epochs, out=str(Path(folder) / "run"))
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        ckpt = train(config, progress=False)
        profiler.disable()
        wall = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, ncalls, tottime, cumtime, callers)
    shares = {}
    for share, (suffix, name) in SHARES.items():
        shares[share] = sum(v[3] for (file, _line, fn), v in stats.items() if fn == name and file.endswith(suffix))
    steps = sum(v[1] for (file, _line, fn), v in stats.items() if fn == "forward" and file.endswith("pipeline/train.py"))
    print(f"{args.dataset}, {args.stage}, T={args.timesteps}, {args.encoding}, {args.epochs} epoch(s), {steps} steps, "
          f"{torch.get_num_threads()} thread(s): {wall:.2f} s wall (under cProfile)\n")
    print(f"{'share':<46}{'seconds':>9}{'of wall':>9}")
    for share, seconds in shares.items():
        print(f"{share:<46}{seconds:>9.3f}{seconds / wall:>9.1%}")
    other = wall - sum(shares.values())
    print(f"{'other (imports, Python, bookkeeping)':<46}{other:>9.3f}{other / wall:>9.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "epoch_profile", "command": " ".join([Path(sys.executable).name] + sys.argv), "wall_s": wall,
        "threads": torch.get_num_threads(), "steps": steps, "test_acc": ckpt.history[-1]["test_acc"],
        "shares_s": shares, "other_s": other}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
