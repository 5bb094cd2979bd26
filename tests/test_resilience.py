"""Never lose work: DDP equals one process, SIGKILL + resume is bit-identical, SIGTERM saves,
step checkpoints rotate, and checkpoints carrying code are refused."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from snnpipe.models import create_model
from snnpipe.pipeline.checkpoint import Checkpoint, CheckpointError
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import Dataset, load_dataset
from snnpipe.pipeline.train import train


def _subset(n: int) -> Dataset:
    data = load_dataset("digits")
    return Dataset(data.spec, data.train_x[:n], data.train_y[:n], data.test_x[:64], data.test_y[:64])


def _config(out: Path, **kw) -> TrainConfig:
    base = dict(dataset="digits", model="mlp", model_args={"hidden": (32,)}, epochs=2, batch_size=32,
                timesteps=3, seed=7, out=str(out))
    return TrainConfig(**{**base, **kw})


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train(_config(Path(out), device="cpu"), dataset=_subset(256), progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_ddp_equals_one_process_with_the_same_global_batch(tmp_path):
    torch.set_num_threads(1)
    single = train(_config(tmp_path / "one", device="cpu"), dataset=_subset(256), progress=False)
    mp.start_processes(_ddp_worker, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2,
                       start_method="spawn", join=True)
    double = Checkpoint.load(tmp_path / "two" / "checkpoint.pt")
    assert double.training["config"]["batch_size"] == 32
    for name, weight in single.state_dict.items():
        assert torch.allclose(weight, double.state_dict[name], atol=1e-6), name
    # both runs moved away from the initialization, so their equality is not trivial
    torch.manual_seed(7)
    init = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(32,)).state_dict()
    assert any(not torch.allclose(init[k], single.state_dict[k], atol=1e-3) for k in init)
    assert single.history[-1]["epochs"] == 2 == double.history[-1]["epochs"]


def _cli(args, cwd) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "snnpipe", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


RUN = ["--model", "convnet", "--epochs", "2", "--batch-size", "8", "-T", "3", "--seed", "3",
       "--checkpoint-every", "10", "--keep", "2", "--quiet"]


def _wait_for_step(folder: Path, at_least: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = [int(p.stem.split("-")[1]) for p in folder.glob("step-*.pt")]
        if steps and max(steps) >= at_least:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended before step {at_least}: {proc.communicate()}")
        time.sleep(0.005)
    raise AssertionError("no step checkpoint appeared")


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    whole = _cli([*RUN, "--out", "whole"], tmp_path)
    assert whole.wait(timeout=600) == 0, whole.communicate()

    killed = _cli([*RUN, "--out", "killed"], tmp_path)
    _wait_for_step(tmp_path / "killed", 60, killed)  # epoch 1 has 180 steps: this is mid-epoch
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    partial = Checkpoint.load(tmp_path / "killed" / "checkpoint.pt")
    assert partial.training["epoch"] == 0 and 0 < partial.training["step_in_epoch"] < 180

    resumed = _cli(["--resume", "killed/checkpoint.pt", "--quiet"], tmp_path)
    assert resumed.wait(timeout=600) == 0, resumed.communicate()
    a = Checkpoint.load(tmp_path / "whole" / "checkpoint.pt").state_dict
    b = Checkpoint.load(tmp_path / "killed" / "checkpoint.pt").state_dict
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert len(list((tmp_path / "killed").glob("step-*.pt"))) == 2  # --keep 2

    def metrics(run: str) -> list[dict]:  # one line per epoch, the interrupted epoch's counts whole
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "epoch_seconds"} for line in lines]

    assert metrics("killed") == metrics("whole")


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path):
    proc = _cli([*RUN, "--out", "run"], tmp_path)
    _wait_for_step(tmp_path / "run", 20, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0] and "--resume" in lines[0]
    assert "Traceback" not in stderr
    saved = Checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    assert saved.training["step_in_epoch"] > 0 or saved.training["epoch"] > 0


def test_step_checkpoints_rotate_and_resume_restores_the_position(tmp_path):
    ckpt = train(_config(tmp_path / "run", checkpoint_every=3, keep=2, epochs=1), dataset=_subset(256), progress=False)
    steps = sorted(p.name for p in (tmp_path / "run").glob("step-*.pt"))
    # 256 / 32 = 8 steps: saves at 3 and 6 mid-epoch, 8 at the epoch's end; the last 2 stay
    assert steps == ["step-00000006.pt", "step-00000008.pt"]
    mid = Checkpoint.load(tmp_path / "run" / "step-00000006.pt")
    assert (mid.training["epoch"], mid.training["step_in_epoch"]) == (0, 6)
    assert ckpt.training["epoch"] == 1 and ckpt.training["step_in_epoch"] == 0


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"schema": "snnpipe.checkpoint/1", "payload": Path("/etc/passwd")}, path)
    with pytest.raises(CheckpointError, match="pickled code"):
        Checkpoint.load(path)


def test_truncated_checkpoint_is_refused_and_the_previous_one_survives(tmp_path):
    ckpt = train(_config(tmp_path / "run", epochs=1), dataset=_subset(64), progress=False)
    good = ckpt.path.read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or damaged and cannot be read; use an earlier step-N.pt of its run, or train it again$"):
        Checkpoint.load(broken)
    assert ckpt.path.read_bytes() == good


def test_bf16_autocast_trains_on_cpu(tmp_path):
    ckpt = train(_config(tmp_path / "run", epochs=1, amp="bf16"), dataset=_subset(64), progress=False)
    assert all(torch.isfinite(v).all() for v in ckpt.state_dict.values() if v.is_floating_point())


@pytest.mark.slow
def test_profile_sharded_over_two_ranks_equals_one_process(tmp_path):
    ckpt = train(_config(tmp_path / "run", epochs=1), dataset=_subset(64), progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = ["profile", str(ckpt.path), "--samples", "64", "--json"]
    one = subprocess.run([sys.executable, "-m", "snnpipe", *base, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, check=True)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "snnpipe", *base, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, check=True)
    import json

    a = json.loads(one.stdout.strip().splitlines()[-1])
    b = json.loads([line for line in two.stdout.splitlines() if line.startswith("{")][-1])
    for key in ("acs", "macs", "spikes", "firing_rate", "compute_energy_uj", "accuracy"):
        assert a[key] == pytest.approx(b[key]), key


@pytest.mark.slow
def test_train_under_torchrun_prints_its_result_once(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "snnpipe", "train", "--epochs", "1", "--batch-size", "32", "-T", "2", "--model-arg",
                          "hidden=[16]", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("test accuracy") == 1, run.stdout
