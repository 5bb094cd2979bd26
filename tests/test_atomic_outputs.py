"""Every file a command writes appears whole or not at all: a report folder is replaced as a whole,
a baseline is never truncated, a killed profile blocks no retry, and links planted where a command
writes are replaced, never followed."""

import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from snnpipe.files import TEMP_MARK
from snnpipe.pipeline import report as report_module
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.train import train

FILES = ("profile.json", "profile.md", "profile.png", "energy.png", "profile.html")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    return train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, encoding="rate", out=str(out)), progress=False)


def _profile(ckpt, *args):
    return CliRunner().invoke(cli, ["profile", str(ckpt.path), "--samples", "20", *args])


def test_a_report_that_fails_midway_leaves_the_old_one_whole(tmp_path, checkpoint, monkeypatch):
    folder = tmp_path / "report"
    assert _profile(checkpoint, "-o", str(folder)).exit_code == 0
    before = {name: (folder / name).read_bytes() for name in FILES}

    def full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module, "html_page", full)  # the fourth file fails, after three were written
    result = _profile(checkpoint, "-o", str(folder), "--force", "--samples", "10")
    assert result.exit_code == 2 and "no space left" in result.output, result.output
    assert {name: (folder / name).read_bytes() for name in FILES} == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left


def test_a_killed_profile_leaves_nothing_that_blocks_the_retry(tmp_path, checkpoint):
    folder = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-m", "snnpipe", "profile", str(checkpoint.path), "-o", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not list(tmp_path.glob(f".report{TEMP_MARK}*")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # all or nothing
    if not folder.exists():
        assert _profile(checkpoint, "-o", str(folder)).exit_code == 0  # no --force needed
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)


def test_a_link_planted_beside_an_export_is_refused_then_replaced_never_followed(tmp_path, checkpoint):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    out = tmp_path / "m.onnx"
    (tmp_path / "m.onnx.report.json").symlink_to(victim)
    args = ["export", str(checkpoint.path), "--target", "onnx", "-o", str(out)]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2 and "m.onnx.report.json exists" in refused.output
    assert CliRunner().invoke(cli, [*args, "--force"]).exit_code == 0
    assert victim.read_text() == "mine"
    assert not (tmp_path / "m.onnx.report.json").is_symlink()


def test_a_dangling_link_in_a_report_folder_is_never_written_through(tmp_path, checkpoint):
    folder = tmp_path / "report"
    folder.mkdir()
    outside = tmp_path / "outside.md"
    (folder / "profile.md").symlink_to(outside)  # dangling: outside.md does not exist
    refused = _profile(checkpoint, "-o", str(folder))
    assert refused.exit_code == 2 and "already holds a report (profile.md)" in refused.output
    assert _profile(checkpoint, "-o", str(folder), "--force").exit_code == 0
    assert not outside.exists()
    assert not (folder / "profile.md").is_symlink() and (folder / "profile.md").stat().st_size > 0


def test_a_folder_with_other_files_is_not_replaced(tmp_path, checkpoint):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = _profile(checkpoint, "-o", str(folder))
    assert result.exit_code == 2 and "holds other files (notes.txt)" in result.output
    assert (folder / "notes.txt").read_text() == "keep me"


def test_what_a_killed_export_left_in_a_folder_does_not_keep_a_report_out(tmp_path, checkpoint):
    # a SIGKILLed export leaves its output's lock file and its temporary: snnpipe's own, not a user's
    folder = tmp_path / "report"
    folder.mkdir()
    left = [folder / ".x.nir.lock", folder / f".x.nir{TEMP_MARK}abcd1234.nir"]
    for path in left:
        path.write_text("x")
    result = _profile(checkpoint, "-o", str(folder))
    assert result.exit_code == 0, result.output
    assert (folder / "profile.json").is_file() and all(path.read_text() == "x" for path in left)  # handed back
