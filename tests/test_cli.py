"""The CLI: bad input gives one line, exit code 2 and no traceback; a tiny run writes a full checkpoint."""

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from snnpipe import __version__
from snnpipe.pipeline.checkpoint import SCHEMA, Checkpoint
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.train import train

FAST = ["--epochs", "1", "-T", "2", "--model-arg", "hidden=[16]", "--quiet"]


def invoke(args, cwd):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=cwd):
        return runner.invoke(cli, args)


def assert_one_line_error(result, *fragments):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--model", "lenet"], ["unknown model 'lenet'", "mlp"]),
        (["--dataset", "imagenet"], ["unknown dataset 'imagenet'", "digits"]),
        (["--stage", "hebbian"], ["unknown stage 'hebbian'", "ratebp"]),
        (["-T", "0"], ["timesteps=0", "at least 1"]),
        (["--encoding", "phase"], ["unknown encoding 'phase'"]),
        (["--current-decay", "1.5"], ["current_decay=1.5"]),
        (["--model-arg", "depth=3"], ["has no argument depth"]),
        (["--epochs", "many"], ["'many' is not a valid integer"]),
        (["--device", "tpu"], ["tpu"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragments):
    assert_one_line_error(invoke(["train", *args, "--quiet"], tmp_path), *fragments)


@pytest.mark.parametrize("model_args", [[], ["--model-arg", "hidden=[]"]])
def test_esd_on_a_model_without_a_branch_is_refused_before_any_folder(tmp_path, model_args):
    # mlp, one hidden layer: blocks hidden1 and head, one branch point (the last feature block, which
    # feeds the head), no branch; with no hidden layer: the head alone
    result = invoke(["train", "--stage", "esd", "--model", "mlp", *model_args, "--epochs", "1", "--quiet"], tmp_path)
    assert_one_line_error(result, "stage 'esd'", "mlp", "has none", "would be plain ratebp", "--model convnet")
    assert not any(tmp_path.rglob("*runs*")) and not any(p.is_file() for p in tmp_path.rglob("*"))


def test_missing_data_folder_names_what_is_expected(tmp_path):
    result = invoke(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "nowhere"), "--quiet"], tmp_path)
    assert_one_line_error(result, "train-images-idx3-ubyte")


def test_corrupt_checkpoint_to_resume(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint at all" * 10)
    assert_one_line_error(invoke(["train", "--resume", str(bad), "--quiet"], tmp_path), str(bad),
                          "is not a checkpoint", "begins with b'this'", "give the checkpoint.pt that snnpipe train wrote")


def test_missing_checkpoint_to_resume(tmp_path):
    assert_one_line_error(invoke(["train", "--resume", str(tmp_path / "none.pt"), "--quiet"], tmp_path), "does not exist")


def test_unknown_key_in_config_file_gets_a_suggestion(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("timestep: 4\n")
    assert_one_line_error(invoke(["train", "--config", str(recipe)], tmp_path), "'timestep'", "timesteps")


def test_version_and_models(tmp_path):
    version = invoke(["--version"], tmp_path)
    assert version.exit_code == 0 and __version__ in version.output
    listing = invoke(["models", "--json"], tmp_path)
    assert listing.exit_code == 0
    rows = {row["name"]: row for row in json.loads(listing.output)}
    assert {"mlp", "convnet", "vgg11", "resnet18", "resnet19"} <= set(rows)
    # mlp on 8x8 digits with one hidden layer of 128: 64*128 + 128 + 128*10 + 10 weights and biases
    assert rows["mlp"]["parameters"] == 64 * 128 + 128 + 128 * 10 + 10


def test_train_writes_a_complete_checkpoint_and_never_overwrites(tmp_path):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path) as cwd:
        first = runner.invoke(cli, ["train", *FAST, "--json"])
        assert first.exit_code == 0, first.output
        result = json.loads(first.output.strip().splitlines()[-1])
        ckpt = Checkpoint.load(f"{cwd}/{result['checkpoint']}")
        raw = torch.load(ckpt.path, weights_only=True)
        assert raw["schema"] == SCHEMA
        assert ckpt.model_name == "mlp" and ckpt.model_args == {"hidden": (16,)}
        assert ckpt.timesteps == 2 and ckpt.encoding == "direct" and ckpt.spiking
        assert ckpt.data.name == "digits" and len(ckpt.data.mean) == 1
        assert ckpt.history[-1]["stage"] == "bptt" and 0 <= ckpt.history[-1]["test_acc"] <= 1
        model = ckpt.build_model()
        assert model(torch.zeros(2, 3, 1, 8, 8)).shape == (2, 3, 10)
        metrics = (ckpt.path.parent / "metrics.jsonl").read_text().splitlines()
        assert len(metrics) == 1 and {"test_acc", "firing_rate", "train_loss"} <= set(json.loads(metrics[0]))

        second = runner.invoke(cli, ["train", *FAST, "--json"])
        other = json.loads(second.output.strip().splitlines()[-1])["checkpoint"]
        assert other != result["checkpoint"]
        assert Checkpoint.load(f"{cwd}/{result['checkpoint']}").state_dict.keys() == ckpt.state_dict.keys()

        clash = runner.invoke(cli, ["train", *FAST, "--out", str(ckpt.path.parent)])
        assert clash.exit_code == 2 and "already holds a run" in clash.output


def test_resume_continues_to_more_epochs(tmp_path):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path) as cwd:
        out = runner.invoke(cli, ["train", *FAST, "--out", "run", "--json"])
        assert out.exit_code == 0, out.output
        resumed = runner.invoke(cli, ["train", "--resume", "run/checkpoint.pt", "--epochs", "2", "--json", "--quiet"])
        assert resumed.exit_code == 0, resumed.output
        ckpt = Checkpoint.load(f"{cwd}/run/checkpoint.pt")
        assert ckpt.training["epoch"] == 2
        assert ckpt.history[-1]["epochs"] == 2 and len(ckpt.history) == 1
        assert len((ckpt.path.parent / "metrics.jsonl").read_text().splitlines()) == 2


