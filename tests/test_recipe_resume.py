"""``snnpipe run RECIPE --resume FOLDER``: finished steps are kept (their files checked), an
interrupted training goes on from its checkpoint, orphaned temporary files go, and the outputs equal
an uninterrupted run's: checkpoints bit-identical, exports byte-identical, reports equal."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from snnpipe.files import TEMP_MARK
from snnpipe.pipeline.run import STATE_NAME, RecipeError, run

RECIPE = {
    "name": "tiny",
    "defaults": {"model_args": {"hidden": [32]}, "timesteps": 4, "encoding": "rate", "checkpoint_every": 5},
    "steps": [
        {"train": {"stage": "ann", "epochs": 2}},
        {"train": {"stage": "bptt", "epochs": 2, "init": "@ann", "name": "snn"}},
        {"export": {"from": "@snn", "target": "onnx"}},
        {"export": {"from": "@snn", "target": "loihi", "max_drop": 100}},
        {"profile": {"from": "@snn", "target": "loihi"}},
    ],
}
STEPS = ["ann", "snn", "export-onnx", "export-loihi", "profile-loihi"]


def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


def test_resuming_a_finished_run_redoes_nothing_and_a_changed_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = _recipe(tmp_path)
    first = run(recipe)
    stamps = {p: p.stat().st_mtime_ns for p in first.folder.rglob("*")
              if p.is_file() and p.name not in (STATE_NAME, "summary.md")}  # the run's records are rewritten
    orphan = first.folder / "snn" / f".checkpoint.pt{TEMP_MARK}abc"
    orphan.write_bytes(b"half a checkpoint")
    again = run(recipe, resume=first.folder)
    assert [s.step for s in again.steps] == STEPS
    assert [s.summary for s in again.steps] == [s.summary for s in first.steps]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing redone
    assert not orphan.exists()
    other = yaml.safe_load(recipe.read_text())
    other["steps"][1]["train"]["epochs"] = 3
    recipe.write_text(yaml.safe_dump(other))
    with pytest.raises(RecipeError, match="made by another recipe"):
        run(recipe, resume=first.folder)
    recipe.write_text(yaml.safe_dump(RECIPE))
    (first.folder / "export-onnx" / "snn.onnx").write_bytes(b"edited")
    with pytest.raises(RecipeError, match="'export-onnx' .* changed since it finished"):
        run(recipe, resume=first.folder)


@pytest.mark.slow
def test_sigkill_during_each_step_then_resume_equals_an_uninterrupted_run(tmp_path):
    """benchmarks/recipe_resume.py on the tiny recipe: weights bit for bit, exports byte for byte."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "recipe_resume.py"
    done = subprocess.run([sys.executable, str(script), str(_recipe(tmp_path)), "--work", str(tmp_path / "work"),
                           "--out", str(tmp_path / "resume.json")], capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout, done.stderr)
    rows = json.loads((tmp_path / "resume.json").read_text())["rows"]
    assert [row["killed_in"] for row in rows] == STEPS and all(row["equal"] for row in rows)
    assert all(row["killed_while_running"] for row in rows[:2])  # both trainings were cut mid-run
    assert not list((tmp_path / "work").rglob(f".*{TEMP_MARK}*"))
