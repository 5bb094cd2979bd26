"""Progress (`snnpipe.progress`): bars on stderr labelled with their step, nothing when quiet or
when stderr is not a terminal unless asked; `snnpipe run` shows each step and its bars."""

import subprocess
import sys

import yaml

from snnpipe import progress


def test_a_bar_shows_nothing_off_a_terminal_unless_asked(capsys):
    for _ in progress.bar(range(3), desc="work"):
        pass
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    with progress.force():
        for _ in progress.bar(range(3), desc="work", unit="batch"):
            pass
    assert "work:   0%|          | 0/3" in capsys.readouterr().err


def test_quiet_wins_over_force_and_show_false_hides_one_bar(capsys):
    with progress.force(), progress.quiet():
        for _ in progress.bar(range(3), desc="work"):
            pass
    with progress.force():
        for _ in progress.bar(range(3), desc="hidden", show=False):
            pass
    assert capsys.readouterr().err == ""


def test_steps_label_the_bars_made_inside_them(capsys):
    seen = []
    with progress.force():
        for item in progress.steps(["a", "b"], lambda s: f"step {s}", desc="recipe"):
            seen.append(progress.label("epoch 1/2"))
            with progress.step("cells"):
                seen.append(progress.label())
    assert seen == ["[1/2] step a > epoch 1/2", "[1/2] step a > cells", "[2/2] step b > epoch 1/2", "[2/2] step b > cells"]
    assert progress.label("after") == "after"  # the labels end with their steps
    assert "recipe:   0%|          | 0/2" in capsys.readouterr().err


def test_snnpipe_run_shows_every_step_and_its_bars_and_quiet_silences_them(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny", "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [8]}, "timesteps": 2},
        "steps": [{"train": {"stage": "bptt", "epochs": 2}},
                  {"profile": {"from": "@bptt", "target": "cmos45nm", "samples": 20}}]}))
    env_forced = {"SNNPIPE_PROGRESS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([sys.executable, "-m", "snnpipe", "run", str(recipe), "--out", str(tmp_path / "a")],
                           capture_output=True, text=True, cwd=tmp_path, env={**env_forced, **_pythonpath()}, timeout=600)
    assert shown.returncode == 0, shown.stderr
    for text in ("[1/2] bptt (train) > bptt epoch 1/2", "[1/2] bptt (train) > bptt epoch 2/2", "[2/2] profile-cmos45nm (profile) > profile",
                 "tiny:   0%|          | 0/2"):
        assert text in shown.stderr, text
    quiet = subprocess.run([sys.executable, "-m", "snnpipe", "run", str(recipe), "--out", str(tmp_path / "b"), "--quiet"],
                           capture_output=True, text=True, cwd=tmp_path, env={**env_forced, **_pythonpath()}, timeout=600)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "| bptt | train |" in quiet.stdout


def _pythonpath():
    import os

    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
