"""The scale of joint's L2 hint: our mean against eq. (9)'s squared Frobenius norm, at
initialization and in training.

    OMP_NUM_THREADS=1 python benchmarks/joint_hint.py [--seeds 0,1,2] [--epochs 10]

1. At initialization, on one Fashion-MNIST batch of 128 (``vgg --model-arg
   config=[16,"A",32,"A",64,"A",128]``, T=4 direct, 4 branches): the loss terms of `joint_loss`
   (all CE terms, all KL terms) beside the hint summed over the branches in three reductions: the
   mean over the B x C_j elements (ours), per sample (sum over the features, mean over the batch)
   and eq. (9)'s squared Frobenius norm over the whole (B, C_j) matrix.
2. In training, on digits (``convnet``, T=4 direct, ``--epochs``, each seed): ``joint`` as it is,
   and with the hint per sample (lambda2 = 0.3 on sum_j mean_b ||f_ANN,j,b - f_SNN,j,b||^2, eq. (9)
   with the batch mean every other term has), swapped in for this run only.

Writes ``reports/bench/joint_hint.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent.parent / "reports" / "bench" / "joint_hint"
VGG4 = {"config": [16, "A", 32, "A", 64, "A", 128]}


def scale_at_init() -> dict:
    from snnpipe.models import create_model
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.data import load_dataset
    from snnpipe.pipeline.encoding import encode, normalize
    from snnpipe.pipeline.stages import get_stage
    from snnpipe.pipeline.stages.base import forward_blocks
    from snnpipe.pipeline.stages.joint import swapped_weights
    from snnpipe.pipeline.stages.losses import kl_divergence

    data = load_dataset("fashion-mnist", None, seed=0)
    images, labels = data.train_x[:128], data.train_y[:128]
    torch.manual_seed(0)
    model = create_model("vgg", **VGG4)
    stage = get_stage("joint")(model, TrainConfig(dataset="fashion-mnist", model="vgg", model_args=VGG4, timesteps=4),
                               data.spec)
    stage.train()
    x = encode(images, "direct", 4, data.spec.mean, data.spec.std)
    with torch.no_grad():
        with swapped_weights(stage.model, stage.composed(stage.sigma_snn)):
            logits, snn_blocks = forward_blocks(stage.model, x, "bptt")
        with swapped_weights(stage.ann, stage.composed(stage.sigma_ann)):
            ann_logits, ann_blocks = forward_blocks(
                stage.ann, normalize(images, data.spec.mean, data.spec.std).unsqueeze(0), "bptt")
        snn_f = [b.features(snn_blocks[i]) for b, i in zip(stage.snn_branches, stage.points)]
        ann_f = [b.features(ann_blocks[i]) for b, i in zip(stage.ann_branches, stage.points)]
        snn_out = [b.fc(f) for b, f in zip(stage.snn_branches, snn_f)] + [logits]
        ann_out = [b.fc(f) for b, f in zip(stage.ann_branches, ann_f)] + [ann_logits]
        return {
            "widths": [f.shape[1] for f in snn_f], "batch": len(labels),
            "ce_all": sum(F.cross_entropy(o, labels) for o in snn_out + ann_out).item(),
            "kl_all": sum(kl_divergence(a, s).mean() for a, s in zip(ann_out, snn_out)).item(),
            "hint_mean": sum(F.mse_loss(s, a) for a, s in zip(ann_f, snn_f)).item(),
            "hint_per_sample": sum((s - a).pow(2).sum(1).mean() for a, s in zip(ann_f, snn_f)).item(),
            "hint_frobenius": sum((s - a).pow(2).sum() for a, s in zip(ann_f, snn_f)).item(),
        }


def _per_sample_joint_loss(original):
    def joint_loss(ann_outputs, snn_outputs, labels, ann_features=(), snn_features=(), lambda1=1.0, lambda2=0.3):
        rest = original(ann_outputs, snn_outputs, labels, (), (), lambda1, lambda2)
        return rest + lambda2 * sum((s - a.detach()).pow(2).sum(1).mean() for a, s in zip(ann_features, snn_features))
    return joint_loss


def train_both(seeds: list[int], epochs: int) -> list[dict]:
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.stages import joint as joint_module
    from snnpipe.pipeline.train import train

    rows = []
    original = joint_module.joint_loss
    with tempfile.TemporaryDirectory() as runs:
        for seed in seeds:
            for form in ("mean", "per-sample"):
                print(f"training joint, hint {form}, seed {seed} ...", file=sys.stderr, flush=True)
                joint_module.joint_loss = original if form == "mean" else _per_sample_joint_loss(original)
                try:
                    config = TrainConfig(dataset="digits", model="convnet", stage="joint", epochs=epochs, timesteps=4,
                                         seed=seed, out=f"{runs}/{form}-{seed}")
                    last = train(config, progress=False).history[-1]
                finally:
                    joint_module.joint_loss = original
                rows.append({"hint": form, "seed": seed, "test_acc": last["test_acc"], "firing_rate": last["firing_rate"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    from snnpipe.pipeline.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    init = scale_at_init()
    rows = train_both([int(s) for s in args.seeds.split(",") if s], args.epochs)
    means = {form: {k: statistics.mean(r[k] for r in rows if r["hint"] == form) for k in ("test_acc", "firing_rate")}
             for form in ("mean", "per-sample")}
    command = " ".join(["python", "benchmarks/joint_hint.py"] + sys.argv[1:])
    lines = [
        "# joint's L2 hint: mean against eq. (9)'s squared Frobenius norm", "",
        f"`{command}`; load average {os.getloadavg()[0]:.2f}.", "",
        f"At initialization, Fashion-MNIST batch of {init['batch']}, `vgg` {json.dumps(VGG4['config'])}, T=4 direct, "
        f"branch widths {init['widths']}:", "",
        "| term | value | x lambda (1 for CE, lambda1 = 1, lambda2 = 0.3) |", "| --- | ---: | ---: |",
        f"| all CE terms | {init['ce_all']:.3f} | {init['ce_all']:.3f} |",
        f"| all KL terms | {init['kl_all']:.3f} | {init['kl_all']:.3f} |",
        f"| hint, mean over elements (ours) | {init['hint_mean']:.4f} | {0.3 * init['hint_mean']:.4f} |",
        f"| hint per sample (sum over features, batch mean) | {init['hint_per_sample']:.3f} | {0.3 * init['hint_per_sample']:.3f} |",
        f"| hint, eq. (9) squared Frobenius norm | {init['hint_frobenius']:.1f} | {0.3 * init['hint_frobenius']:.1f} |",
        "", f"Trained on digits, `convnet`, T=4 direct, {args.epochs} epochs:", "",
        "| hint | seed | test accuracy | firing rate |", "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {r['hint']} | {r['seed']} | {100 * r['test_acc']:.2f}% | {r['firing_rate']:.4f} |" for r in rows]
    lines += [f"| {form}, mean of seeds | | {100 * m['test_acc']:.2f}% | {m['firing_rate']:.4f} |" for form, m in means.items()]
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".md").write_text(text)
    OUT.with_suffix(".json").write_text(json.dumps(
        {"benchmark": "joint_hint", "command": command, "at_init": init, "training": rows, "training_means": means,
         "load_average": os.getloadavg()}, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
