"""benchmarks/train_cost.py on a machine without the device it is asked for: one line, nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "train_cost.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the benchmark would run")
def test_train_cost_on_cuda_without_cuda_refuses_in_one_line(tmp_path):
    out = tmp_path / "cost.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--out", str(out)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "train_cost.py: device 'cuda' asked for, but torch sees no CUDA device; use --device cpu\n"
    assert not out.exists()
