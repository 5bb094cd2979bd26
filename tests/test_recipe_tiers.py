"""Tiers: one recipe at other sizes (``tiers:``, ``snnpipe run RECIPE --tier NAME``): what a tier
changes, its refusals in one line, the tier in the run's record (a run resumes only at its own), and a
run without ``--tier`` recorded as before tiers existed."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.run import STATE_NAME, RecipeError, load_recipe, parse_recipe, run

RECIPES = sorted(Path(__file__).resolve().parent.parent.joinpath("recipes").glob("*.yaml"))
RECIPE = {
    "name": "tiny",
    "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [8]}, "timesteps": 2, "epochs": 1,
                 "train_samples": 64, "test_samples": 32},
    "tiers": {"big": {"model_args": {"hidden": [16, 8]}, "train_samples": None, "steps": {"ann": {"epochs": 2}}}},
    "steps": [{"train": {"stage": "ann", "epochs": 3}}, {"train": {"stage": "bptt", "init": "@ann"}}],
}


def test_a_tier_replaces_the_defaults_and_step_options_it_names_and_nothing_else():
    plain, big = parse_recipe(RECIPE), parse_recipe(RECIPE, tier="big")
    assert plain.defaults == RECIPE["defaults"] and plain.tier is None
    assert plain.steps[0].options == {"stage": "ann", "epochs": 3}
    assert big.defaults == {**RECIPE["defaults"], "model_args": {"hidden": [16, 8]}, "train_samples": None}
    assert big.steps[0].options == {"stage": "ann", "epochs": 2}
    assert big.steps[1].options == {"stage": "bptt", "init": "@ann"}
    assert (big.tier, big.folder_name, big.command) == ("big", "tiny-big", "snnpipe run recipe --tier big")


@pytest.mark.parametrize("tier,tiers,message", [
    ("huge", None, r"^recipe has no tier 'huge'; its tiers: big$"),
    ("big", {}, r"^recipe has no tier 'big'; it has none: run it without --tier$"),
    (None, {"big": {"epoch": 2}}, r"^recipe tier 'big': unknown key 'epoch'; did you mean 'epochs'\?$"),
    (None, {"big": {"sweep": {"seed": [0]}}}, r"^recipe tier 'big': unknown key 'sweep'"),  # options, not the grid
    (None, {"big": {"steps": {"snn": {"epochs": 2}}}}, r"^recipe tier 'big': steps names 'snn', which is no train step of "
                                                       r"the recipe; its train steps: ann, bptt$"),
    (None, {"big": {"steps": {"ann": {"stag": "x"}}}}, r"^recipe tier 'big' step 'ann': unknown key 'stag'; did you mean 'stage'\?$"),
    (None, {"../big": {}}, r"^recipe tier '../big': a tier's name is part of its run folder's"),
    (None, {"big": 3}, r"^recipe: tiers must map a tier's name to the training options it changes"),
    ("big", {"big": {"epochs": 0}}, r"^recipe step 2 \(train\) at tier 'big': epochs=0 is out of range"),  # its values
])
def test_a_bad_tier_is_refused_in_one_line_naming_what_exists(tier, tiers, message):
    data = {**RECIPE, "tiers": RECIPE["tiers"] if tiers is None else tiers}
    with pytest.raises(RecipeError, match=message):
        parse_recipe(data, tier=tier)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_tier_of_a_shipped_recipe_parses(path):
    tiers = yaml.safe_load(path.read_text()).get("tiers") or {}
    for tier in tiers:
        recipe = load_recipe(path, tier)
        assert recipe.tier == tier and recipe.steps


def test_the_gpu_tiers_of_the_protocol_are_the_sizes_their_headers_state():
    """Each v2 protocol recipe at gpu-fm: all Fashion-MNIST but its 5,000 validation images, full-width
    vgg4, batch 128 on CUDA; at gpu-cifar10: ResNet-19 on CIFAR-10 at T=4 for 300 epochs, the teacher too."""
    for claim in ("esd", "eagd", "kd", "joint"):
        path = RECIPES[0].parent / f"protocol-v2-{claim}.yaml"
        fm, cifar = load_recipe(path, "gpu-fm"), load_recipe(path, "gpu-cifar10")
        assert {k: fm.defaults[k] for k in ("dataset", "model", "model_args", "train_samples", "val_samples", "batch_size",
                                            "device")} == {"dataset": "fashion-mnist", "model": "vgg4", "model_args": {"width": 1.0},
                                                           "train_samples": None, "val_samples": 5000, "batch_size": 128,
                                                           "device": "cuda"}
        assert {k: cifar.defaults[k] for k in ("dataset", "model", "model_args", "timesteps", "epochs", "device")} == {
            "dataset": "cifar10", "model": "resnet19", "model_args": {}, "timesteps": 4, "epochs": 300, "device": "cuda"}
        assert all(s.options.get("epochs", 300) == 300 for s in cifar.steps)


def test_a_recipe_run_without_a_tier_keeps_the_record_it_had(tmp_path, monkeypatch):
    """run.json of a run without --tier holds what it held before tiers existed (a run in progress
    keeps resuming), written out here by hand; the tiers the recipe has are not in it."""
    monkeypatch.chdir(tmp_path)
    result = run(parse_recipe(RECIPE))
    assert result.folder == Path("runs/tiny")
    assert json.loads((result.folder / STATE_NAME).read_text())["recipe"] == {
        "name": "tiny",
        "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [8]}, "timesteps": 2, "epochs": 1,
                     "train_samples": 64, "test_samples": 32},
        "steps": [{"kind": "train", "name": "ann", "options": {"stage": "ann", "epochs": 3}},
                  {"kind": "train", "name": "bptt", "options": {"stage": "bptt", "init": "@ann"}}]}


def test_a_tiers_run_records_its_tier_and_resumes_only_at_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    runner = CliRunner()
    done = runner.invoke(cli, ["run", str(path), "--tier", "big", "--quiet"])
    assert done.exit_code == 0, done.output
    folder = tmp_path / "runs" / "tiny-big"
    record = json.loads((folder / STATE_NAME).read_text())["recipe"]
    assert record["tier"] == "big" and record["defaults"]["model_args"] == {"hidden": [16, 8]}
    for args, message in [([], "Error: --resume runs/tiny-big: that run is tier 'big' of its recipe; resume it with --tier big"),
                          (["--tier", "big2"], f"Error: {path} has no tier 'big2'; its tiers: big")]:
        refused = runner.invoke(cli, ["run", str(path), "--resume", "runs/tiny-big", *args])
        assert refused.exit_code == 2 and refused.output.strip() == message
    again = runner.invoke(cli, ["run", str(path), "--resume", "runs/tiny-big", "--tier", "big", "--json"])
    assert again.exit_code == 0, again.output
    assert [s["step"] for s in json.loads(again.output)["steps"]] == ["ann", "bptt"]
    plain = run(parse_recipe(RECIPE))  # the recipe as written: a folder of its own, refused at the tier's
    assert plain.folder == Path("runs/tiny")
    with pytest.raises(RecipeError, match=r"^--resume runs/tiny: that run is its recipe without a tier; resume it without --tier$"):
        run(parse_recipe(RECIPE, tier="big"), resume=plain.folder)
