"""The thread policy (`pipeline/process.py`): one thread for small steps or a busy machine, every
idle core otherwise, and the user's --threads or OMP_NUM_THREADS above both."""

import subprocess
import sys

from snnpipe.pipeline import process

_PROBE = """
import atexit, os, sys
def report():
    import torch
    sys.stderr.write("THREADS=%d WAIT=%s\\n" % (torch.get_num_threads(), os.environ.get("OMP_WAIT_POLICY")))
atexit.register(report)
sys.argv = ["snnpipe"] + sys.argv[1:]
from snnpipe.pipeline.cli import main
main()
"""


def test_small_steps_take_one_thread_large_ones_the_idle_cores():
    assert process.threads_for(process.PARALLEL_FROM - 1, cores=2, busy=0) == 1
    assert process.threads_for(process.PARALLEL_FROM, cores=2, busy=0) == 2
    assert process.threads_for(process.PARALLEL_FROM, cores=2, busy=1) == 1
    assert process.threads_for(10 ** 9, cores=2, busy=7) == 1
    assert process.threads_for(10 ** 9, cores=16, busy=3) == 13


def test_the_users_choice_wins(monkeypatch):
    monkeypatch.delenv(process.THREADS_VARIABLE, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert process.chosen_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert process.chosen_threads() == 3
    monkeypatch.setenv(process.THREADS_VARIABLE, "2")
    assert process.chosen_threads() == 2


def _train(tmp_path, *args):
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", process.THREADS_VARIABLE)}
    done = subprocess.run([sys.executable, "-c", _PROBE, "train", "--epochs", "1", "--model-arg", "hidden=[8]",
                           "--quiet", *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_snnpipe_train_sets_the_policy_and_threads_overrides_it(tmp_path):
    assert "THREADS=1 WAIT=passive" in _train(tmp_path)  # digits MLP: 32 x 8 values a step
    assert "THREADS=2 WAIT=passive" in _train(tmp_path, "--threads", "2")
