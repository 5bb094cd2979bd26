"""Bad input, fuzzed: every case ends in one line and exit code 2 (or a typed error), never a
traceback, and never damages a checkpoint that was already there.

Bounded: each property runs a fixed number of examples with training stubbed out, so the whole file
takes seconds; CI runs it with the default suite. Two bugs it found: ``epochs: []`` and
``timesteps: null`` in a config file reached the trainer as a TypeError.
"""

import gzip
import string

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from snnpipe.errors import SnnpipeError
from snnpipe.pipeline import train as train_module
from snnpipe.pipeline.checkpoint import Checkpoint, CheckpointError
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import IDX_IMAGES_MAGIC, DataError, read_idx

# Derandomized: CI draws the same examples every run, so a red CI always means a change broke
# something; widen the search locally with --hypothesis-seed=random.
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


class _ReachedTraining(Exception):
    """Raised by the stub: the input was valid all the way to the trainer."""


@pytest.fixture
def no_training(monkeypatch):
    def stub(config, **_):
        assert isinstance(config, TrainConfig)
        raise _ReachedTraining

    monkeypatch.setattr(train_module, "train", stub)


def _assert_clean(result) -> None:
    """Either the input was valid (the stub was reached) or one line, exit 2, no traceback."""
    if isinstance(result.exception, _ReachedTraining):
        return
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output


OPTION_VALUES = {
    "--dataset": st.sampled_from(["digits", "fashion-mnist", "imagenet", "", "../digits"]),
    "--model": st.sampled_from(["mlp", "convnet", "vgg11", "lenet", "MLP"]),
    "--stage": st.sampled_from(["bptt", "ratebp", "ann", "hebbian", "BPTT"]),
    "-T": st.one_of(st.integers(-5, 9).map(str), st.text(string.printable, max_size=4)),
    "--epochs": st.one_of(st.integers(-3, 3).map(str), st.just("1e3"), st.just("x")),
    "--batch-size": st.one_of(st.integers(-2, 64).map(str), st.just("")),
    "--lr": st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.just("fast")),
    "--encoding": st.sampled_from(["direct", "rate", "latency", "phase", ""]),
    "--current-decay": st.floats(-2, 2, allow_nan=False).map(str),
    "--voltage-decay": st.one_of(st.floats(-2, 2, allow_nan=False).map(str), st.just("nan")),
    "--threshold": st.one_of(st.floats(-1, 3, allow_nan=False).map(str), st.just("inf")),
    "--refractory-steps": st.integers(-3, 3).map(str),
    "--surrogate": st.sampled_from(["atan", "sigmoid", "relu", ""]),
    "--model-arg": st.one_of(st.text(string.printable, max_size=12), st.just("hidden=[8]"), st.just("hidden={")),
    "--keep": st.integers(-1, 3).map(str),
    "--checkpoint-every": st.integers(-1, 3).map(str),
    "--amp": st.sampled_from(["bf16", "fp16", ""]),
    "--device": st.sampled_from(["cpu", "auto", "cuda:9", "tpu", ""]),
    "--optimizer": st.sampled_from(["adam", "sgd", "lamb"]),
}


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(OPTION_VALUES)), st.none(), max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({k: OPTION_VALUES[k] for k in keys})))
def test_fuzzed_train_options(no_training, options):
    args = ["train", "--quiet"]
    for key, value in options.items():
        args += [key, value]
    _assert_clean(CliRunner().invoke(cli, args))


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
config_keys = st.sampled_from(["dataset", "model", "stage", "epochs", "timesteps", "lr", "seed", "encoding",
                               "model-arg", "threshold", "timestep", "batch_size", "unknown", "keep"])


