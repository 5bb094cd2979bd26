"""Recipes: parsing, references between steps, refusals, and a small chain run end to end."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.run import DEFAULT_RECIPE, RecipeError, load_recipe, parse_recipe, run

RECIPES = sorted(Path(__file__).resolve().parent.parent.joinpath("recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_parse_and_a_misspelled_stage_in_one_fails(path, tmp_path):
    recipe = load_recipe(path)
    assert recipe.steps and recipe.name
    broken = tmp_path / path.name
    text = path.read_text()
    stage = next(s.options["stage"] for s in recipe.steps if s.kind == "train" and "stage" in s.options)
    broken.write_text(text.replace(f"stage: {stage}", f"stage: {stage}d", 1))
    assert broken.read_text() != text
    with pytest.raises(RecipeError, match=f"unknown stage '{stage}d'"):
        load_recipe(broken)


def test_default_recipe_chains_ann_to_loihi_and_profile():
    recipe = load_recipe(None)
    assert Path(recipe.source) == DEFAULT_RECIPE
    kinds = [s.kind for s in recipe.steps]
    assert kinds[:3] == ["train"] * 3 and kinds[-1] == "profile"
    assert recipe.steps[1].options["teacher"] == "@ann"


@pytest.mark.parametrize(
    "data,message",
    [
        ({"steps": [{"train": {"stag": "bptt"}}]}, "did you mean 'stage'"),
        ({"steps": [{"train": {"stage": "esd", "teacher": "@ann"}}]}, "refers to '@ann'"),
        ({"steps": [{"train": {"stage": "ann"}}, {"train": {"stage": "ann"}}]}, "name 'ann' is taken"),
        ({"steps": [{"profile": {"target": "loihi"}}]}, "'from' names the checkpoint"),
        ({"steps": [{"deploy": {}}]}, "unknown kind 'deploy'"),
        ({"steps": []}, "non-empty list"),
        ({"defaults": {"epoch": 3}, "steps": [{"train": {}}]}, "did you mean 'epochs'"),
        ([1, 2], "must be a mapping"),
        ({"steps": [{"train": "x"}]}, "options of train must be a mapping"),
        ({"steps": [{"train": {}, "export": {}}]}, "write it as"),
        # refused when the step came, after every earlier step had run (profile: "the data gave no batch")
        ({"steps": [{"train": {}}, {"profile": {"from": "@bptt", "samples": 0}}]},
         r"step 2 \(profile\): samples=0 is out of range: an integer of at least 1"),
        ({"steps": [{"train": {}}, {"export": {"from": "@bptt", "target": "onnx", "timesteps": "4"}}]},
         r"step 2 \(export\): timesteps='4' is out of range: an integer of at least 1"),
    ],
)
def test_bad_recipes_are_refused_before_anything_runs(data, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(data)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=6),
              st.sampled_from(["train", "export", "profile", "steps", "@ann", "stage", "from", "name"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
        st.sampled_from(["name", "defaults", "steps", "train", "export", "stage", "from", "target", "epochs", "x"]),
        inner, max_size=3)),
    max_leaves=10,
))
def test_fuzzed_recipes_raise_only_recipe_errors(data):
    try:
        parse_recipe(data)
    except RecipeError as err:
        assert "\n" not in str(err)


def test_a_recipe_runs_every_step_into_one_folder(tmp_path):
    recipe = parse_recipe({
        "name": "tiny",
        "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [16]}, "timesteps": 2, "epochs": 1},
        "steps": [
            {"train": {"stage": "ann"}},
            {"train": {"stage": "bptt", "init": "@ann", "name": "snn"}},
            {"export": {"from": "@snn", "target": "onnx", "samples": 16}},
            {"profile": {"from": "@snn", "target": "cmos45nm", "samples": 50}},
        ],
    })
    result = run(recipe, out=tmp_path / "run")
    assert [s.step for s in result.steps] == ["ann", "snn", "export-onnx", "profile-cmos45nm"]
    assert (tmp_path / "run" / "export-onnx" / "snn.onnx").is_file()  # the exported SNN, in the run folder
    assert (tmp_path / "run" / "profile-cmos45nm" / "profile.json").is_file()
    snn = Checkpoint.load(tmp_path / "run" / "snn" / "checkpoint.pt")
    assert [h["stage"] for h in snn.history] == ["ann", "bptt"]  # the chain is in the history
    table = (tmp_path / "run" / "summary.md").read_text()
    assert "| ann | train |" in table and "| snn | train |" in table


def test_run_command_refuses_a_bad_recipe_in_one_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"steps": [{"train": {"stag": "x"}}]}))
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
