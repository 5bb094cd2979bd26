"""Every option a user gives reaches its target or is refused in one line before any work: export
options per target (CLI, recipes, Python), and model and stage arguments by type and range."""

import onnx
import pytest
from click.testing import CliRunner

from snnpipe.hw_targets import ExportError
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.export import export
from snnpipe.pipeline.run import RecipeError, parse_recipe
from snnpipe.pipeline.train import train


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    return train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, encoding="rate", out=str(out)), progress=False)


def _one_line_error(result, *words: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_the_onnx_opset_asked_for_is_the_one_written(tiny_checkpoint, tmp_path):
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", str(tiny_checkpoint.path), "--target", "onnx", "--opset", "13",
                                      "-o", str(out), "--samples", "8"])
    assert result.exit_code == 0, result.output
    for path in (out, tmp_path / "m.ann.onnx"):
        opsets = {o.domain: o.version for o in onnx.load(str(path)).opset_import}
        assert opsets[""] == 13, (path, opsets)
    # the same from a recipe step
    recipe = parse_recipe({"steps": [{"export": {"from": "x.pt", "target": "onnx", "opset": 11}}]})
    assert recipe.steps[0].options["opset"] == 11


@pytest.mark.parametrize("target, option, value", [
    ("nir", "--max-drop", "1"), ("nir", "--verify", "lava"), ("onnx", "--verify", "lava"),
    ("onnx", "--lava-python", "/usr/bin/python3"), ("loihi", "--opset", "13"), ("loihi", "--dt", "0.001"),
    ("onnx", "--dt", "0.001"),
])
def test_an_option_the_target_does_not_take_is_refused_naming_both(tiny_checkpoint, tmp_path, target, option, value):
    out = tmp_path / "f"
    result = CliRunner().invoke(cli, ["export", str(tiny_checkpoint.path), "--target", target, option, value,
                                      "-o", str(out)])
    _one_line_error(result, option, f"--target {target}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target, options, words", [
    ("onnx", {"opset": 7}, ("--opset", "7", ">= 9")),
    ("onnx", {"opset": "latest"}, ("--opset", "'latest'", "integer")),
    ("nir", {"dt": 0}, ("--dt", "> 0")),
    ("nir", {"verify_samples": 0}, ("--verify-samples",)),
    ("loihi", {"verify": "loihi-hw"}, ("--verify", "'loihi-hw'", "lava")),
    ("nir", {"typo": 1}, ("--typo", "--target nir", "it takes: --dt, --verify-samples")),
])
def test_option_values_and_typos_are_refused_before_any_work(tiny_checkpoint, tmp_path, target, options, words):
    with pytest.raises(ExportError) as err:
        export(tiny_checkpoint, target, out=tmp_path / "f", **options)
    for word in words:
        assert word in str(err.value), (word, str(err.value))
    assert list(tmp_path.iterdir()) == []


def test_a_recipe_export_step_with_an_option_of_another_target_is_refused():
    with pytest.raises(RecipeError, match=r"step 1 \(export\): unknown key 'max_drop'"):
        parse_recipe({"steps": [{"export": {"from": "x.pt", "target": "nir", "max_drop": 1}}]})
    with pytest.raises(RecipeError, match=r"step 1 \(export\): --target onnx: --opset: 99 is not an integer >= 9 and <= 20"):
        parse_recipe({"steps": [{"export": {"from": "x.pt", "target": "onnx", "opset": 99}}]})
    with pytest.raises(RecipeError, match="unknown export target 'fpga'"):
        parse_recipe({"steps": [{"export": {"from": "x.pt", "target": "fpga"}}]})


@pytest.mark.parametrize("args, words", [
    (["--model-arg", "hidden=abc"], ("hidden", "'abc'", "list")),
    (["--model-arg", "hidden=[a,b]"], ("hidden", "['a', 'b']",)),
    (["--model-arg", "hidden=[-5]"], ("hidden", "[-5]", ">= 1")),
    (["--model-arg", "hidden=[0]"], ("hidden", "[0]", ">= 1")),
    (["--model", "convnet", "--model-arg", "channels=abc"], ("channels", "'abc'")),
    (["--model", "convnet", "--model-arg", "hidden=2.5"], ("hidden", "2.5", "integer")),
    (["--model", "vgg", "--model-arg", "width=-1"], ("width", "> 0")),
    (["--model-arg", "delay_shift=maybe"], ("delay_shift", "true or false")),
    (["--stage", "esd", "--stage-arg", "temperature=hot"], ("temperature", "'hot'", "number")),
    (["--stage", "esd", "--stage-arg", "base=bpt"], ("base", "one of ratebp, bptt")),
    (["--stage", "joint", "--stage-arg", "lambda1=-1"], ("lambda1", ">= 0")),
    (["--stage", "esdd"], ("unknown stage 'esdd'", "did you mean 'esd'")),
    (["--stage", "kd-activity"], ("needs a teacher",)),
    (["--dataset", "digit"], ("unknown dataset 'digit'", "did you mean 'digits'")),
])
def test_bad_model_and_stage_arguments_are_one_line_before_any_work(tmp_path, args, words):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--epochs", "1", "-o", str(out), *args])
    _one_line_error(result, *words)
    assert not out.exists()


def test_a_recipe_with_a_misspelled_stage_or_a_bad_argument_fails_when_read():
    with pytest.raises(RecipeError, match=r"step 2 \(train\): unknown stage 'esdd'"):
        parse_recipe({"steps": [{"train": {"stage": "ann"}}, {"train": {"stage": "esdd"}}]})
    with pytest.raises(RecipeError, match=r"step 1 \(train\): stage 'esd': --stage-arg temperature: 'hot' is not a number > 0"):
        parse_recipe({"steps": [{"train": {"stage": "esd", "stage_args": {"temperature": "hot"}}}]})
    with pytest.raises(RecipeError, match="hidden"):
        parse_recipe({"defaults": {"model_args": {"hidden": [-5]}}, "steps": [{"train": {"stage": "bptt"}}]})
