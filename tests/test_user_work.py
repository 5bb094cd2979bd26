"""Nothing a user has is lost or silently wrong: non-finite weights are refused by every loader,
naming the tensor; metrics.jsonl holds one line per epoch whatever crashed when."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from snnpipe.errors import SnnpipeError
from snnpipe.pipeline.checkpoint import Checkpoint, CheckpointError
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.train import train


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """A checkpoint (with its training state) in which one weight is NaN and one is infinite."""
    folder = tmp_path_factory.mktemp("diverged")
    ckpt = train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, encoding="rate", out=str(folder / "run")),
                 progress=False)
    weight = ckpt.state_dict["blocks.hidden1.1.weight"]
    weight[0, 0], weight[1, 1] = math.nan, math.inf
    ckpt.save(ckpt.path)
    return ckpt.path


@pytest.mark.parametrize("args", [
    ["profile", "{ckpt}", "--samples", "5"],
    ["export", "{ckpt}", "--target", "onnx"],
    ["export", "{ckpt}", "--target", "nir"],
    ["export", "{ckpt}", "--target", "loihi"],
    ["train", "--init", "{ckpt}", "--epochs", "1", "--model-arg", "hidden=[16]"],
    ["train", "--resume", "{ckpt}", "--epochs", "2"],
])
def test_non_finite_weights_are_refused_naming_the_tensor(diverged, tmp_path, args):
    args = [a.format(ckpt=diverged) for a in args]
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "out")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert "tensor blocks.hidden1.1.weight holds 2 NaN or infinite values of 1024" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    with pytest.raises(CheckpointError, match="use an earlier step-N.pt"):
        Checkpoint.load(diverged)


def test_metrics_hold_one_line_per_epoch_after_a_crash_on_either_side_of_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    first = train(TrainConfig(model_args={"hidden": (16,)}, epochs=2, out=str(run)), progress=False)
    log = run / "metrics.jsonl"
    lines = log.read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    # a crash after epoch 3's line and before its checkpoint (the old order wrote the line first) ...
    log.write_text("\n".join(lines + [lines[-1].replace('"epoch": 2', '"epoch": 3')]) + "\n")
    train(TrainConfig(resume=str(first.path), epochs=3), progress=False)
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]
    assert log.read_text().splitlines()[:2] == lines
    # ... and one after a checkpoint and before its line
    log.write_text("\n".join(log.read_text().splitlines()[:2]) + "\n")
    again = train(TrainConfig(resume=str(first.path), epochs=4), progress=False)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records == again.training["epochs"]
    assert torch.isfinite(torch.tensor([r["train_loss"] for r in records])).all()


@pytest.mark.parametrize("args", [
    ["--model-arg", "hidden=[1000000000]"],             # 64 G parameters: refused before one is allocated
    ["-T", "100000000", "--model-arg", "hidden=[16]"],  # BPTT keeps T steps of graph: terabytes
])
def test_a_run_that_cannot_fit_in_memory_is_refused_before_it_allocates(tmp_path, args):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = CliRunner().invoke(cli, ["train", *args, "-o", str(tmp_path / "run")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "GB available" in lines[0], result.output
    assert not (tmp_path / "run").exists()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # kB: nothing large was allocated


def test_profiling_a_checkpoint_that_declares_too_many_timesteps_is_refused(tmp_path):
    ckpt = train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, out=str(tmp_path / "run")), progress=False)
    ckpt.timesteps = 100_000_000
    ckpt.save(tmp_path / "huge.pt")
    result = CliRunner().invoke(cli, ["profile", str(tmp_path / "huge.pt"), "-o", str(tmp_path / "report")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "T=100000000" in lines[0] and "GB available" in lines[0], result.output


def test_a_metrics_log_replaced_by_a_symlink_is_not_written_through(tmp_path):
    """After epoch 1 someone plants metrics.jsonl -> a file of theirs: epoch 2 refuses in one line
    and the file the link names keeps its bytes."""
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("not a log\n")

    def plant(record: dict) -> None:
        if record["epoch"] == 1:
            log = tmp_path / "run" / "metrics.jsonl"
            log.unlink()
            log.symlink_to(theirs)

    config = TrainConfig(model_args={"hidden": (8,)}, epochs=2, timesteps=2, train_samples=64, test_samples=32,
                         out=str(tmp_path / "run"))
    with pytest.raises(SnnpipeError, match="metrics.jsonl is a symbolic link") as refused:
        train(config, progress=False, on_epoch=plant)
    assert "\n" not in str(refused.value)
    assert theirs.read_text() == "not a log\n"
    assert Checkpoint.load(tmp_path / "run" / "checkpoint.pt").training["epoch"] == 2