@FUZZ
@example("timesteps: null\n")
@example("epochs: []\n")
@given(st.one_of(
    st.dictionaries(config_keys, yaml_values, max_size=4).map(yaml.safe_dump),
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
))
def test_fuzzed_config_files(no_training, tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    _assert_clean(CliRunner().invoke(cli, ["train", "--quiet", "--config", str(path)]))


@FUZZ
@given(st.dictionaries(config_keys.map(lambda k: k.replace("-", "_")), yaml_values, max_size=4))
def test_fuzzed_config_dicts_raise_only_user_errors(data):
    try:
        TrainConfig.from_dict(data)
    except (SnnpipeError, TypeError):
        pass  # TypeError: a value of the wrong type reaches the dataclass; the CLI never builds one


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    from snnpipe.pipeline.data import load_dataset, Dataset

    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:64], data.train_y[:64], data.test_x[:32], data.test_y[:32])
    out = tmp_path_factory.mktemp("ckpt") / "run"
    config = TrainConfig(model="mlp", model_args={"hidden": (8,)}, epochs=1, timesteps=2, out=str(out))
    return train_module.train(config, dataset=small, progress=False).path.read_bytes()


@FUZZ
@given(data=st.data())
def test_fuzzed_checkpoint_bytes(tmp_path, checkpoint_bytes, data):
    cut = data.draw(st.integers(0, len(checkpoint_bytes) - 1))
    flip = data.draw(st.integers(0, len(checkpoint_bytes) - 1))
    mode = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if mode == "truncate":
        raw = checkpoint_bytes[:cut]
    elif mode == "flip":
        raw = bytearray(checkpoint_bytes)
        raw[flip] ^= 0xFF
        raw = bytes(raw)
    else:
        raw = data.draw(st.binary(max_size=200))
    path = tmp_path / "fuzzed.pt"
    path.write_bytes(raw)
    try:
        Checkpoint.load(path).build_model()
    except CheckpointError as err:
        assert "\n" not in str(err)


def test_corrupt_resume_leaves_the_existing_checkpoint_intact(tmp_path, checkpoint_bytes):
    run = tmp_path / "run"
    run.mkdir()
    good = run / "checkpoint.pt"
    good.write_bytes(checkpoint_bytes[: len(checkpoint_bytes) // 3])  # a damaged file in place
    before = good.read_bytes()
    result = CliRunner().invoke(cli, ["train", "--resume", str(good), "--quiet"])
    _assert_clean(result)
    assert good.read_bytes() == before


@FUZZ
@given(st.binary(max_size=64), st.booleans())
def test_fuzzed_idx_files(tmp_path, raw, gz):
    path = tmp_path / ("x.gz" if gz else "x")
    if gz:
        with gzip.open(path, "wb") as handle:
            handle.write(raw)
    else:
        path.write_bytes(raw)
    try:
        read_idx(path, IDX_IMAGES_MAGIC)
    except DataError as err:
        assert "\n" not in str(err)


@pytest.mark.parametrize("out", ["/proc/snnpipe-run", "{file}/run"])
def test_unwritable_output_folder(tmp_path, out):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["train", "--epochs", "1", "--quiet", "--out", out.format(file=blocker)])
    _assert_clean(result)
    assert "choose a writable --out" in result.output


@pytest.mark.parametrize("seed", [-5, [1, 2], 10**14, 2**32, True, 1.5])
def test_a_seed_numpy_and_torch_cannot_take_is_refused_where_the_config_is_built(seed):
    with pytest.raises(SnnpipeError, match=r"seed=.* is not an integer from 0 to 4294967295 \(2\^32 - 1\)"):
        TrainConfig(seed=seed)


def test_the_largest_seed_is_one_numpy_and_torch_take():
    import numpy as np
    import torch

    seed = TrainConfig(seed=2**32 - 1).seed
    np.random.RandomState(seed), torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("args,recipe", [
    (["train", "--seed", "-5"], None),
    (["run", "recipe.yaml"], "defaults: {seed: [1, 2]}\nsteps:\n  - train: {epochs: 1}"),
    (["run", "recipe.yaml"], "defaults: {seed: 100000000000000}\nsteps:\n  - train: {epochs: 1}"),
    (["run", "recipe.yaml"], "steps:\n  - train: {epochs: 1, sweep: {seed: [0, -1]}}"),
])
def test_a_bad_seed_is_one_line_and_leaves_no_run_folder(tmp_path, monkeypatch, args, recipe):
    monkeypatch.chdir(tmp_path)
    if recipe:
        (tmp_path / "recipe.yaml").write_text(f"name: seeded\n{recipe}\n")
    result = CliRunner().invoke(cli, args)
    _assert_clean(result)
    assert "seed=" in result.output and "2^32 - 1" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == (["recipe.yaml"] if recipe else [])
