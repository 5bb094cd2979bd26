"""A run folder belongs to one command at a time: two runs started together take two folders, a
second run into a held --out stops in one line, recipe steps write only inside their run, and
--resume of an older checkpoint cannot overwrite the later work beside it."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from snnpipe.files import lock_folder
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.run import RecipeError, parse_recipe
from snnpipe.pipeline.train import train

FAST = ["--model-arg", "hidden=[16]", "--quiet"]


def _train(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snnpipe", "train", *FAST, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # real processes, each importing torch
def test_two_runs_started_together_take_two_folders(tmp_path):
    a, b = _train(tmp_path, "--epochs", "3", "--seed", "0"), _train(tmp_path, "--epochs", "3", "--seed", "1")
    assert a.wait(timeout=600) == 0 and b.wait(timeout=600) == 0, (a.stderr.read(), b.stderr.read())
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["digits-mlp-bptt", "digits-mlp-bptt-2"]
    seeds = set()
    for name in folders:
        run = tmp_path / "runs" / name
        lines = (run / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]  # not interleaved
        seeds.add(Checkpoint.load(run / "checkpoint.pt").training["config"]["seed"])
    assert seeds == {0, 1}


@pytest.mark.slow  # real processes, each importing torch
def test_a_second_run_into_a_folder_another_run_holds_stops_in_one_line(tmp_path):
    # long enough to be still running when the second starts (a digits epoch of this MLP takes ~0.1 s;
    # terminated below, after a checkpoint)
    first = _train(tmp_path, "--epochs", "3000", "-o", "out")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the first run holds its folder
        probe = lock_folder(tmp_path / "out") if (tmp_path / "out").exists() else None
        if (tmp_path / "out").exists() and probe is None:
            break
        if probe is not None:
            probe.release()
        time.sleep(0.05)
    second = _train(tmp_path, "--epochs", "1", "--seed", "1", "-o", "out")
    _, err = second.communicate(timeout=300)
    first.terminate()
    first.wait(timeout=300)
    assert second.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "another snnpipe command is writing to out" in lines[0], err
    assert Checkpoint.load(tmp_path / "out" / "checkpoint.pt").training["config"]["seed"] == 0


@pytest.mark.slow  # real processes, each importing torch
def test_two_runs_of_one_recipe_take_two_folders(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "r", "defaults": {"model_args": {"hidden": [16]}},
                                      "steps": [{"train": {"stage": "bptt", "epochs": 2}}]}))
    runs = [subprocess.Popen([sys.executable, "-m", "snnpipe", "run", str(recipe), "--quiet"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in runs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["r", "r-2"]
    for name in ("r", "r-2"):
        assert (tmp_path / "runs" / name / "bptt" / "checkpoint.pt").is_file()


@pytest.mark.parametrize("name", ["../../../X", "/tmp/X", "a/b", "..", ".hidden", ""])
def test_a_step_name_is_a_plain_folder_name(name):
    with pytest.raises(RecipeError, match="plain folder name"):
        parse_recipe({"steps": [{"train": {"stage": "bptt", "name": name}}]})


def test_resuming_an_older_checkpoint_needs_another_folder(tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(model_args={"hidden": (16,)}, epochs=1, checkpoint_every=10, keep=10, out=str(run))
    latest = train(config, progress=False)
    older = sorted(run.glob("step-*.pt"))[0]
    later = latest.path.read_bytes()
    with pytest.raises(Exception, match="is not the latest checkpoint of its run.*give --out NEW_FOLDER"):
        train(TrainConfig(resume=str(older), epochs=2), progress=False)
    assert latest.path.read_bytes() == later
    branch = train(TrainConfig(resume=str(older), epochs=2, out=str(tmp_path / "branch")), progress=False)
    assert branch.path == tmp_path / "branch" / "checkpoint.pt" and branch.training["epoch"] == 2
    assert latest.path.read_bytes() == later  # the later work beside the older checkpoint is untouched
    # the latest one (or its step file, the same bytes) resumes in place
    again = train(TrainConfig(resume=str(latest.path), epochs=2), progress=False)
    assert again.path == latest.path and again.training["epoch"] == 2
