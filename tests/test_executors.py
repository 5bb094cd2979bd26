"""Sweep cells on executors: 2 local workers and a local Ray of 2 CPUs give the sequential run's
``sweep.json`` and checkpoints; a worker killed mid-cell is one failed line, and the run resumed gives
them too, as does a run on workers stopped by SIGTERM; a cell that fails is one line while the
others finish; the refusals are one line."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.executors import ExecutorError, LocalWorkers, Sequential, make_executor
from snnpipe.pipeline.sweep import CELL_RESULT, Cell, CellJob, run_cells

RECIPE = {"name": "cells", "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [16]},
                                        "timesteps": 2, "epochs": 3, "batch_size": 16},
          "steps": [{"train": {"stage": "bptt", "sweep": {"seed": [0, 1, 2]}}}]}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _snnpipe(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnpipe", "run", *args], capture_output=True, text=True, env=ENV,
                          timeout=600, **kw)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "cells.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


@pytest.fixture(scope="module")
def sequential(recipe) -> Path:
    """The reference: the sweep in one process, one cell after another, at one thread."""
    folder = recipe.parent / "sequential"
    done = _snnpipe(str(recipe), "-o", str(folder), "--threads", "1")
    assert done.returncode == 0, done.stderr
    return folder


def _cells(folder: Path) -> list[dict]:
    """sweep.json's cells but for what no two runs share: the seconds, the run folder's name."""
    cells = json.loads((folder / "sweep.json").read_text())["cells"]
    return [{**c, "seconds": None, "checkpoint": str(Path(c["checkpoint"]).relative_to(folder))} for c in cells]


def _same(a, b) -> bool:
    """Equal, tensors bit for bit, but for timings and the paths of the run folder."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        keep = [k for k in a if "seconds" not in str(k) and k not in ("out", "resume")]
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in keep)
    if isinstance(a, (list, tuple)):
        return isinstance(b, type(a)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def assert_same_outputs(reference: Path, folder: Path) -> None:
    """Same sweep.json (settings and cells) and, per cell, the same checkpoint: weights, optimizer
    state, history and per-epoch records bit for bit, but for timings and paths."""
    ours, theirs = json.loads((reference / "sweep.json").read_text()), json.loads((folder / "sweep.json").read_text())
    assert theirs["settings"] == ours["settings"]
    assert _cells(folder) == _cells(reference)
    for cell in ours["cells"]:
        a, b = (torch.load(Path(f) / "bptt" / cell["cell"] / "checkpoint.pt", weights_only=False) for f in (reference, folder))
        assert _same(a, b), cell["cell"]
        assert len(a["training"]["epochs"]) == 3 and a["training"]["optimizer"]["state"]


@pytest.mark.slow
def test_two_local_workers_give_the_sequential_runs_outputs(recipe, sequential):
    folder = recipe.parent / "workers"
    done = _snnpipe(str(recipe), "-o", str(folder), "--workers", "2")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if " cell " in line]
    assert len(lines) == 3 and lines[-1].startswith("bptt cell 3/3 ") and lines[-1].endswith("0 running, 0 left)")
    assert any("1 running" in line for line in lines[:2])  # the two workers ran side by side
    assert_same_outputs(sequential, folder)