def test_resume_to_more_epochs_replans_the_cosine_schedule(tmp_path):
    """2 steps per epoch (64 samples, batch 32), lr 0.01, planned for 2 epochs then resumed to 4: the
    lr after each epoch is 0.01 * (1 + cos(pi * step / 8)) / 2 at steps 6 and 8 of the 4-epoch plan,
    not the old plan's climb past its end (0.005 and 0.01)."""
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path) as cwd:
        args = ["train", "-T", "2", "--model-arg", "hidden=[8]", "--train-samples", "64", "--test-samples", "32",
                "--batch-size", "32", "--lr", "0.01", "--out", "run", "--quiet"]
        assert runner.invoke(cli, [*args, "--epochs", "2"]).exit_code == 0
        resumed = runner.invoke(cli, ["train", "--resume", "run/checkpoint.pt", "--epochs", "4"])
        assert resumed.exit_code == 0, resumed.output
        lrs = [json.loads(line)["lr"] for line in Path(cwd, "run", "metrics.jsonl").read_text().splitlines()]
        assert lrs == pytest.approx([0.005, 0.0, 0.01 * (1 - math.sqrt(0.5)) / 2, 0.0], abs=1e-12)
        assert "re-planned for 4" in resumed.stderr and "planned for 2 epochs" in resumed.stderr


@pytest.mark.parametrize("command", [["fit", "{ckpt}", "--accuracy"], ["profile", "{ckpt}"],
                                     ["export", "{ckpt}", "--target", "onnx"]])
def test_a_data_dir_that_is_no_folder_is_refused_first(tmp_path, command):
    # fit --accuracy on digits (bundled) went on without a word about the mistyped path
    ckpt = tmp_path / "none.pt"  # never read: the option is refused first
    args = [arg.format(ckpt=ckpt) for arg in command]
    result = invoke([*args, "--data-dir", str(tmp_path / "dat"), "--out", str(tmp_path / "out")], tmp_path)
    assert_one_line_error(result, f"--data-dir {tmp_path / 'dat'} is not a folder; give the folder that holds the dataset")
    assert not (tmp_path / "out").exists()


def test_resume_refuses_an_option_that_would_change_the_run_and_keeps_it(tmp_path):
    """--resume continues the saved run as it was set up: --model-arg hidden=[16], --lr or --threshold
    given anew were silently dropped (the run trained on at hidden=[8]); now refused in one line naming
    them, the run untouched. The run's own values, and --epochs, are accepted."""
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path) as cwd:
        args = ["train", "-T", "2", "--model-arg", "hidden=[8]", "--train-samples", "64", "--test-samples", "32",
                "--batch-size", "32", "--epochs", "1", "--out", "run", "--quiet"]
        assert runner.invoke(cli, args).exit_code == 0
        run = Path(cwd, "run")
        before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
        resume = ["train", "--resume", "run/checkpoint.pt", "--epochs", "2", "--quiet"]
        changed = runner.invoke(cli, [*resume, "--model-arg", "hidden=[16]", "--lr", "0.5", "--threshold", "2"])
        assert_one_line_error(changed, "--model-arg", "--lr", "--threshold", "--init run/checkpoint.pt")
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
        same = runner.invoke(cli, [*resume, "--model-arg", "hidden=[8]", "-T", "2"])
        assert same.exit_code == 0, same.output
        assert Checkpoint.load(run / "checkpoint.pt").training["epoch"] == 2


