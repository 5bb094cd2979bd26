"""``snnpipe run RECIPE --resume FOLDER``: finished steps are kept (their files checked), an
interrupted training goes on from its checkpoint, orphaned temporary files go, and the outputs equal
an uninterrupted run's: checkpoints bit-identical, exports byte-identical, reports equal."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from snnpipe.files import TEMP_MARK, remove_orphan_temporaries
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
    orphan = first.folder / "snn" / f".checkpoint.pt{TEMP_MARK}abc_1234"  # as tempfile names it
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


ONE_STEP = {"name": "tiny", "defaults": {"model_args": {"hidden": [8]}, "timesteps": 2, "train_samples": 100,
                                         "test_samples": 40, "seed": 1},
            "steps": [{"train": {"stage": "bptt", "epochs": 1, "name": "snn"}},
                      {"profile": {"from": "@snn", "target": "loihi", "samples": 20}}]}


def _snnpipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnpipe", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _counts(report: Path) -> dict:
    profile = json.loads((report / "profile.json").read_text())
    return {"layers": profile["layers"], "totals": profile["totals"]}


def test_a_run_resumed_from_another_folder_uses_its_own_checkpoint(tmp_path):
    """Killed in A/ after its training, resumed from B/ (which holds a runs/tiny of its own, another
    seed): A's profile is made from A's model, and a checkpoint swapped in is refused in one line."""
    for folder, seed in (("A", 1), ("B", 2)):
        (tmp_path / folder).mkdir()
        recipe = {**ONE_STEP, "defaults": {**ONE_STEP["defaults"], "seed": seed}}
        (tmp_path / folder / "r.yaml").write_text(yaml.safe_dump(recipe))
        done = _snnpipe(["run", "r.yaml", "--quiet"], tmp_path / folder)
        assert done.returncode == 0, done.stderr
    run_a, run_b = tmp_path / "A" / "runs" / "tiny", tmp_path / "B" / "runs" / "tiny"
    own, other = _counts(run_a / "profile-loihi"), _counts(run_b / "profile-loihi")
    assert own != other  # two models: the test can tell them apart

    def interrupt_after_training() -> None:
        """What a kill during the profile step leaves: the record of the training step alone."""
        state = json.loads((run_a / STATE_NAME).read_text())
        del state["steps"]["profile-loihi"]
        (run_a / STATE_NAME).write_text(json.dumps(state))
        shutil.rmtree(run_a / "profile-loihi")

    interrupt_after_training()
    resumed = _snnpipe(["run", "../A/r.yaml", "--resume", "../A/runs/tiny", "--quiet"], tmp_path / "B")
    assert resumed.returncode == 0, resumed.stderr
    assert _counts(run_a / "profile-loihi") == own
    interrupt_after_training()
    shutil.copyfile(run_b / "snn" / "checkpoint.pt", run_a / "snn" / "checkpoint.pt")
    refused = _snnpipe(["run", "../A/r.yaml", "--resume", "../A/runs/tiny", "--quiet"], tmp_path / "B")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "'snn'" in refused.stderr and "changed" in refused.stderr
    assert not (run_a / "profile-loihi").exists()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_refuses_a_folder_that_is_no_run_of_the_recipe_and_touches_nothing(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(ONE_STEP))
    user = tmp_path / "u"
    (user / "sub").mkdir(parents=True)
    (user / ".draft.tmp-1").write_text("draft")
    (user / "sub" / f".x{TEMP_MARK}abcd1234").write_text("x")
    (user / "summary.md").write_text("my notes")
    other = tmp_path / "other"  # a run folder of another recipe
    other.mkdir()
    (other / STATE_NAME).write_text(json.dumps({"recipe": {"name": "other", "defaults": {}, "steps": []}, "steps": {}}))
    (other / f".checkpoint.pt{TEMP_MARK}abcd1234").write_text("its own")
    for folder, message in ((user, f"holds no {STATE_NAME}"), (other, "made by another recipe"),
                            (tmp_path / "none", f"holds no {STATE_NAME}")):
        before = _tree(folder) if folder.exists() else None
        done = _snnpipe(["run", str(recipe), "--resume", str(folder)], tmp_path)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
        assert (_tree(folder) if folder.exists() else None) == before  # not even a lock file



def test_resume_refuses_a_folder_whose_record_is_a_link_to_a_runs(tmp_path, monkeypatch):
    # a link to a real run's run.json would vouch for any folder: its snnpipe-named files were removed
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({**ONE_STEP, "steps": ONE_STEP["steps"][:1]}))
    real = run(recipe).folder
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / STATE_NAME).symlink_to(real / STATE_NAME)
    (fake / f".mine{TEMP_MARK}abcd1234").write_text("x")
    before = _tree(fake)
    with pytest.raises(RecipeError, match=f"its {STATE_NAME} is a link"):
        run(recipe, resume=fake)
    assert _tree(fake) == before

def test_resume_removes_only_the_temporaries_of_its_own_writes(tmp_path, monkeypatch):
    """In the run folder and its steps' folders, names as `atomic_path` makes them; a user's file
    of a like name, and anything in a folder no step writes, stay."""
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({**ONE_STEP, "steps": ONE_STEP["steps"][:1]}))
    folder = run(recipe).folder
    orphans = [folder / f".summary.md{TEMP_MARK}k2_x9zq0", folder / "snn" / f".checkpoint.pt{TEMP_MARK}abcd1234",
               folder / f".profile-loihi{TEMP_MARK}0a1b2c3d" / "profile.json"]
    kept = [folder / ".draft.tmp-1", folder / f".notes{TEMP_MARK}mine", folder / "sub" / f".x{TEMP_MARK}abcd1234",
            folder / ".notes.tmp-abcdefgh", folder / "snn" / ".z.tmp-abcdefgh.txt",  # like a temporary, but a user's
            folder / "snn" / "mine" / ".y.tmp-abcdefgh",  # in a folder of the user's own inside a step's
            folder / "snn" / "mine" / f".y{TEMP_MARK}abcdefgh"]
    for path in orphans + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    run(recipe, resume=folder)  # the user's files in the finished step's folder are not its outputs: no refusal
    assert not any(path.exists() for path in orphans[:2]) and not orphans[2].parent.exists()
    assert all(path.read_text() == "x" for path in kept)


def test_orphans_are_removed_in_the_named_folders_only_never_through_a_link(tmp_path):
    folder = tmp_path / "run"
    orphans = [folder / f".a{TEMP_MARK}abcdefgh", folder / "sweep" / "lr-0.1" / f".checkpoint.pt{TEMP_MARK}abcdefgh"]
    elsewhere = tmp_path / "elsewhere"
    kept = [folder / "sweep" / f".b{TEMP_MARK}abcdefgh",  # "sweep" itself is not named: its cells are
            folder / "sweep" / "lr-0.1" / "mine" / f".c{TEMP_MARK}abcdefgh", elsewhere / f".d{TEMP_MARK}abcdefgh"]
    for path in orphans + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (folder / "linked").symlink_to(elsewhere)
    removed = remove_orphan_temporaries(folder, ["sweep/lr-0.1", "linked"])
    assert sorted(removed) == sorted(orphans)
    assert all(path.exists() for path in kept)
