"""What each chip's quantization costs the digits default student in test accuracy.

    python benchmarks/chip_quantization.py [CHECKPOINT]

CHECKPOINT: the default recipe's student (``snnpipe run`` writes ``runs/digits-default/student/checkpoint.pt``).
Loihi and Loihi 2 through the export's fixed-point simulator; the other chips with every weight
rounded to the chip's weight bits (`snnpipe.pipeline.fit.chip_accuracy`). Writes
``reports/bench/chip_quantization.json`` and ``.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from snnpipe.pipeline.fit import chip_accuracy, fit_file

OUT = Path(__file__).resolve().parents[1] / "reports" / "bench"


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "runs/digits-default/student/checkpoint.pt"
    costs = chip_accuracy(path)
    fits = {r.chip: r.fits for r in fit_file(path, list(costs)).fits}
    result = {"checkpoint": str(path), "chips": {name: {**cost, "fits": fits[name]} for name, cost in costs.items()}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "chip_quantization.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# The digits default student under each chip's quantization", "",
             "| chip | fits | weight bits | float | on the chip | drop (pt) | how |", "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {name} | {'yes' if c['fits'] else 'no'} | {c['weight_bits']} | {c['float_accuracy']:.2%} | "
              f"{c['chip_accuracy']:.2%} | {c['drop_pt']:+.2f} | {c['how']} |" for name, c in result["chips"].items()]
    (OUT / "chip_quantization.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