def test_resume_to_no_more_epochs_than_run_trains_nothing_and_says_so(tmp_path):
    """A finished 2-epoch run resumed with --epochs 1 or 2: nothing to train (as Lightning's fit at
    max_epochs), the checkpoint and metrics.jsonl stay byte for byte, and the note says so, not a
    schedule "re-planned for 1"."""
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path) as cwd:
        args = ["train", "-T", "2", "--model-arg", "hidden=[8]", "--train-samples", "64", "--test-samples", "32",
                "--batch-size", "32", "--epochs", "2", "--out", "run", "--quiet"]
        assert runner.invoke(cli, args).exit_code == 0
        run = Path(cwd, "run")
        before = {name: (run / name).read_bytes() for name in ("checkpoint.pt", "metrics.jsonl")}
        for epochs in ("1", "2"):
            resumed = runner.invoke(cli, ["train", "--resume", "run/checkpoint.pt", "--epochs", epochs])
            assert resumed.exit_code == 0, resumed.output
            assert "re-planned" not in resumed.stderr
            assert f"already trained 2 epochs, and --epochs {epochs} asks for no more: nothing to train" in resumed.stderr
            assert "--epochs above 2" in resumed.stderr
            assert {name: (run / name).read_bytes() for name in before} == before


def test_export_to_an_unknown_or_absent_target_is_one_line(tmp_path, monkeypatch):
    import sys

    import snnpipe.hw_targets as hw

    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"x")
    assert_one_line_error(invoke(["export", str(ckpt), "--target", "tpu"], tmp_path),
                          "unknown export target 'tpu'", "loihi, nir, onnx")
    # an exporter whose optional package is missing says which to install, in one line
    (tmp_path / "fake_exporter.py").write_text("import a_package_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(hw, "_exporter_module", lambda name: "fake_exporter" if name == "fpga" else None)
    monkeypatch.delitem(sys.modules, "fake_exporter", raising=False)
    with pytest.raises(hw.ExportError, match="needs the package 'a_package_that_is_not_installed'"):
        hw.find_exporter("fpga")

def test_a_baseline_of_another_sample_count_is_refused_before_the_profile_is_written(tmp_path):
    ckpt = train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, out=str(tmp_path / "run")), progress=False)
    base = tmp_path / "baseline.json"
    made = invoke(["profile", str(ckpt.path), "--samples", "5", "-o", str(tmp_path / "a"), "--baseline", str(base),
                   "--update-baseline", "--quiet"], tmp_path)
    assert made.exit_code == 0 and base.exists(), made.output
    report = tmp_path / "b"
    other = invoke(["profile", str(ckpt.path), "--samples", "6", "-o", str(report), "--baseline", str(base)], tmp_path)
    assert_one_line_error(other, "samples=5", "compare like with like")
    assert not report.exists()  # nothing written: the retry with --samples 5 needs no --force


def test_a_missing_baseline_is_refused_before_the_profile_is_written(tmp_path):
    ckpt = train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, out=str(tmp_path / "run")), progress=False)
    report = tmp_path / "report"
    args = ["profile", str(ckpt.path), "--samples", "5", "-o", str(report)]
    assert_one_line_error(invoke([*args, "--baseline", str(tmp_path / "none.json")], tmp_path), "none.json")
    assert not report.exists()  # nothing written, so the retry needs no --force
    assert invoke(args, tmp_path).exit_code == 0
    assert_one_line_error(invoke(args, tmp_path), "already holds a report", "--force")


def test_the_docs_name_the_keys_of_metrics_jsonl(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "train.md").read_text()
    sentence = re.search(r"`metrics\.jsonl`, one line per epoch with the keys (.*?)\.\n", readme, re.S).group(1)
    named = re.findall(r"`(\w+)`", sentence)
    ckpt = train(TrainConfig(model_args={"hidden": (8,)}, epochs=1, out=str(tmp_path / "run")), progress=False)
    record = json.loads((ckpt.path.parent / "metrics.jsonl").read_text().splitlines()[0])
    assert named == list(record)


# --- what a newcomer hit (issue 23, item 22) ----------------------------------------------------------

def test_the_holders_of_imported_networks_are_not_trainable_models(tmp_path):
    shown = invoke(["train", "--help"], tmp_path)
    offered = next(line for line in shown.output.splitlines() if "--model [" in line)
    assert "mlp" in offered and "graph" not in offered and "sequential" not in offered
    for name in ("graph", "sequential"):
        result = invoke(["train", "--model", name, *FAST], tmp_path)
        assert_one_line_error(result, f"model {name!r} holds a network that `snnpipe import nir` brings in",
                              "train a zoo model: convnet, mlp")
    assert not any(tmp_path.rglob("checkpoint.pt"))


def test_a_missing_data_folder_is_named_before_any_memory_estimate(tmp_path):
    # T = 10^5 cannot fit any machine: the estimate would refuse it, but the missing data comes first
    result = invoke(["train", "--dataset", "cifar10", "-T", "100000", "--quiet"], tmp_path)
    assert_one_line_error(result, "cifar10 needs --data-dir")


