"""Sweep cells on executors: 2 local workers and a local Ray of 2 CPUs give the sequential run's
``sweep.json`` and checkpoints; a worker killed mid-cell is one failed line, and the run resumed gives
them too, as does a run on workers stopped by SIGTERM; a cell that fails is one line while the
others finish; the refusals are one line. Cells on CUDA take a GPU each: a local worker slot's by
``CUDA_VISIBLE_DEVICES``, on Ray ``num_gpus=1`` (a faked GPU count: no GPU is needed here)."""

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
from snnpipe.pipeline.executors import ExecutorError, LocalWorkers, RayCells, Sequential, make_executor, takes_gpu, visible_gpus
from snnpipe.pipeline.sweep import CELL_RESULT, Cell, CellJob, CellResult, run_cells

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


def _fake_gpus(monkeypatch, count: int, visible: str | None) -> None:
    """This process sees ``count`` CUDA devices, given as ``visible`` (CUDA_VISIBLE_DEVICES; None: unset)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)


@pytest.mark.parametrize("count,visible,expected", [
    (2, None, ["0", "1"]), (2, "5,7", ["5", "7"]), (1, "5,7", ["5"]), (0, None, []), (0, "5", []),
])
def test_visible_gpus_are_named_as_a_worker_is_given_them(monkeypatch, count, visible, expected):
    _fake_gpus(monkeypatch, count, visible)
    assert visible_gpus() == expected


@pytest.mark.parametrize("device,gpus,expected", [
    ("cuda", 2, True), ("auto", 2, True), ("cpu", 2, False), ("cuda:1", 2, False),  # cuda:N names its own GPU
    ("auto", 0, False), ("cuda", 0, False),  # no GPU to give: a cuda cell fails in one line, as training does
])
def test_a_cell_takes_a_gpu_on_cuda_or_auto_where_there_are_gpus(device, gpus, expected):
    assert takes_gpu(TrainConfig(device=device), gpus) is expected


def _probe(job: CellJob) -> CellResult:
    """A worker's cell that records the GPUs its process sees, then waits for the file its values name."""
    out = Path(job.config.out)
    out.mkdir(parents=True)
    (out / "env.json").write_text(json.dumps(os.environ.get("CUDA_VISIBLE_DEVICES")))
    deadline = time.monotonic() + 120
    while job.cell.values["wait_for"] and not Path(job.cell.values["wait_for"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return CellResult(job.cell.step, job.cell.name, job.cell.values, None, None, None, None, 0.0)


def test_each_worker_slot_is_pinned_to_a_gpu_round_robin_and_a_cpu_cell_is_untouched(tmp_path, monkeypatch):
    """4 workers on 2 GPUs (given to this process as 5 and 7): the slots 0-3 take GPUs 5, 7, 5, and the
    cpu cell in slot 3 none; cell-0 ends first (the others wait for cell-4) and cell-4 takes its slot."""
    _fake_gpus(monkeypatch, 2, "5,7")
    last = tmp_path / "cell-4" / "env.json"
    devices = ["auto", "cuda", "cuda", "cpu", "cuda"]
    jobs = [CellJob(Cell("probe", f"cell-{i}", {"seed": i, "wait_for": str(last) if i in (1, 2, 3) else None}),
                    TrainConfig(device=device, out=str(tmp_path / f"cell-{i}"))) for i, device in enumerate(devices)]
    ended = [i for i, result, _ in LocalWorkers(4, run=_probe).map(jobs)]
    seen = [json.loads((tmp_path / f"cell-{i}" / "env.json").read_text()) for i in range(5)]
    assert seen == ["5", "7", "5", "5,7", "5"]
    assert ended[0] == 0 and sorted(ended) == [0, 1, 2, 3, 4]


class _FakeRay:
    """What `RayCells` uses of Ray, on a cluster of ``gpus`` GPUs: each task's resource request kept."""

    class exceptions:
        RayError = RuntimeError

    def __init__(self, gpus: int) -> None:
        self.gpus, self.asked = gpus, {}

    def init(self, **options) -> None:
        pass

    def cluster_resources(self) -> dict:
        return {"CPU": 8.0, **({"GPU": float(self.gpus)} if self.gpus else {})}

    def remote(self, **options):
        return lambda function: _FakeTask(self, function, options)

    def wait(self, refs, num_returns):
        return refs[:1], refs[1:]

    def get(self, ref):
        return ref.result

    def cancel(self, ref) -> None:
        pass

    def shutdown(self) -> None:
        pass


class _FakeTask:
    def __init__(self, ray: _FakeRay, function, options: dict) -> None:
        self.ray, self.function, self.resources = ray, function, options

    def options(self, **more) -> "_FakeTask":
        return _FakeTask(self.ray, self.function, {**self.resources, **more})

    def remote(self, job: CellJob):
        self.ray.asked[job.cell.name] = self.resources
        return type("Ref", (), {"result": CellResult.failure(job.cell, "not run")})()


@pytest.mark.parametrize("gpus", [2, 0])
def test_a_cuda_cell_asks_ray_for_one_gpu_where_the_cluster_has_them(monkeypatch, gpus):
    ray = _FakeRay(gpus)
    monkeypatch.setitem(sys.modules, "ray", ray)
    jobs = [CellJob(Cell("bptt", device, {}), TrainConfig(device=device)) for device in ("auto", "cuda", "cpu", "cuda:1")]
    assert len(list(RayCells(workers=2, threads=3).map(jobs))) == 4
    cpus = {"num_cpus": 3, "max_retries": 0}
    gpu = {**cpus, "num_gpus": 1} if gpus else cpus
    assert ray.asked == {"auto": gpu, "cuda": gpu, "cpu": cpus, "cuda:1": cpus}


class _Recording(Sequential):
    """The sequential executor, recording which steps' cells each batch it is handed holds; each cell
    takes one second on ``clock`` (a fake of the run's `time.perf_counter`)."""

    def __init__(self):
        super().__init__()
        self.batches: list[list[str]] = []
        self.clock = 0.0

    def map(self, jobs):
        self.batches.append([job.cell.step for job in jobs])
        for item in super().map(jobs):
            self.clock += 1.0
            yield item


def test_consecutive_swept_steps_share_the_workers_as_one_batch_and_a_step_between_splits_them(tmp_path, monkeypatch):
    import types

    from snnpipe.pipeline.run import parse_recipe, run

    defaults = {**RECIPE["defaults"], "epochs": 1}
    recipe = parse_recipe({"name": "batches", "defaults": defaults, "steps": [
        {"train": {"stage": "bptt", "sweep": {"seed": [0, 1, 2]}}},
        {"train": {"stage": "bptt", "name": "wide", "model_args": {"hidden": [24]}, "sweep": {"seed": [0, 1]}}},
        {"train": {"stage": "ann", "name": "teacher"}},
        {"train": {"stage": "ratebp", "sweep": {"seed": [0, 1]}}}]})
    executor, seen = _Recording(), []
    monkeypatch.setattr("snnpipe.pipeline.run.time", types.SimpleNamespace(perf_counter=lambda: executor.clock))
    result = run(recipe, out=tmp_path / "run", executor=executor,
                 on_cell=lambda cell, kept, where: seen.append((cell.step, where.done, where.count, where.left)))
    # bptt's last cell and wide's first are handed out together: no worker idles between the two steps
    assert executor.batches == [["bptt"] * 3 + ["wide"] * 2, ["ratebp"] * 2]
    # each cell counted in its own step; left: the batch's cells not yet started
    assert seen == [("bptt", 1, 3, 4), ("bptt", 2, 3, 3), ("bptt", 3, 3, 2), ("wide", 1, 2, 1), ("wide", 2, 2, 0),
                    ("ratebp", 1, 2, 1), ("ratebp", 2, 2, 0)]
    assert [(s.step, s.kind, s.summary.get("cells")) for s in result.steps] == [
        ("bptt", "sweep", 3), ("wide", "sweep", 2), ("teacher", "train", None), ("ratebp", "sweep", 2)]
    # a step's time: from the step before's last cell to its own last (a second per cell here), not the batch's
    assert [s.seconds for s in result.steps if s.kind == "sweep"] == [3.0, 2.0, 2.0]
    sweep = json.loads((result.folder / "sweep.json").read_text())
    assert [(c["step"], c["cell"]) for c in sweep["cells"]] == [
        ("bptt", "seed-0"), ("bptt", "seed-1"), ("bptt", "seed-2"), ("wide", "seed-0"), ("wide", "seed-1"),
        ("ratebp", "seed-0"), ("ratebp", "seed-1")]
