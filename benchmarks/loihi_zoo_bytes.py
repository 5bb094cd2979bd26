"""The sha256 of the Loihi files (netx and graph) of every zoo model, exported with seeded weights.

A change to how the Loihi export reads a model (issue 24: the quantizer over the typed graph IR in
place of the module walk) must leave these files byte-identical. Record them on the old code, then
compare on the new::

    python benchmarks/loihi_zoo_bytes.py --write /tmp/loihi_zoo_bytes.json   # on main
    python benchmarks/loihi_zoo_bytes.py --check /tmp/loihi_zoo_bytes.json   # on the branch

Every case builds the model with ``torch.manual_seed(0)``, gives each BatchNorm seeded statistics
(so that folding changes the weights), and exports it through the registered exporter: rate input
(a netx file for chains, a graph file for residual nets) and direct input (a graph file with graded
input), with four seeded test samples calibrating the readout and the graded input. The big zoo
models (resnet18, resnet19, vgg11 at full width) export without data: quantized, not simulated.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

from snnpipe.hw_targets import ExportRequest, find_exporter
from snnpipe.models import create_model

#: (case name, model, model arguments, input shape, encoding, with data)
CASES = [
    ("mlp-rate", "mlp", {"hidden": (32, 16)}, (1, 8, 8), "rate", True),
    ("mlp-direct", "mlp", {"hidden": (32, 16)}, (1, 8, 8), "direct", True),
    ("mlp-delay-rate", "mlp", {"hidden": (16,), "delay_shift": True}, (1, 8, 8), "rate", True),
    ("mlp-bn-rate", "mlp", {"hidden": (16,), "batch_norm": True}, (1, 8, 8), "rate", True),
    ("convnet-rate", "convnet", {"channels": (4, 8), "hidden": 16}, (1, 12, 12), "rate", True),
    ("convnet-direct", "convnet", {"channels": (4, 8), "hidden": 16}, (1, 12, 12), "direct", True),
    ("vgg-rate", "vgg", {"width": 0.25}, (1, 12, 12), "rate", True),
    ("vgg4-direct", "vgg4", {"width": 0.125}, (1, 16, 16), "direct", True),
    ("vgg11-rate", "vgg11", {"width": 0.0625}, (3, 32, 32), "rate", True),
    ("resnet-rate", "resnet", {"channels": (4, 8), "hidden": 16}, (1, 12, 12), "rate", True),
    ("resnet-direct", "resnet", {"channels": (4, 8), "hidden": 16}, (1, 12, 12), "direct", True),
    ("resnet-2blocks-rate", "resnet", {"channels": (4,), "blocks": 2, "hidden": 8}, (1, 8, 8), "rate", True),
    ("resnet-delay-rate", "resnet", {"channels": (4, 8), "hidden": 16, "delay_shift": True}, (1, 12, 12), "rate", True),
    ("resnet18-rate", "resnet18", {}, (3, 32, 32), "rate", False),
    ("resnet19-direct", "resnet19", {}, (3, 32, 32), "direct", False),
]
TIMESTEPS = 4
SAMPLES = 4


def _model(name: str, args: dict, input_shape: tuple[int, ...]):
    torch.manual_seed(0)
    model = create_model(name, input_shape=input_shape, num_classes=10, **args)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return model.eval()


def _batches(input_shape: tuple[int, ...], encoding: str):
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(TIMESTEPS, SAMPLES, *input_shape, generator=generator)
    if encoding == "rate":
        x = (x < 0.3).float()
    else:
        x = x[:1].expand(TIMESTEPS, *x.shape[1:]) * 2 - 1
    y = torch.randint(0, 10, (SAMPLES,), generator=generator)
    return lambda: iter([(x, y)])


def digests(names: list[str] | None = None) -> dict[str, str]:
    """Case name -> sha256 of the file the Loihi exporter writes for it."""
    entry = find_exporter("loihi")
    options = entry.parse_options({"max_drop": 100.0})
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case, name, args, shape, encoding, with_data in CASES:
            if names and case not in names:
                continue
            out = Path(tmp) / f"{case}.net.h5"
            request = ExportRequest(model=_model(name, args, shape), input_shape=shape, timesteps=TIMESTEPS,
                                    encoding=encoding, out=out, options=options,
                                    batches=_batches(shape, encoding) if with_data else None,
                                    metadata={"dataset": "seeded", "data_seed": 0})
            entry.fn(request)
            result[case] = hashlib.sha256(out.read_bytes()).hexdigest()
            print(case, result[case], flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="record the digests here")
    group.add_argument("--check", type=Path, help="compare with the digests recorded here")
    parser.add_argument("cases", nargs="*", help="only these cases")
    args = parser.parse_args()
    got = digests(args.cases)
    if args.write:
        args.write.write_text(json.dumps(got, indent=1) + "\n")
        return 0
    want = json.loads(args.check.read_text())
    differ = [case for case in got if got[case] != want.get(case)]
    print("byte-identical" if not differ else f"differ: {', '.join(differ)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