@pytest.fixture
def checkpoints(tmp_path):
    def run(stage):
        return train(TrainConfig(stage=stage, model_args={"hidden": (16,)}, epochs=1, timesteps=2,
                                 out=str(tmp_path / stage)), progress=False).path

    return {"snn": run("bptt"), "ann": run("ann")}


def test_export_options_are_named_as_flags(tmp_path, checkpoints):
    snn = str(checkpoints["snn"])
    assert_one_line_error(invoke(["export", snn, "--target", "loihi", "--verify", "lavaa"], tmp_path),
                          "--target loihi: --verify: 'lavaa' is not one of lava, or omit the flag (did you mean 'lava'?)")
    assert_one_line_error(invoke(["export", snn, "--target", "onnx", "--verify", "lava"], tmp_path),
                          "--verify is not an option of --target onnx; it takes: --opset, --verify-samples")
    assert_one_line_error(invoke(["export", str(checkpoints["ann"]), "--target", "loihi"], tmp_path),
                          "this checkpoint holds the ANN twin", "--stage bptt --init CKPT")


def test_the_export_progress_bar_counts_batches_of_a_known_total(tmp_path, checkpoints, monkeypatch):
    monkeypatch.setenv("SNNPIPE_PROGRESS", "1")
    # 300 samples in test batches of 256 (TEST_BATCH_SIZE): 2 batches
    result = invoke(["export", str(checkpoints["snn"]), "--target", "loihi", "--samples", "300", "-o", "x.net.h5"],
                    tmp_path)
    assert result.exit_code == 0, result.output
    bar = [part for part in result.output.replace("\r", "\n").splitlines() if part.startswith("float vs Loihi")]
    assert bar and all(" 0/2 " in part or " 1/2 " in part or " 2/2 " in part for part in bar), bar
    assert "0batch" not in result.output


def test_inputs_are_checked_before_outputs(tmp_path, monkeypatch):
    # every command names a missing input, not the output it would have refused to overwrite
    ckpt = train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, timesteps=2, out=str(tmp_path / "run")),
                 progress=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports" / "nothere").mkdir(parents=True)
    (tmp_path / "reports" / "nothere" / "profile.json").write_text("{}")
    (tmp_path / "taken.onnx").write_bytes(b"x")
    (tmp_path / "nothere.pt").write_bytes(b"x")
    runner = CliRunner()
    for args, missing in [
        (["profile", "nothere/x.pt"], "checkpoint nothere/x.pt does not exist"),
        (["profile", "nothere/x.net.h5"], "Loihi file nothere/x.net.h5 does not exist"),
        (["profile", str(ckpt.path), "-o", "reports/nothere", "--deployed", "nothere/x.net.h5"], "--deployed nothere/x.net.h5"),
        (["profile", str(ckpt.path), "-o", "reports/nothere", "--data-dir", "nothere"], "--data-dir nothere is not a folder"),
        (["profile", str(ckpt.path), "-o", "reports/nothere", "--chip-file", "nothere.toml"], "nothere.toml"),
        (["export", str(ckpt.path), "--target", "onnx", "-o", "taken.onnx", "--data-dir", "nothere"],
         "--data-dir nothere is not a folder"),
        (["import", "nir", "nothere.nir"], "NIR file nothere.nir does not exist"),
        (["train", "--dataset", "digits", "--data-dir", "nothere", "-o", "run"],
         "--data-dir nothere is not a folder, and digits comes with scikit-learn: leave it out"),
    ]:
        assert_one_line_error(runner.invoke(cli, args), missing)
    assert (tmp_path / "reports" / "nothere" / "profile.json").read_text() == "{}"


def test_profile_says_when_the_test_set_holds_fewer_samples_than_asked(tmp_path):
    # digits' test split holds 360 images: --samples 1000 runs those, and says so
    ckpt = train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, timesteps=2, out=str(tmp_path / "run")),
                 progress=False)
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["profile", str(ckpt.path), "--samples", "1000", "-o", str(report)])
    assert result.exit_code == 0, result.output
    note = "--samples 1000: the digits test set holds 360 samples; profiled 360"
    assert note in result.output
    profile = json.loads((report / "profile.json").read_text())
    assert (profile["samples"], profile["samples_requested"]) == (360, 1000)
    assert "360 samples (1000 asked for: the test set holds 360)" in (report / "profile.md").read_text()
    exact = CliRunner().invoke(cli, ["profile", str(ckpt.path), "--samples", "10", "-o", str(tmp_path / "ten")])
    assert exact.exit_code == 0 and "--samples" not in exact.output
    assert json.loads((tmp_path / "ten" / "profile.json").read_text())["samples_requested"] is None
