"""A full disk is one line and exit 2, with no temporary file left and nothing earlier harmed: on a
real 1 MB tmpfs (where this machine lets the tests mount one) and by an injected failed write."""

import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from snnpipe import files
from snnpipe.pipeline import checkpoint as checkpoint_module
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.train import train

SNNPIPE = [sys.executable, "-m", "snnpipe"]  # this interpreter's snnpipe, not whichever is first on PATH


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs, filled to its last few kB."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        (disk / "filler").write_bytes(b"\0" * 1_040_000)
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    return train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, encoding="rate", out=str(out)), progress=False)


def _one_line(result, *words):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("target", ["onnx", "nir", "loihi"])
def test_an_export_onto_a_full_disk_is_one_line_and_leaves_nothing(small_disk, checkpoint, target):
    # in a child process: h5py crashed the whole process after such a write (exit 139)
    done = subprocess.run([*SNNPIPE, "export", str(checkpoint.path), "--target", target, "-o", str(small_disk / "m"),
                           "--max-drop", "100"] if target == "loihi" else
                          [*SNNPIPE, "export", str(checkpoint.path), "--target", target, "-o", str(small_disk / "m")],
                          capture_output=True, text=True)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.strip().count("\n") == 0 and "no space left" in done.stderr, done.stderr
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_a_run_on_a_disk_that_is_full_from_the_start_fails_before_its_first_epoch(small_disk):
    out = small_disk / "run"
    result = CliRunner().invoke(cli, ["train", "--epochs", "1", "-o", str(out)])
    _one_line(result, "MB free", "this run's checkpoints")
    assert not out.exists()


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one(tmp_path, monkeypatch):
    run = tmp_path / "run"
    first = train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, out=str(run)), progress=False)
    good = first.path.read_bytes()

    def full(obj, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"PK\3\4 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(checkpoint_module.torch, "save", full)
    monkeypatch.setattr(files, "FULL_BYTES", 1 << 62)  # whatever is free, it is too little: a full disk
    result = CliRunner().invoke(cli, ["train", "--resume", str(first.path), "--epochs", "2", "--quiet"])
    _one_line(result, "cannot write a checkpoint", "no space left", "the previous checkpoint there is intact")
    assert first.path.read_bytes() == good
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [files.LOCK_NAME]  # no temp file
    torch.load(first.path, weights_only=True)


def test_update_baseline_on_a_full_disk_leaves_the_old_baseline_whole(small_disk, checkpoint, tmp_path):
    (small_disk / "filler").unlink()
    baseline = small_disk / "baseline.json"
    args = ["profile", str(checkpoint.path), "--samples", "20", "--baseline", str(baseline), "--update-baseline"]
    assert CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "a")]).exit_code == 0
    good = baseline.read_bytes()
    (small_disk / "filler").write_bytes(b"\0" * (1_040_000 - len(good)))
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "b")])
    _one_line(result, "cannot write the baseline")
    assert baseline.read_bytes() == good  # not truncated
    assert sorted(p.name for p in small_disk.iterdir()) == ["baseline.json", "filler"]