@pytest.mark.slow
def test_local_ray_of_two_cpus_gives_the_sequential_runs_outputs(recipe, sequential):
    pytest.importorskip("ray")
    folder = recipe.parent / "ray"
    done = _snnpipe(str(recipe), "-o", str(folder), "--executor", "ray", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert_same_outputs(sequential, folder)


def _workers_of(pid: int) -> list[int]:
    """The spawned worker processes among ``pid``'s children."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.slow
def test_a_worker_killed_mid_cell_fails_that_cell_and_the_run_resumed_gives_the_same_outputs(recipe, sequential):
    folder = recipe.parent / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "snnpipe", "run", str(recipe), "-o", str(folder), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    first = folder / "bptt" / "seed-0"
    deadline = time.monotonic() + 300
    log = first / "metrics.jsonl"  # its first line is written just after the first epoch's checkpoint
    while proc.poll() is None and time.monotonic() < deadline and not (log.exists() and log.read_text().endswith("\n")):
        time.sleep(0.01)
    workers = _workers_of(proc.pid)
    for pid in workers:  # both cells running now die, seed-0 after its first epoch's checkpoint and line
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert workers and not (first / CELL_RESULT).exists(), "killed too late: the cell had finished"
    assert proc.returncode == 1, err
    assert "FAILED bptt cell seed-0: its worker died (killed by SIGKILL); resume the run" in out
    assert err.strip().splitlines()[-1].startswith("Error: ") and f"--resume {folder}" in err
    assert "failed" in (folder / "sweep.md").read_text()
    first_epoch = (first / "metrics.jsonl").read_text().splitlines()[0]

    done = _snnpipe(str(recipe), "--resume", str(folder))
    assert done.returncode == 0, done.stderr
    assert (first / "metrics.jsonl").read_text().splitlines()[0] == first_epoch  # continued, not trained anew
    assert_same_outputs(sequential, folder)


def test_a_cell_that_fails_is_one_line_while_the_others_finish(tmp_path):
    config = TrainConfig(dataset="digits", model="mlp", model_args={"hidden": (8,)}, timesteps=2, epochs=1,
                         batch_size=64, train_samples=128, test_samples=64)
    jobs = [CellJob(Cell("bptt", f"seed-{s}", {"seed": s}), replace(config, seed=s, out=str(tmp_path / f"seed-{s}")))
            for s in (0, 1)]
    (tmp_path / "seed-0").mkdir()
    (tmp_path / "seed-0" / "checkpoint.pt").write_bytes(b"not a checkpoint")  # an interrupted cell's, damaged
    results = run_cells(jobs, Sequential())
    assert results[0].failed and "\n" not in results[0].failed and "checkpoint.pt" in results[0].failed
    assert results[0].test_acc is None and not (tmp_path / "seed-0" / CELL_RESULT).exists()  # redone on resume
    assert results[1].failed is None and (tmp_path / "seed-1" / CELL_RESULT).exists()


@pytest.mark.parametrize("args,message", [
    (("local", 0, None), "--workers 0 is out of range: at least 1"),
    (("local", 2, "head:6379"), "--address names a Ray cluster: give it with --executor ray"),
])
def test_a_bad_executor_option_is_refused_in_one_line(args, message):
    with pytest.raises(ExecutorError, match=message):
        make_executor(*args, threads=None)


def test_one_worker_is_the_sequential_path_and_more_are_processes_of_one_thread():
    assert isinstance(make_executor("local", None, None, None), Sequential)
    assert isinstance(make_executor("local", 1, None, None), Sequential)
    workers = make_executor("local", 3, None, None)
    assert isinstance(workers, LocalWorkers) and (workers.workers, workers.threads) == (3, 1)


def test_ray_not_installed_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ExecutorError, match=r"^--executor ray needs Ray, which is not installed: pip install 'snnpipe\[ray\]'$"):
        make_executor("ray", 2, None, None)


def test_a_ray_address_nothing_listens_on_is_one_line(tmp_path):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as free:  # a port that was free a moment ago: nothing listens there
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    executor = make_executor("ray", 2, f"127.0.0.1:{port}", None)
    with pytest.raises(ExecutorError, match=rf"^cannot reach the Ray cluster at 127.0.0.1:{port} \(Connection refused\); "
                                            "start it with 'ray start --head'"):
        list(executor.map([CellJob(Cell("bptt", "seed-0", {"seed": 0}), TrainConfig(out=str(tmp_path / "seed-0")))]))
    assert not (tmp_path / "seed-0").exists()  # refused before any cell ran


@pytest.mark.slow
def test_a_run_on_workers_stopped_by_sigterm_stops_them_in_one_line_and_resumes_to_the_same_outputs(recipe, sequential):
    folder = recipe.parent / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "snnpipe", "run", str(recipe), "-o", str(folder), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    first = folder / "bptt" / "seed-0"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not (first / "checkpoint.pt").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert not (first / CELL_RESULT).exists(), "stopped too late: the cell had finished"

    done = _snnpipe(str(recipe), "--resume", str(folder))
    assert done.returncode == 0, done.stderr
    assert_same_outputs(sequential, folder)
